"""The ADS server (xDS state of the world over gRPC, port 5678): see docs/xds-server.md.

`state` is the sans-IO protocol state machine of one stream; `ads` serves it with grpclib.
"""

from kuma.xds.server.ads import AdsServer, AdsStream, AuthenticationError, Authenticator
from kuma.xds.server.state import AdsStreamState

__all__ = ["AdsServer", "AdsStream", "AdsStreamState", "AuthenticationError", "Authenticator"]
