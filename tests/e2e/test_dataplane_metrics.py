"""Dataplane metrics: kuma-cp + kuma-dp + real Envoy on loopback, scraped like Prometheus would.

A mesh with a prometheus metrics backend makes every dataplane's Envoy serve its own stats
(Prometheus text format) on `<dataplane address>:<port><path>`; a dataplane's `metrics` overrides
the port and path; with mTLS on, the dataplane's own address scrapes in plain HTTP while any other
address needs a mesh certificate and a TrafficPermission to the metrics service.

Dataplane names carry a random suffix: kuma-dp's access log socket is named after the dataplane,
and other test runs may share this host.
"""

from __future__ import annotations

import base64
import datetime as dt
import ssl
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.procs import ControlPlane, control_plane, free_port, kuma_dp, wait_until

pytestmark = pytest.mark.e2e

CONVERGE = 30.0  # seconds allowed for config to reach Envoy
OTHER_SOURCE = "127.0.0.2"  # a scraper that is not the dataplane itself (loopback, not its IP)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def put(cp: ControlPlane, doc: dict[str, Any]) -> None:
    if doc["type"] == "Mesh":
        path = f"/meshes/{doc['name']}"
    else:
        plural = {"Dataplane": "dataplanes", "TrafficPermission": "traffic-permissions"}
        path = f"/meshes/{doc['mesh']}/{plural[doc['type']]}/{doc['name']}"
    response = httpx.put(cp.api + path, json=doc, timeout=10)
    assert response.status_code in (200, 201), response.text


def mesh_doc(port: int, *, mtls: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "Mesh",
        "name": "default",
        # port only: path and tags get the mesh defaults (/metrics, dataplane-metrics)
        "metrics": {
            "enabledBackend": "prometheus-1",
            "backends": [{"name": "prometheus-1", "type": "prometheus", "conf": {"port": port}}],
        },
    }
    if mtls:
        doc["mtls"] = {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]}
    return doc


def dataplane_doc(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {
            "address": "127.0.0.1",
            "inbound": [
                {"port": free_port(), "servicePort": free_port(), "tags": {"kuma.io/service": name}}
            ],
        },
        **spec,
    }


def start_dp(stack: ExitStack, cp: ControlPlane, name: str) -> int:
    admin = free_port()
    stack.enter_context(kuma_dp(cp, name, admin_port=admin))
    wait_until(
        lambda: httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200,
        CONVERGE,
        f"Envoy of {name} to be ready",
    )
    return admin


def scrape(
    port: int, path: str = "/metrics", *, source: str = "127.0.0.1", tls: Any = None
) -> httpx.Response:
    """GET the metrics endpoint from `source`, in plain HTTP or (with an SSLContext) HTTPS."""
    scheme = "https" if tls is not None else "http"
    transport = httpx.HTTPTransport(local_address=source, verify=tls if tls is not None else True)
    with httpx.Client(transport=transport, timeout=5) as client:
        return client.get(f"{scheme}://127.0.0.1:{port}{path}")


def envoy_stats(response: httpx.Response) -> bool:
    """Envoy's Prometheus text exposition: `# TYPE envoy_...` and `envoy_...` samples."""
    lines = response.text.splitlines()
    return (
        response.status_code == 200
        and any(line.startswith("# TYPE envoy_") for line in lines)
        and any(line.startswith("envoy_") for line in lines)
    )


def refused(port: int, **kwargs: Any) -> bool:
    try:
        scrape(port, **kwargs)
    except httpx.TransportError:
        return True
    return False


@pytest.fixture
def cp() -> Iterator[ControlPlane]:
    with control_plane("run") as cp:
        cp.wait_ready()
        yield cp


