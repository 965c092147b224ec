"""Old import path of :mod:`cellrepro.publish.params` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.params import *  # noqa: F401,F403
