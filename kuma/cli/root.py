"""kumactl's command tree (Kuma 0.7.3's cobra tree, in click)."""

from __future__ import annotations

import click

from kuma.cli.commands.apply import apply_command
from kuma.cli.commands.config import config_group
from kuma.cli.commands.delete import delete_command
from kuma.cli.commands.generate import generate_group
from kuma.cli.commands.generate_token import dataplane_token_command
from kuma.cli.commands.get import get_group
from kuma.cli.commands.inspect import inspect_group
from kuma.cli.commands.install import install_group
from kuma.cli.commands.misc import completion_group, help_command, version_command
from kuma.cli.context import kumactl_of
from kuma.cli.framework import GoFlag, KumaRoot, propagate_persistent_flags

__all__ = ["build_root"]


def _pre_run(ctx: click.Context) -> None:
    kumactl_of(ctx).pre_run(ctx)


def build_root() -> KumaRoot:
    """A fresh `kumactl` command tree."""
    root = KumaRoot(
        "kumactl",
        short="Management tool for Kuma",
        params=[
            GoFlag(
                ["--config-file"], help="path to the configuration file to use", persistent=True
            ),
            GoFlag(["-m", "--mesh"], go_default="default", help="mesh to use", persistent=True),
            GoFlag(
                ["--log-level"],
                go_default="off",
                help="log level: one of off|info|debug",
                persistent=True,
            ),
        ],
    )
    root.pre_run = _pre_run
    for cmd in (
        apply_command(),
        completion_group(),
        config_group(),
        delete_command(),
        generate_group(dataplane_token_command()),
        get_group(),
        help_command(),
        inspect_group(),
        install_group(),
        version_command(),
    ):
        root.add_command(cmd)
    propagate_persistent_flags(root)
    return root
