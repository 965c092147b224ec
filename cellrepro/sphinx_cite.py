"""Old import path of :mod:`cellrepro.publish.sphinx_cite` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.sphinx_cite import *  # noqa: F401,F403
