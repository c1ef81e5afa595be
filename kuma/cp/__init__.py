"""kuma-cp: the control plane executable (`kuma.cp.main`) and its lifecycle (`kuma.cp.run`)."""
