"""Old import path of :mod:`cellrepro.engine.checkpoint` (moved there); a plain re-export, kept while published notebooks use it."""

from .engine.checkpoint import *  # noqa: F401,F403
