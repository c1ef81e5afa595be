"""Cross-resource rules on top of a store: validation, mesh existence, ownership, defaults."""

from kuma.manager.manager import ResourceManager

__all__ = ["ResourceManager"]
