"""Old import path of :mod:`cellrepro.engine.tensorloader` (moved there); a plain re-export, kept while published notebooks use it."""

from .engine.tensorloader import *  # noqa: F401,F403
