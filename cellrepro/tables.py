"""Old import path of :mod:`cellrepro.publish.tables` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.tables import *  # noqa: F401,F403
