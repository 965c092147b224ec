"""Old import path of :mod:`cellrepro.publish.sphinx_bibstyle` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.sphinx_bibstyle import *  # noqa: F401,F403
