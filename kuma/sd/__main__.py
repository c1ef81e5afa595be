"""`python -m kuma.sd` runs the kuma-prometheus-sd command line."""

from kuma.sd.main import main

main()
