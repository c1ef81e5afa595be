"""click, behaving like the cobra/pflag command tree of Kuma's kumactl.

What this adds to click:

* **persistent flags**: an option declared `persistent=True` on a group is accepted by the
  group and by every command below it, anywhere after the group's name
  (`kumactl get meshes -m demo -o yaml` as well as `kumactl -m demo get -o yaml meshes`); the
  deepest explicit value wins. Commands read them with `persistent(ctx, name)`.
* **cobra's help and usage text** (`Usage:`, `Available Commands:`, `Flags:`,
  `Global Flags:`, pflag's flag column with `string`/`int`/`stringToString` and
  `(default ...)`), `-h/--help` on every command and a `help [command]` command.
* **cobra's error conventions**: `Error: <message>` on stderr and exit status 1; usage text
  after errors in the command line (unknown flag, missing flag value, wrong number of
  arguments), pflag's wording for them, `required flag(s) "a", "b" not set` listing every
  missing flag.
"""

from __future__ import annotations

import copy
import csv
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
from click.core import ParameterSource

from kuma.cli.errors import KumactlError

__all__ = [
    "ArgsError",
    "GoFlag",
    "GoInt",
    "GoStringToString",
    "KumaCommand",
    "KumaGroup",
    "KumaRoot",
    "exact_args",
    "minimum_args",
    "persistent",
    "propagate_persistent_flags",
]

_PERSISTENT_KEY = "kumactl.persistent"


class ArgsError(click.UsageError):
    """Wrong number of positional arguments (cobra prints usage after it)."""


# -- flag types ------------------------------------------------------------------------------


def _flag_label(param: click.Parameter | None) -> str:
    if not isinstance(param, click.Option):
        return "flag"
    longs = [o for o in param.opts if o.startswith("--")]
    shorts = [o for o in param.opts if not o.startswith("--")]
    if shorts and longs:
        return f"{shorts[0]}, {longs[0]}"
    return (longs or shorts or [param.name or ""])[0]


class GoInt(click.ParamType[int]):
    name = "int"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value)
        try:
            if not text or text.strip() != text or "_" in text:
                raise ValueError
            return int(text, 0) if text.lower().startswith(("0x", "-0x", "0o", "0b")) else int(text)
        except ValueError:
            self.fail(
                f'invalid argument "{text}" for "{_flag_label(param)}" flag: '
                f'strconv.ParseInt: parsing "{text}": invalid syntax',
                param,
                ctx,
            )


class GoStringToString(click.ParamType[list[tuple[str, str]]]):
    """pflag's `stringToString`: `k=v` pairs, comma-separated (CSV) and/or repeated."""

    name = "stringToString"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> list[tuple[str, str]]:
        if isinstance(value, list):
            return value
        text = str(value)
        try:
            fields = next(csv.reader([text])) if text else []
        except csv.Error as e:
            self.fail(f'invalid argument "{text}" for "{_flag_label(param)}" flag: {e}', param, ctx)
        pairs = []
        for item in fields:
            key, sep, val = item.partition("=")
            if not sep:
                self.fail(
                    f'invalid argument "{text}" for "{_flag_label(param)}" flag: '
                    f"{item} must be formatted as key=value",
                    param,
                    ctx,
                )
            pairs.append((key, val))
        return pairs


