"""cellrepro: a reproducible companion to five microscopy segmentation papers.

The package is imported by the notebooks under ``notebooks/`` and by the ``cellrepro``
command. Importing it is cheap: heavy dependencies (torch, MONAI, kornia) are imported by
the submodules that need them, never here.
"""

import os as _os

__version__ = "0.1.0"

#: OpenMP's wait policy for torch's CPU threads, unless the user chose one. The default (active)
#: makes idle threads spin for a core; on a machine shared with one busy job that turns a
#: 2-second blur map into 15 seconds (``benchmarks/contention.py``). OpenMP reads the variable
#: when torch loads it, so this takes effect where cellrepro is imported before torch (the
#: ``cellrepro`` command, the notebooks' kernels, the test suite) and in every process started
#: from one (the runner's kernels); a session that imported torch first keeps its policy.
THREAD_WAIT_POLICY = "PASSIVE"
_os.environ.setdefault("OMP_WAIT_POLICY", THREAD_WAIT_POLICY)

PAPERS = ("spheroid", "multimodal", "mmcs", "brightfield", "organoid")
"""Paper slugs, used for notebook folders, chapter labels and reported-number CSVs."""


class CellreproError(Exception):
    """An error a user can act on; the command prints its message without a traceback."""
