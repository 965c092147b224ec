"""Old import path of :mod:`cellrepro.publish.claims` (moved there); a plain re-export, kept while published notebooks use it."""

from ..publish.claims import *  # noqa: F401,F403
