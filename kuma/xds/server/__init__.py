"""The ADS server (xDS state-of-the-world over gRPC, port 5678)."""
