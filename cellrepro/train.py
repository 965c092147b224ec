"""Old import path of :mod:`cellrepro.engine.train` (moved there); a plain re-export, kept while published notebooks use it."""

from .engine.train import *  # noqa: F401,F403