class GoFlag(click.Option):
    """An option that knows how pflag describes it.

    `go_type` is pflag's type word (`string`, `int`, `stringToString`; None for booleans),
    `go_default` the default as pflag prints it (`"off"` is shown as `(default "off")` for
    strings). `persistent` options are inherited by every subcommand; `required` options are
    checked all at once after the configuration is loaded, like cobra does.
    """

    def __init__(
        self,
        param_decls: Sequence[str],
        *,
        go_type: str | None = "string",
        go_default: str | None = None,
        persistent: bool = False,
        go_required: bool = False,
        **kwargs: Any,
    ) -> None:
        if go_type is None:
            kwargs.setdefault("is_flag", True)
            kwargs.setdefault("default", False)
        elif go_type == "int":
            kwargs.setdefault("type", GoInt())
            kwargs.setdefault("default", 0)
        elif go_type == "stringToString":
            kwargs.setdefault("type", GoStringToString())
            kwargs.setdefault("multiple", True)
        else:
            kwargs.setdefault("default", go_default or "")
        if persistent:
            kwargs["expose_value"] = False
            kwargs["callback"] = _store_persistent
        super().__init__(list(param_decls), **kwargs)
        self.go_type = go_type
        self.go_default = go_default
        self.persistent = persistent
        self.go_required = go_required
        self.inherited = False

    # pflag's view of the flag
    @property
    def long_name(self) -> str:
        return next((o[2:] for o in self.opts if o.startswith("--")), self.name or "")

    @property
    def shorthand(self) -> str:
        return next((o[1:] for o in self.opts if not o.startswith("--")), "")

    def usage_line(self) -> tuple[str, str]:
        """(left part, usage text) of this flag's line in pflag's FlagUsages."""
        left = (
            f"  -{self.shorthand}, --{self.long_name}"
            if self.shorthand
            else f"      --{self.long_name}"
        )
        if self.go_type:
            left += f" {self.go_type}"
        usage = self.help or ""
        default = self.go_default
        if self.go_type == "stringToString":
            usage += " (default [])"  # pflag prints the empty map's default as []
        elif self.go_type == "string" and default:
            usage += f" (default {json.dumps(default)})"
        elif self.go_type == "int" and default not in (None, "", "0"):
            usage += f" (default {default})"
        return left, usage


