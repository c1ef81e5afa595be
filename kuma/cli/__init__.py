"""kumactl: the command-line client of the Kuma control plane (Kuma 0.7.3's commands and output).

from kuma.cli import Kumactl, Runtime, build_root
build_root().main(["get", "meshes"], obj=Kumactl(Runtime(...)))
"""

from __future__ import annotations

from kuma.cli.context import Kumactl, Runtime
from kuma.cli.main import main
from kuma.cli.root import build_root

__all__ = ["Kumactl", "Runtime", "build_root", "main"]
