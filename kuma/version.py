"""Version of kuma-py, and the Kuma release whose behaviour it follows."""

__all__ = ["BUILD_DATE", "GIT_COMMIT", "GIT_TAG", "KUMA_REFERENCE", "__version__"]

__version__ = "0.1.0"
KUMA_REFERENCE = "0.7.3"
GIT_TAG = "none"
GIT_COMMIT = "none"
BUILD_DATE = "none"
