"""`kumactl generate tls-certificate` (Kuma 0.7.3's messages, help, file modes)."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kuma.ca.pki import KeyPair, load_key_pair
from kuma.cli import Kumactl, build_root
from kuma.cli.commands.generate import generate_group
from kuma.cli.framework import KumaCommand, propagate_persistent_flags


def run(tmp_path: Path, *args: str) -> Result:
    root = build_root()
    if "generate" not in root.commands:  # until kumactl's root registers the group itself
        root.add_command(generate_group())
        propagate_persistent_flags(root)
    argv = ["--config-file", str(tmp_path / "kumactl.config"), *args]
    return CliRunner().invoke(root, argv, obj=Kumactl(), prog_name="kumactl")


def files(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    return key, cert, ["--key-file", str(key), "--cert-file", str(cert)]


def test_server_certificate(tmp_path: Path) -> None:
    key, cert, flags = files(tmp_path)
    result = run(
        tmp_path,
        "generate",
        "tls-certificate",
        *flags,
        "--type",
        "server",
        "--cp-hostname",
        "kuma1.internal",
        "--cp-hostname=kuma2.internal,10.0.0.1",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Certificates generated\nKey was saved in: {key}\nCert was saved in: {cert}\n"
    )
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o400 & ~_umask()
    assert stat.S_IMODE(os.stat(cert).st_mode) == 0o644 & ~_umask()

    load_key_pair(KeyPair(cert.read_bytes(), key.read_bytes()))  # they belong together
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    assert parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kuma"
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "kuma1.internal",
        "kuma2.internal",
        "localhost",
    ]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
    eku = parsed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    lifetime = parsed.not_valid_after_utc - parsed.not_valid_before_utc
    assert lifetime == dt.timedelta(days=3650)
    assert serialization.load_pem_private_key(key.read_bytes(), None).key_size == 2048  # type: ignore[union-attr]


def test_client_certificate(tmp_path: Path) -> None:
    _key, cert, flags = files(tmp_path)
    result = run(tmp_path, "generate", "tls-certificate", *flags, "--type=client")
    assert result.exit_code == 0, result.output
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    eku = parsed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in list(eku)
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]


def test_default_file_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(tmp_path, "generate", "tls-certificate", "--type", "client")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("Key was saved in: key.pem\nCert was saved in: cert.pem\n")
    assert (tmp_path / "key.pem").exists()
    assert (tmp_path / "cert.pem").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--type", "client", "--cp-hostname", "kuma1.internal"],
            '--cp-hostname cannot be used with "client" type',
        ),
        (["--type", "server"], '--cp-hostname has to be specified with "server" type'),
        (["--type", "other"], '--type has to be either "client" or "server"'),
        ([], 'required flag(s) "type" not set'),
    ],
)
def test_invalid_flags(tmp_path: Path, args: list[str], message: str) -> None:
    key, cert, flags = files(tmp_path)
    result = run(tmp_path, "generate", "tls-certificate", *flags, *args)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {message}\n"
    assert not key.exists()
    assert not cert.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_an_existing_read_only_key_file_is_not_overwritten(tmp_path: Path) -> None:
    key, _, flags = files(tmp_path)
    assert run(tmp_path, "generate", "tls-certificate", *flags, "--type=client").exit_code == 0
    result = run(tmp_path, "generate", "tls-certificate", *flags, "--type=client")
    assert result.exit_code == 1
    assert result.stderr == f"Error: could not write the key file: open {key}: permission denied\n"


def test_help_matches_kuma(tmp_path: Path) -> None:
    result = run(tmp_path, "generate", "tls-certificate", "--help")
    assert result.stdout == (
        "Generate self signed key and certificate pair that can be used for example in "
        "Dataplane Token Server setup.\n"
        "\n"
        "Usage:\n"
        "  kumactl generate tls-certificate [flags]\n"
        "\n"
        "Examples:\n"
        "\n"
        "  # Generate a TLS certificate for use by an HTTPS server, i.e. by the Dataplane Token server\n"
        "  kumactl generate tls-certificate --type=server\n"
        "\n"
        "  # Generate a TLS certificate for use by a client of an HTTPS server, i.e. by the "
        "'kumactl generate dataplane-token' command\n"
        "  kumactl generate tls-certificate --type=client\n"
        "\n"
        "Flags:\n"
        '      --cert-file string      path to a file with a generated TLS certificate (default "cert.pem")\n'
        "      --cp-hostname strings   DNS name of the control plane\n"
        "  -h, --help                  help for tls-certificate\n"
        '      --key-file string       path to a file with a generated private key (default "key.pem")\n'
        "      --type string           type of the certificate: one of client|server\n"
        "\n"
        "Global Flags:\n"
        "      --config-file string   path to the configuration file to use\n"
        '      --log-level string     log level: one of off|info|debug (default "off")\n'
        '  -m, --mesh string          mesh to use (default "default")\n'
    )


def test_group_help_lists_its_commands(tmp_path: Path) -> None:
    extra = KumaCommand("dataplane-token", short="Generate Dataplane Token")
    root = build_root()
    root.commands.pop("generate", None)
    root.add_command(generate_group(extra))
    propagate_persistent_flags(root)
    result = CliRunner().invoke(root, ["generate", "--help"], obj=Kumactl(), prog_name="kumactl")
    assert result.stdout == (
        "Generate resources, tokens, etc.\n"
        "\n"
        "Usage:\n"
        "  kumactl generate [command]\n"
        "\n"
        "Available Commands:\n"
        "  dataplane-token Generate Dataplane Token\n"
        "  tls-certificate Generate a TLS certificate\n"
        "\n"
        "Flags:\n"
        "  -h, --help   help for generate\n"
        "\n"
        "Global Flags:\n"
        "      --config-file string   path to the configuration file to use\n"
        '      --log-level string     log level: one of off|info|debug (default "off")\n'
        '  -m, --mesh string          mesh to use (default "default")\n'
        "\n"
        'Use "kumactl generate [command] --help" for more information about a command.\n'
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_key_file_that_cannot_be_written(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    result = run(
        tmp_path,
        "generate",
        "tls-certificate",
        "--type=client",
        "--key-file",
        str(directory),
        "--cert-file",
        str(tmp_path / "c.pem"),
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: could not write the key file: open {directory}: is a directory\n"
    )
