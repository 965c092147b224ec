"""Old import path of :mod:`cellrepro.publish.profile` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.profile import *  # noqa: F401,F403
