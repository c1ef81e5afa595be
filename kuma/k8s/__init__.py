"""Kubernetes mode: CRD mapping, store, controllers, webhooks and install manifests."""
