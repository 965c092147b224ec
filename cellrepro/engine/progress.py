"""Progress bars that a published page never shows.

Every long loop of the package reports progress through :func:`bar`, a ``tqdm`` whose
``disable`` is forced on when ``$CELLREPRO_PROGRESS`` is ``0``. The notebook runner sets that
(and ``$TQDM_DISABLE``, which silences the bars of libraries that leave ``disable`` at its
default) in the environment of every kernel it starts, so executed chapters carry results, not
hundreds of lines of progress output; an interactive session or a ``cellrepro`` command keeps
its bars.
"""

from __future__ import annotations

import os
from typing import Any

from tqdm import tqdm

#: Environment variable: ``0`` turns every :func:`bar` off.
ENV = "CELLREPRO_PROGRESS"


def enabled() -> bool:
    """False where the environment turns progress output off (the runner's kernels)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def bar(iterable: Any = None, *, disable: bool | None = False, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, disable=disable, **kwargs)``, disabled outright where :func:`enabled` is False.

    ``disable=None`` keeps tqdm's meaning (off where the output is not a terminal).
    """
    return tqdm(iterable, disable=True if not enabled() else disable, **kwargs)
