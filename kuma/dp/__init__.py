"""kuma-dp: runs Envoy as a Kuma dataplane (bootstrap from the control plane, then supervision).

See main.py for the command line, run.py for the lifecycle, config.py for the settings.
"""
