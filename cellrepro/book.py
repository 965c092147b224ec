"""Old import path of :mod:`cellrepro.publish.book` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.book import *  # noqa: F401,F403
