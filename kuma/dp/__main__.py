"""`python -m kuma.dp` runs the kuma-dp command line."""

from kuma.dp.main import main

main()
