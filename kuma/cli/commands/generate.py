"""`kumactl generate`: the command group, and `generate tls-certificate`.

    kumactl generate tls-certificate --type=server --cp-hostname=cp.internal
    kumactl generate tls-certificate --type=client --key-file=client.key --cert-file=client.pem

The certificate is self-signed (CN `kuma`, 10 years, its own trust root; Kuma's pkg/tls):
a `server` one names every `--cp-hostname` and `localhost` as SANs, a `client` one none. The key
file is written with mode 0400 and the certificate with 0644 (when they are created; an existing
file keeps its mode, and a read-only one cannot be overwritten).

`generate_group(*extra)` builds the group; other `generate` commands (`dataplane-token`) are
passed in or added to it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

import click

from kuma.ca.pki import CertType, new_self_signed_cert
from kuma.cli.errors import KumactlError
from kuma.cli.framework import GoFlag, KumaCommand, KumaGroup

__all__ = [
    "TLS_CERTIFICATE_EXAMPLE",
    "GoStringSlice",
    "generate_group",
    "tls_certificate_command",
    "write_file",
]

TLS_CERTIFICATE_EXAMPLE = """
  # Generate a TLS certificate for use by an HTTPS server, i.e. by the Dataplane Token server
  kumactl generate tls-certificate --type=server

  # Generate a TLS certificate for use by a client of an HTTPS server, i.e. by the 'kumactl generate dataplane-token' command
  kumactl generate tls-certificate --type=client"""


class GoStringSlice(click.ParamType[list[str]]):
    """pflag's `strings` (StringSlice): comma-separated (CSV) values, the flag repeatable."""

    name = "strings"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> list[str]:
        if isinstance(value, list):
            return value
        text = str(value)
        if not text:
            return []
        try:
            return next(csv.reader([text]))
        except csv.Error as e:
            flag = param.opts[-1] if isinstance(param, click.Option) else "flag"
            self.fail(f'invalid argument "{text}" for "{flag}" flag: {e}', param, ctx)


class _CommandWithExample(KumaCommand):
    """A command whose help has cobra's `Examples:` section after the usage line."""

    def __init__(self, name: str, *, example: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.example = example

    def cobra_usage(self, ctx: click.Context) -> str:
        text = super().cobra_usage(ctx)
        head, sep, rest = text.partition("\n\n")
        return f"{head}\n\nExamples:\n{self.example}{sep}{rest}" if sep else text


def write_file(path: str, data: bytes, mode: int) -> None:
    """Go's ioutil.WriteFile: create with `mode` (less the umask) or truncate; OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _os_error(path: str, e: OSError) -> str:
    text = os.strerror(e.errno) if e.errno is not None else str(e)
    return f"open {path}: {text[:1].lower()}{text[1:]}"


def _tls_certificate(
    key_file: str, cert_file: str, cert_type: str, cp_hostname: Sequence[list[str]]
) -> None:
    hostnames = [h for values in cp_hostname for h in values]
    if cert_type not in ("client", "server"):
        raise KumactlError('--type has to be either "client" or "server"')
    if cert_type == "client" and hostnames:
        raise KumactlError('--cp-hostname cannot be used with "client" type')
    if cert_type == "server" and not hostnames:
        raise KumactlError('--cp-hostname has to be specified with "server" type')
    kind: CertType = "client" if cert_type == "client" else "server"
    try:
        pair = new_self_signed_cert("kuma", kind, [*hostnames, "localhost"])
    except ValueError as e:
        raise KumactlError(f"could not generate certificate: {e}") from None
    for path, data, mode, what in (
        (key_file, pair.key_pem, 0o400, "key"),
        (cert_file, pair.cert_pem, 0o644, "cert"),
    ):
        try:
            write_file(path, data, mode)
        except OSError as e:
            raise KumactlError(f"could not write the {what} file: {_os_error(path, e)}") from None
    click.echo(
        f"Certificates generated\nKey was saved in: {key_file}\nCert was saved in: {cert_file}"
    )


def tls_certificate_command() -> KumaCommand:
    """`kumactl generate tls-certificate`."""
    return _CommandWithExample(
        "tls-certificate",
        short="Generate a TLS certificate",
        long=(
            "Generate self signed key and certificate pair that can be used for example in "
            "Dataplane Token Server setup."
        ),
        example=TLS_CERTIFICATE_EXAMPLE,
        callback=_tls_certificate,
        params=[
            GoFlag(
                ["--key-file", "key_file"],
                go_default="key.pem",
                help="path to a file with a generated private key",
            ),
            GoFlag(
                ["--cert-file", "cert_file"],
                go_default="cert.pem",
                help="path to a file with a generated TLS certificate",
            ),
            GoFlag(
                ["--type", "cert_type"],
                help="type of the certificate: one of client|server",
                go_required=True,
            ),
            GoFlag(
                ["--cp-hostname", "cp_hostname"],
                go_type="strings",
                type=GoStringSlice(),
                multiple=True,
                default=(),
                help="DNS name of the control plane",
            ),
        ],
    )


def generate_group(*extra: click.Command) -> KumaGroup:
    """`kumactl generate` with `tls-certificate` and any `extra` commands."""
    group = KumaGroup(
        "generate", short="Generate resources, tokens, etc", long="Generate resources, tokens, etc."
    )
    group.add_command(tls_certificate_command())
    for command in extra:
        group.add_command(command)
    return group
