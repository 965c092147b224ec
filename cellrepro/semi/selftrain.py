"""Pseudo-label -> fine-tune cycles (Wang et al., multimodal paper, Sec. 2.3).

"For Cellpose models, we use a pre-trained model to generate pseudo-masks for unlabeled images
and then train models on unlabeled images with pseudo-masks. Finally, we fine-tune them with
the labeled images as a cycle." One cycle is therefore three calls:

1. ``predict(model, image)`` on every unlabeled image -> a pseudo instance mask;
2. ``train(model, pseudo_pairs)``: train on the unlabeled images with their pseudo-masks;
3. ``train(model, labeled_pairs)``: fine-tune on the labeled images.

The loop is independent of the network: the chapter passes its own ``train`` and ``predict``
(a Cellpose-style flow network in the multimodal chapter). Pseudo-masks with fewer than
``min_cells`` instances are left out (an empty pseudo-mask teaches "no cells here", which is
wrong for a patch picked from a cell image); the paper does not say whether it filters, so the
default ``min_cells=1`` only drops empty masks. Nothing here prints; ``on_cycle`` receives each
cycle's summary for logging or a progress bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

Pair = tuple[Any, np.ndarray]


@dataclass
class Cycle:
    """What one pseudo-label cycle did."""

    cycle: int
    pseudo_images: int  #: unlabeled images whose pseudo-mask was kept
    dropped: int  #: unlabeled images whose pseudo-mask had fewer than ``min_cells`` instances
    mean_cells: float  #: mean instance count of the kept pseudo-masks


def pseudo_label_cycles(model: Any, labeled: Sequence[Pair], unlabeled: Sequence[Any],
                        train: Callable[[Any, Sequence[Pair]], Any],
                        predict: Callable[[Any, Any], np.ndarray], cycles: int = 1, min_cells: int = 1,
                        on_cycle: Callable[[Cycle], None] | None = None) -> tuple[Any, list[Cycle]]:
    """Run ``cycles`` pseudo-label -> train -> fine-tune cycles from ``model``.

    Args:
        model: the starting model (the paper's pre-trained Cellpose; here usually the model
            trained on the labeled images alone).
        labeled: ``(image, instance mask)`` pairs.
        unlabeled: images without masks.
        train: ``train(model, pairs) -> model``; continues training ``model`` on ``pairs``.
        predict: ``predict(model, image) -> instance mask`` (0 background, ids > 0).
        cycles: number of cycles (>= 1).
        min_cells: pseudo-masks with fewer instances are not trained on.
        on_cycle: called with each :class:`Cycle` after it ends.

    Returns:
        The final model and the list of cycle summaries.
    """
    if cycles < 1:
        raise ValueError(f"cycles must be >= 1, got {cycles}")
    if not labeled:
        raise ValueError("labeled is empty: the fine-tuning step of each cycle needs labeled pairs")
    if not unlabeled:
        raise ValueError("unlabeled is empty: there is nothing to pseudo-label")
    history: list[Cycle] = []
    for c in range(1, cycles + 1):
        pseudo, counts = [], []
        for image in unlabeled:
            mask = np.asarray(predict(model, image))
            n = int(np.unique(mask[mask > 0]).size)
            if n >= min_cells:
                pseudo.append((image, mask))
                counts.append(n)
        if pseudo:
            model = train(model, pseudo)
        model = train(model, labeled)
        summary = Cycle(c, len(pseudo), len(unlabeled) - len(pseudo), float(np.mean(counts)) if counts else 0.0)
        history.append(summary)
        if on_cycle is not None:
            on_cycle(summary)
    return model, history
