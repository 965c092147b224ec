"""Instance representations and their post-processing (DESIGN.md: flows, watershed, directions,
activation maps), shared by the multimodal, MMCS and brightfield chapters.

* :mod:`.flows`: Cellpose-style flows, :func:`masks_to_flows` and :func:`flows_to_masks`.
"""

from .flows import flows_to_masks, masks_to_flows

__all__ = ["flows_to_masks", "masks_to_flows"]
