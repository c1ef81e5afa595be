"""kuma-py: the Kuma service mesh in Python."""

from kuma.version import __version__

__all__ = ["__version__"]
