"""Old import path of :mod:`cellrepro.publish.report` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.report import *  # noqa: F401,F403