def test_dataplanes_serve_envoy_stats_with_mesh_defaults_and_overrides(cp: ControlPlane) -> None:
    mesh_port, own_port = free_port(), free_port()
    plain, custom = unique("plain"), unique("custom")
    put(cp, dataplane_doc(plain))
    put(
        cp,
        dataplane_doc(
            custom,
            metrics={"type": "prometheus", "conf": {"port": own_port, "path": "/own-stats"}},
        ),
    )
    with ExitStack() as stack:
        start_dp(stack, cp, plain)
        start_dp(stack, cp, custom)
        # metrics turned on for the mesh while its dataplanes run
        put(cp, mesh_doc(mesh_port))

        def stats_of_plain() -> httpx.Response | None:
            response = scrape(mesh_port)
            return response if envoy_stats(response) else None

        first = wait_until(
            stats_of_plain,
            CONVERGE,
            f"Envoy stats of {plain} on 127.0.0.1:{mesh_port}/metrics",
        )
        assert first.headers["content-type"].startswith("text/plain")
        # the scrape went through the metrics listener (its HttpConnectionManager counts it)
        again = scrape(mesh_port)
        assert 'envoy_http_conn_manager_prefix="kuma_metrics_prometheus"' in again.text
        # only the metrics path is routed: the rest of the admin API is not reachable
        assert scrape(mesh_port, "/config_dump").status_code == 404

        wait_until(
            lambda: envoy_stats(scrape(own_port, "/own-stats")),
            CONVERGE,
            f"Envoy stats of {custom} on its own port and path",
        )
        assert scrape(own_port, "/metrics").status_code == 404
        # the stats are each Envoy's own: the cluster pointing at its admin API is there
        assert 'envoy_cluster_name="kuma_envoy_admin"' in scrape(own_port, "/own-stats").text

        # metrics turned off again: the listeners go away
        put(cp, {"type": "Mesh", "name": "default"})
        wait_until(
            lambda: refused(mesh_port) and refused(own_port),
            CONVERGE,
            "the metrics listeners to be removed",
        )


def mesh_client_tls(cp: ControlPlane, service: str, tmp_path: Path) -> ssl.SSLContext:
    """An SSL context holding a certificate of `service` signed by the mesh's builtin CA (read
    from the control plane's admin server), trusting that CA: a mesh member's credentials."""

    def secret(name: str) -> bytes:
        url = f"http://127.0.0.1:{cp.ports.admin}/meshes/default/secrets/{name}"
        response = httpx.get(url, timeout=5)
        response.raise_for_status()
        return base64.b64decode(response.json()["data"])

    ca_pem = wait_until(
        lambda: secret("default.ca-builtin-cert-ca-1"), CONVERGE, "the mesh CA to be created"
    )
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(secret("default.ca-builtin-key-ca-1"), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, service)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"spiffe://default/{service}")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(cadata=ca_pem.decode())
    context.check_hostname = False  # the server is named by its SPIFFE URI, not a host name
    context.load_cert_chain(cert_file, key_file)
    return context


def test_with_mtls_the_dataplane_scrapes_itself_and_others_need_permission(
    cp: ControlPlane, tmp_path: Path
) -> None:
    port = free_port()
    put(cp, mesh_doc(port, mtls=True))
    listed = httpx.get(f"{cp.api}/meshes/default/traffic-permissions", timeout=5).json()
    assert listed["items"] == []  # nothing allows mesh traffic yet
    name = unique("backend")
    put(cp, dataplane_doc(name))
    tls = mesh_client_tls(cp, "prometheus", tmp_path)
    with ExitStack() as stack:
        start_dp(stack, cp, name)
        # from the dataplane's own address: plain HTTP, no certificate, no permission needed
        wait_until(lambda: envoy_stats(scrape(port)), CONVERGE, "plain scrape from the own address")
        # from anywhere else: the mTLS chain; plain HTTP is not even a TLS handshake
        assert refused(port, source=OTHER_SOURCE)
        # a mesh certificate without a TrafficPermission: RBAC closes the connection
        assert refused(port, source=OTHER_SOURCE, tls=tls)

        put(
            cp,
            {
                "type": "TrafficPermission",
                "mesh": "default",
                "name": "prometheus-to-metrics",
                "sources": [{"match": {"kuma.io/service": "prometheus"}}],
                "destinations": [{"match": {"kuma.io/service": "dataplane-metrics"}}],
            },
        )
        wait_until(
            lambda: envoy_stats(scrape(port, source=OTHER_SOURCE, tls=tls)),
            CONVERGE,
            "an mTLS scrape by `prometheus` once permitted",
        )
        assert refused(port, source=OTHER_SOURCE)  # still no plain HTTP from elsewhere
        assert envoy_stats(scrape(port))  # and still plain from the dataplane itself
