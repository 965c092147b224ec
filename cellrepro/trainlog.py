"""Old import path of :mod:`cellrepro.engine.trainlog` (moved there); a plain re-export, kept while published notebooks use it."""

from .engine.trainlog import *  # noqa: F401,F403