def _store_persistent(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if ctx.get_parameter_source(param.name or "") not in (
        ParameterSource.DEFAULT,
        ParameterSource.DEFAULT_MAP,
        None,
    ):
        ctx.find_root().meta.setdefault(_PERSISTENT_KEY, {})[param.name] = value
    return value


def persistent(ctx: click.Context, name: str) -> Any:
    """The value of a persistent flag: the deepest explicit one, else the flag's default."""
    values = ctx.find_root().meta.get(_PERSISTENT_KEY, {})
    if name in values:
        return values[name]
    c: click.Context | None = ctx
    while c is not None:
        for p in c.command.params:
            if isinstance(p, GoFlag) and p.name == name:
                return p.default
        c = c.parent
    raise KeyError(name)


# -- commands --------------------------------------------------------------------------------

_MIN_NAME_PADDING = 11


def _command_path(ctx: click.Context) -> str:
    return ctx.command_path


def _flag_usages(flags: list[tuple[str, str, str]]) -> str:
    """pflag's FlagUsages: `(sort key, left, usage)` rows aligned two spaces after the widest."""
    rows = sorted(flags)
    width = max((len(left) for _, left, _ in rows), default=0)
    lines = [f"{left}{' ' * (width - len(left))}   {usage}".rstrip() for _, left, usage in rows]
    return "\n".join(lines)


class _CobraMixin:
    """Help/usage text and argument checks shared by commands and groups."""

    use: str
    short: str
    long: str
    hidden_in_listing: bool = False

    def _is_runnable(self) -> bool:
        return not isinstance(self, click.Group)

    def _flags(
        self, ctx: click.Context
    ) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        local: list[tuple[str, str, str]] = []
        inherited: list[tuple[str, str, str]] = []
        assert isinstance(self, click.Command)
        for p in self.get_params(ctx):
            if not isinstance(p, GoFlag):
                continue
            left, usage = p.usage_line()
            (inherited if p.inherited else local).append((p.long_name, left, usage))
        name = self.name or ""
        local.append(("help", "  -h, --help", f"help for {name}"))
        return local, inherited

    def cobra_usage(self, ctx: click.Context) -> str:
        """cobra's UsageString (ends with a newline)."""
        assert isinstance(self, click.Command)
        path = _command_path(ctx)
        parts = ["Usage:"]
        if self._is_runnable():
            parent = path.rsplit(" ", 1)[0] if " " in path else ""
            use_line = f"{parent} {self.use}".strip()
            if "[flags]" not in use_line:
                use_line += " [flags]"
            parts.append(f"\n  {use_line}")
        if isinstance(self, click.Group):
            parts.append(f"\n  {path} [command]")
        text = "".join(parts)
        if isinstance(self, click.Group):
            subs = [
                (n, c)
                for n in self.list_commands(ctx)
                if (c := self.get_command(ctx, n)) is not None and not c.hidden
            ]
            if subs:
                pad = max(_MIN_NAME_PADDING, max(len(n) for n, _ in subs))
                text += "\n\nAvailable Commands:"
                for n, c in subs:
                    short = getattr(c, "short", "") or c.get_short_help_str()
                    text += f"\n  {n.ljust(pad)} {short}"
        local, inherited = self._flags(ctx)
        if local:
            text += "\n\nFlags:\n" + _flag_usages(local)
        if inherited:
            text += "\n\nGlobal Flags:\n" + _flag_usages(inherited)
        if isinstance(self, click.Group):
            text += f'\n\nUse "{path} [command] --help" for more information about a command.'
        return text + "\n"

    def cobra_help(self, ctx: click.Context) -> str:
        head = (self.long or self.short).rstrip()
        return (f"{head}\n\n" if head else "") + self.cobra_usage(ctx)

    def check_required(self, ctx: click.Context) -> None:
        assert isinstance(self, click.Command)
        missing = sorted(
            p.long_name
            for p in self.get_params(ctx)
            if isinstance(p, GoFlag)
            and p.go_required
            and ctx.get_parameter_source(p.name or "") in (ParameterSource.DEFAULT, None)
        )
        if missing:
            raise KumactlError('required flag(s) "' + '", "'.join(missing) + '" not set')


def _init_cobra(obj: _CobraMixin, name: str, use: str | None, short: str, long: str | None) -> None:
    obj.use = use or name
    obj.short = short
    obj.long = long if long is not None else (short + "." if short else "")


class KumaCommand(_CobraMixin, click.Command):
    """A runnable command. `args_check` validates positional arguments (cobra's `Args`)."""

    def __init__(
        self,
        name: str,
        *,
        short: str,
        long: str | None = None,
        use: str | None = None,
        args_check: Callable[[Sequence[str]], None] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("context_settings", {}).setdefault("help_option_names", ["-h", "--help"])
        super().__init__(name, short_help=short, help=long, **kwargs)
        _init_cobra(self, name, use, short, long)
        self.args_check = args_check

    def get_help(self, ctx: click.Context) -> str:
        return self.cobra_help(ctx).rstrip("\n")

    def get_usage(self, ctx: click.Context) -> str:
        return self.cobra_usage(ctx).rstrip("\n")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            if e.ctx is None:
                e.ctx = ctx
            if e.ctx is ctx and isinstance(e, click.BadArgumentUsage | click.MissingParameter):
                raise ArgsError(e.message, ctx) from None
            if type(e) is click.UsageError:  # "Got unexpected extra argument(s)"
                extra = [a for a in args if not a.startswith("-")]
                word = extra[-1] if extra else (args[-1] if args else "")
                raise ArgsError(f'unknown command "{word}" for "{ctx.command_path}"', ctx) from None
            raise

    def invoke(self, ctx: click.Context) -> Any:
        if self.args_check is not None:
            try:
                self.args_check(ctx.params.get("args", ()))
            except ArgsError as e:
                e.ctx = ctx
                raise
        root = ctx.find_root().command
        pre_run = getattr(root, "pre_run", None)
        if pre_run is not None:
            pre_run(ctx)
        self.check_required(ctx)
        return super().invoke(ctx)


class KumaGroup(_CobraMixin, click.Group):
    """A command with subcommands; run without one, it prints its help (cobra's behaviour)."""

    command_class = KumaCommand
    pre_run: Callable[[click.Context], None] | None = None
    """On the root: what cobra's root PersistentPreRunE does, run before every command."""

    def __init__(
        self,
        name: str,
        *,
        short: str,
        long: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("context_settings", {}).setdefault("help_option_names", ["-h", "--help"])
        kwargs["invoke_without_command"] = True
        kwargs["no_args_is_help"] = False
        callback = kwargs.pop("callback", None)
        super().__init__(name, short_help=short, help=long, callback=self._help_if_alone, **kwargs)
        self._own_callback = callback
        _init_cobra(self, name, None, short, long)

    def _help_if_alone(self, *args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        if ctx.invoked_subcommand is None:
            click.echo(self.get_help(ctx))
            ctx.exit(0)
        if self._own_callback is not None:
            return ctx.invoke(self._own_callback, *args, **kwargs)
        return None

    def get_help(self, ctx: click.Context) -> str:
        return self.cobra_help(ctx).rstrip("\n")

    def get_usage(self, ctx: click.Context) -> str:
        return self.cobra_usage(ctx).rstrip("\n")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            if e.ctx is None:
                e.ctx = ctx
            raise

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if self.get_command(ctx, name) is None and not ctx.resilient_parsing:
            raise UnknownCommandError(f'unknown command "{name}" for "{ctx.command_path}"', ctx)
        return super().resolve_command(ctx, args)


class UnknownCommandError(click.UsageError):
    """cobra follows this with `Run '<path> --help' for usage.` instead of the usage text."""


# -- tree helpers ----------------------------------------------------------------------------


def propagate_persistent_flags(group: click.Group, inherited: Sequence[GoFlag] = ()) -> None:
    """Give every command below `group` a copy of the persistent flags of its ancestors."""
    own = [p for p in group.params if isinstance(p, GoFlag) and p.persistent and not p.inherited]
    for cmd in group.commands.values():
        names = {p.name for p in cmd.params}
        for flag in [*inherited, *own]:
            if flag.name in names:
                continue
            clone = copy.copy(flag)
            clone.inherited = True
            cmd.params.append(clone)
        if isinstance(cmd, click.Group):
            propagate_persistent_flags(cmd, [*inherited, *own])


def exact_args(n: int) -> Callable[[Sequence[str]], None]:
    def check(args: Sequence[str]) -> None:
        if len(args) != n:
            raise ArgsError(f"accepts {n} arg(s), received {len(args)}")

    return check


def minimum_args(n: int) -> Callable[[Sequence[str]], None]:
    def check(args: Sequence[str]) -> None:
        if len(args) < n:
            raise ArgsError(f"requires at least {n} arg(s), only received {len(args)}")

    return check


# -- running ---------------------------------------------------------------------------------


def _pflag_message(e: click.UsageError) -> str:
    if isinstance(e, click.NoSuchOption):
        opt = e.option_name
        if opt.startswith("--"):
            return f"unknown flag: {opt}"
        return f"unknown shorthand flag: '{opt[1:]}' in {opt}"
    if isinstance(e, click.BadOptionUsage):
        opt = e.option_name
        if "requires" in e.message:
            if opt.startswith("--"):
                return f"flag needs an argument: {opt}"
            return f"flag needs an argument: '{opt[1:]}' in {opt}"
        return e.message
    if isinstance(e, click.BadParameter) and e.message.startswith("invalid argument"):
        return e.message
    if isinstance(e, click.BadParameter):
        return e.format_message()
    return e.message


def _usage_of(e: click.UsageError) -> str:
    ctx = e.ctx
    if ctx is None:
        return ""
    cmd = ctx.command
    if isinstance(cmd, _CobraMixin):
        return cmd.cobra_usage(ctx)
    return ctx.get_usage() + "\n"


def _report(e: BaseException) -> int:
    """Print an exception the way cobra does; the exit status."""
    if isinstance(e, UnknownCommandError):
        click.echo(f"Error: {e.message}", err=True)
        path = e.ctx.command_path if e.ctx else "kumactl"
        click.echo(f"Run '{path} --help' for usage.", err=True)
    elif isinstance(e, click.UsageError):
        click.echo(f"Error: {_pflag_message(e)}", err=True)
        click.echo(_usage_of(e), err=True)
    elif isinstance(e, KumactlError):
        click.echo(f"Error: {e.message}", err=True)
    elif isinstance(e, click.Abort):
        click.echo("Aborted!", err=True)
    elif isinstance(e, click.ClickException):
        click.echo(f"Error: {e.format_message()}", err=True)
    return 1


class KumaRoot(KumaGroup):
    """The root command: `main()` reports errors like cobra's Execute and exits 1 on failure."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name or self.name, complete_var, False, **extra)
        except (click.ClickException, click.Abort, KumactlError) as e:
            sys.exit(_report(e))
        except BrokenPipeError:
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)
