"""Stores: the ``Store`` protocol and its embedded pyoxigraph implementation."""

from kgc.store.base import Store
from kgc.store.oxigraph import OxigraphStore

__all__ = ["OxigraphStore", "Store"]
