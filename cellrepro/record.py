"""Old import path of :mod:`cellrepro.publish.record` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.record import *  # noqa: F401,F403
