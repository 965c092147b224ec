"""Old import path of :mod:`cellrepro.publish.project` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.project import *  # noqa: F401,F403
