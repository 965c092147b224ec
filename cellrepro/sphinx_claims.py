"""Old import path of :mod:`cellrepro.publish.sphinx_claims` (moved there); a plain re-export, kept while published notebooks use it."""

from .publish.sphinx_claims import *  # noqa: F401,F403
