"""cellrepro: a reproducible companion to five microscopy segmentation papers.

The package is imported by the notebooks under ``notebooks/`` and by the ``cellrepro``
command. Importing it is cheap: heavy dependencies (torch, MONAI, kornia) are imported by
the submodules that need them, never here.
"""

__version__ = "0.1.0"

PAPERS = ("spheroid", "multimodal", "mmcs", "brightfield", "organoid")
"""Paper slugs, used for notebook folders, chapter labels and reported-number CSVs."""


class CellreproError(Exception):
    """An error a user can act on; the command prints its message without a traceback."""
