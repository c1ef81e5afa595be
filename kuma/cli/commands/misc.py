"""`kumactl version`, `kumactl completion bash|fish|zsh` and `kumactl help [command]`."""

from __future__ import annotations

from collections.abc import Sequence

import click
from click.shell_completion import get_completion_class

from kuma.cli.context import kumactl_of
from kuma.cli.errors import KumactlError
from kuma.cli.framework import GoFlag, KumaCommand, KumaGroup, UnknownCommandError
from kuma.version import BUILD_DATE, GIT_COMMIT, GIT_TAG

__all__ = ["completion_group", "help_command", "version_command"]

PRODUCT = "Kuma"


@click.pass_context
def _version(ctx: click.Context, detailed: bool) -> None:
    version = kumactl_of(ctx).runtime.version
    if detailed:
        click.echo(f"Product:    {PRODUCT}")
        click.echo(f"Version:    {version}")
        click.echo(f"Git Tag:    {GIT_TAG}")
        click.echo(f"Git Commit: {GIT_COMMIT}")
        click.echo(f"Build Date: {BUILD_DATE}")
    else:
        click.echo(f"{PRODUCT}: {version}")


def version_command() -> KumaCommand:
    return KumaCommand(
        "version",
        short="Print version",
        callback=_version,
        params=[GoFlag(["-a", "--detailed"], go_type=None, help="Print detailed version")],
    )


COMPLETION_LONG = """
Outputs kumactl shell completion for the given shell (bash, fish or zsh).
This depends on the bash-completion package.  Example installation instructions:
# for bash users
\t$ kumactl completion bash > ~/.kumactl-completion
\t$ source ~/.kumactl-completion

# for zsh users
\t% kumactl completion zsh > /usr/local/share/zsh/site-functions/_kumactl
\t% autoload -U compinit && compinit
# or if zsh-completion is installed via homebrew
    % kumactl completion zsh > "${fpath[1]}/_kumactl"

# for fish users
\t% kumactl completion fish > ~/.config/fish/completions/kumactl.fish

Additionally, you may want to output the completion to a file and source in your .bashrc
Note for zsh users: [1] zsh completions are only supported in versions of zsh >= 5.2
"""


def _completion(shell: str) -> KumaCommand:
    @click.pass_context
    def run(ctx: click.Context) -> None:
        root = ctx.find_root()
        cls = get_completion_class(shell)
        if cls is None:  # pragma: no cover - click ships all three
            raise KumactlError(f"no completion support for {shell}")
        complete = cls(root.command, {}, root.info_name or "kumactl", "_KUMACTL_COMPLETE")
        click.echo(complete.source(), nl=False)

    return KumaCommand(shell, short=f"Output shell completions for {shell}", long="", callback=run)


def completion_group() -> KumaGroup:
    group = KumaGroup(
        "completion",
        short="Output shell completion code for bash, fish or zsh",
        long=COMPLETION_LONG,
    )
    for shell in ("bash", "fish", "zsh"):
        group.add_command(_completion(shell))
    return group


@click.pass_context
def _help(ctx: click.Context, args: Sequence[str]) -> None:
    root_ctx = ctx.find_root()
    cmd: click.Command = root_ctx.command
    target = root_ctx
    for word in args:
        if not isinstance(cmd, click.Group):
            break
        sub = cmd.get_command(target, word)
        if sub is None:
            raise UnknownCommandError(f'unknown help topic "{" ".join(args)}"', target)
        target = click.Context(sub, info_name=word, parent=target)
        cmd = sub
    click.echo(cmd.get_help(target))


def help_command() -> KumaCommand:
    return KumaCommand(
        "help",
        use="help [command]",
        short="Help about any command",
        long="Help provides help for any command in the application.\n"
        "Simply type kumactl help [path to command] for full details.",
        callback=_help,
        params=[click.Argument(["args"], nargs=-1)],
    )
