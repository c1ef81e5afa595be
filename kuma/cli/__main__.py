"""`python -m kuma.cli` runs kumactl."""

from kuma.cli.main import main

main()
