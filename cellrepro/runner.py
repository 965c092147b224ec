"""Old import path of :mod:`cellrepro.publish.runner` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.runner import *  # noqa: F401,F403
