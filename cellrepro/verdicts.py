"""Old import path of :mod:`cellrepro.publish.verdicts` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.verdicts import *  # noqa: F401,F403
