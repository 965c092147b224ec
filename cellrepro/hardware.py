"""Old import path of :mod:`cellrepro.engine.hardware` (moved there); a plain re-export, kept while published notebooks use it."""

from .engine.hardware import *  # noqa: F401,F403
