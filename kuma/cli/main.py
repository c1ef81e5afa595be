"""The `kumactl` console script."""

from __future__ import annotations

from kuma.cli.context import Kumactl
from kuma.cli.root import build_root

__all__ = ["main"]


def main() -> None:
    """Run kumactl on `sys.argv`; exits with 0 on success, 1 on any error."""
    kumactl = Kumactl()
    try:
        build_root().main(prog_name="kumactl", obj=kumactl)
    finally:
        kumactl.close()
