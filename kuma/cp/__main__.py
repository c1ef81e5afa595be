"""`python -m kuma.cp` runs the kuma-cp command line."""

from kuma.cp.main import main

main()
