"""POST /bootstrap through the starlette app: golden bootstraps and every error answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import yaml

from kuma.xds.bootstrap import YAML_CONTENT_TYPE, BootstrapSettings
from tests.xds.bootstrap.support import (
    BACKEND_DATAPLANE,
    XDS_CA,
    assert_golden,
    bootstrap_client,
    default_settings,
    new_manager,
)

pytestmark = pytest.mark.anyio

GATEWAY_DATAPLANE = """
type: Dataplane
mesh: default
name: edge-gateway
networking:
  address: 10.0.0.7
  gateway:
    tags:
      kuma.io/service: edge
      version: v2
"""

MULTI_SERVICE_DATAPLANE = """
type: Dataplane
mesh: default
name: multi
networking:
  address: 10.0.0.8
  inbound:
  - port: 10001
    tags:
      kuma.io/service: web
  - port: 10002
    tags:
      kuma.io/service: api
"""

CUSTOM = BootstrapSettings(
    xds_host="kuma-control-plane.internal",
    xds_port=15678,
    admin_address="192.168.0.1",
    admin_port=9902,
    admin_access_log_path="/dev/stderr",
    xds_connect_timeout=timedelta(seconds=2),
)


@dataclass(frozen=True)
class GoldenCase:
    golden: str
    body: dict[str, Any]
    dataplanes: tuple[str, ...] = (BACKEND_DATAPLANE.format(mesh="default", name="dp-1"),)
    settings: BootstrapSettings = field(default_factory=default_settings)
    validate: bool = True


GOLDEN_CASES = [
    GoldenCase("default.golden.yaml", {"mesh": "default", "name": "dp-1"}),
    GoldenCase(
        "admin-port-and-token.golden.yaml",
        {"mesh": "default", "name": "dp-1", "adminPort": 1234, "dataplaneTokenPath": "/tmp/token"},
    ),
    GoldenCase(
        "dotted-name.golden.yaml",
        {"mesh": "default", "name": "dp-1.default"},
        (BACKEND_DATAPLANE.format(mesh="default", name="dp-1.default"),),
        validate=False,  # a Kubernetes-style name: node id splits on the FIRST dot
    ),
    GoldenCase(
        "gateway.golden.yaml",
        {"mesh": "default", "name": "edge-gateway", "adminPort": 30001},
        (GATEWAY_DATAPLANE,),
    ),
    GoldenCase(
        "custom-params-minimal-request.golden.yaml",
        {"mesh": "default", "name": "dp-1"},
        settings=CUSTOM,
    ),
    GoldenCase(
        "custom-params.golden.yaml",
        {"mesh": "default", "name": "dp-1", "adminPort": 1234, "dataplaneTokenPath": "/tmp/token"},
        settings=CUSTOM,
    ),
    GoldenCase(
        "xds-tls.golden.yaml",
        {"mesh": "default", "name": "dp-1", "adminPort": 9901},
        settings=default_settings(xds_host="xds.kuma.test", xds_ca_cert_file=str(XDS_CA)),
    ),
]


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=lambda c: c.golden)
async def test_bootstrap_golden(case: GoldenCase) -> None:
    manager = await new_manager(*case.dataplanes, validate=case.validate)
    async with bootstrap_client(manager, case.settings) as client:
        response = await client.post("/bootstrap", json=case.body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == YAML_CONTENT_TYPE
    assert_golden(case.golden, response.text)


async def test_bootstrap_contents() -> None:
    """The goldens' key facts, spelled out (what Envoy and the ADS server rely on)."""
    manager = await new_manager(BACKEND_DATAPLANE.format(mesh="default", name="dp-1"))
    async with bootstrap_client(manager, default_settings()) as client:
        full = await client.post(
            "/bootstrap",
            json={
                "mesh": "default",
                "name": "dp-1",
                "adminPort": 30001,
                "dataplaneTokenPath": "/t",
            },
        )
        minimal = await client.post("/bootstrap", json={"mesh": "default", "name": "dp-1"})
    doc = yaml.safe_load(full.text)
    assert doc["node"] == {
        "id": "default.dp-1",
        "cluster": "backend",
        "metadata": {"dataplane.admin.port": "30001", "dataplaneTokenPath": "/t"},
    }
    assert doc["admin"]["address"]["socketAddress"] == {
        "address": "127.0.0.1",
        "portValue": 30001,
    }
    ads = doc["dynamicResources"]["adsConfig"]
    assert ads["apiType"] == "GRPC"
    assert ads["transportApiVersion"] == "V3"
    assert ads["grpcServices"] == [{"envoyGrpc": {"clusterName": "ads_cluster"}}]
    for source in ("ldsConfig", "cdsConfig"):
        assert doc["dynamicResources"][source] == {"ads": {}, "resourceApiVersion": "V3"}
    clusters = {c["name"]: c for c in doc["staticResources"]["clusters"]}
    assert clusters["ads_cluster"]["type"] == "STRICT_DNS"
    assert clusters["ads_cluster"]["connectTimeout"] == "1s"
    endpoint = clusters["ads_cluster"]["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]
    assert endpoint["endpoint"]["address"]["socketAddress"] == {
        "address": "127.0.0.1",
        "portValue": 5678,
    }
    assert "transportSocket" not in clusters["ads_cluster"]
    sink = clusters["access_log_sink"]["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]
    assert sink["endpoint"]["address"]["pipe"]["path"] == "/tmp/kuma-access-logs-dp-1-default.sock"
    assert [t["tagName"] for t in doc["statsConfig"]["statsTags"]] == [
        "name",
        "status",
        "worker",
        "listener",
    ]

    bare = yaml.safe_load(minimal.text)
    assert "admin" not in bare  # no admin port anywhere: Envoy's admin API stays off
    assert "metadata" not in bare["node"]


async def test_cluster_is_the_first_sorted_service() -> None:
    manager = await new_manager(MULTI_SERVICE_DATAPLANE)
    async with bootstrap_client(manager, default_settings()) as client:
        response = await client.post("/bootstrap", json={"mesh": "default", "name": "multi"})
    assert yaml.safe_load(response.text)["node"]["cluster"] == "api"


async def test_tls_trusts_the_configured_ca() -> None:
    manager = await new_manager(BACKEND_DATAPLANE.format(mesh="default", name="dp-1"))
    settings = default_settings(xds_host="xds.kuma.test", xds_ca_cert_file=str(XDS_CA))
    async with bootstrap_client(manager, settings) as client:
        response = await client.post("/bootstrap", json={"mesh": "default", "name": "dp-1"})
    ads = next(
        c
        for c in yaml.safe_load(response.text)["staticResources"]["clusters"]
        if c["name"] == "ads_cluster"
    )
    tls = ads["transportSocket"]["typedConfig"]
    assert tls["@type"].endswith("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext")
    assert tls["sni"] == "xds.kuma.test"
    import base64

    ca = tls["commonTlsContext"]["validationContext"]["trustedCa"]["inlineBytes"]
    assert base64.b64decode(ca) == XDS_CA.read_bytes()


# -- errors -------------------------------------------------------------------------------------


PORT_CLASH_DATAPLANES = (
    # inbound listening on 127.0.0.1:9901 (inbound address)
    """
type: Dataplane
mesh: default
name: inbound-address
networking:
  address: 8.8.8.8
  inbound:
  - address: 127.0.0.1
    port: 9901
    servicePort: 8443
    tags:
      kuma.io/service: backend
""",
    # inbound listening on the dataplane's address, which is 127.0.0.1
    """
type: Dataplane
mesh: default
name: loopback-dataplane
networking:
  address: 127.0.0.1
  inbound:
  - port: 9901
    servicePort: 8443
    tags:
      kuma.io/service: backend
""",
    # the application itself on 127.0.0.1:9901 (servicePort, default serviceAddress)
    """
type: Dataplane
mesh: default
name: workload
networking:
  address: 8.8.8.8
  inbound:
  - port: 443
    servicePort: 9901
    tags:
      kuma.io/service: backend
""",
    # inbound on the wildcard address
    """
type: Dataplane
mesh: default
name: wildcard
networking:
  address: 8.8.8.8
  inbound:
  - address: 0.0.0.0
    port: 9901
    servicePort: 8443
    tags:
      kuma.io/service: backend
""",
    # outbound on 127.0.0.1 (the default outbound address)
    """
type: Dataplane
mesh: default
name: outbound
networking:
  address: 8.8.8.8
  inbound:
  - port: 443
    servicePort: 8443
    tags:
      kuma.io/service: backend
  outbound:
  - port: 9901
    tags:
      kuma.io/service: redis
""",
)


async def test_admin_port_clash_is_422() -> None:
    manager = await new_manager(*PORT_CLASH_DATAPLANES)
    expected = {
        "inbound-address": "inbound",
        "loopback-dataplane": "inbound",
        "workload": "inbound",
        "wildcard": "inbound",
        "outbound": "outbound",
    }
    async with bootstrap_client(manager, default_settings()) as client:
        for name, direction in expected.items():
            response = await client.post(
                "/bootstrap", json={"mesh": "default", "name": name, "adminPort": 9901}
            )
            assert response.status_code == 422, name
            assert response.text == (
                f"Resource precondition failed: Port 9901 requested as both admin and "
                f"{direction} port."
            )
            assert response.headers["content-type"].startswith("text/plain")


async def test_admin_port_from_settings_is_checked_too() -> None:
    manager = await new_manager(PORT_CLASH_DATAPLANES[0])
    async with bootstrap_client(manager, default_settings(admin_port=9901)) as client:
        response = await client.post(
            "/bootstrap", json={"mesh": "default", "name": "inbound-address"}
        )
    assert response.status_code == 422


async def test_no_clash_on_other_addresses() -> None:
    """Same port, different IP: Envoy's admin on 127.0.0.1 does not collide."""
    manager = await new_manager(
        BACKEND_DATAPLANE.format(mesh="default", name="dp-1"),
        """
type: Dataplane
mesh: default
name: remote-outbound
networking:
  address: 8.8.8.8
  inbound:
  - port: 443
    tags:
      kuma.io/service: backend
  outbound:
  - address: 1.1.1.1
    port: 9000
    tags:
      kuma.io/service: redis
""",
    )
    async with bootstrap_client(manager, default_settings()) as client:
        inbound_port = await client.post(
            "/bootstrap", json={"mesh": "default", "name": "dp-1", "adminPort": 443}
        )
        outbound_port = await client.post(
            "/bootstrap", json={"mesh": "default", "name": "remote-outbound", "adminPort": 9000}
        )
    assert inbound_port.status_code == 200
    assert outbound_port.status_code == 200


async def test_unknown_dataplane_is_404() -> None:
    manager = await new_manager(BACKEND_DATAPLANE.format(mesh="default", name="dp-1"))
    async with bootstrap_client(manager, default_settings()) as client:
        unknown = await client.post("/bootstrap", json={"mesh": "default", "name": "dp-2"})
        other_mesh = await client.post("/bootstrap", json={"mesh": "nope", "name": "dp-1"})
    assert unknown.status_code == 404
    assert unknown.text == 'Dataplane "dp-2" not found in mesh "default"'
    assert unknown.headers["content-type"].startswith("text/plain")
    assert other_mesh.status_code == 404
    assert other_mesh.text == 'Dataplane "dp-1" not found in mesh "nope"'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Could not parse the request: invalid JSON:"),
        (b"", "Could not parse the request: invalid JSON:"),
        (b"\xff\xfe", "Could not parse the request: invalid JSON:"),
        (
            b'["default", "dp-1"]',
            "Could not parse the request: the request body must be a JSON object",
        ),
        (b'{"mesh": "default"}', "Could not parse the request: name must not be empty"),
        (b'{"name": "dp-1"}', "Could not parse the request: mesh must not be empty"),
        (b'{"mesh": "default", "name": 7}', "Could not parse the request: name must be a string"),
        (
            b'{"mesh": "default", "name": "dp-1", "adminPort": "9901"}',
            "Could not parse the request: adminPort must be an integer",
        ),
        (
            b'{"mesh": "default", "name": "dp-1", "adminPort": 70000}',
            "Could not parse the request: adminPort must be in the range [0, 65535]",
        ),
        (
            b'{"mesh": "default", "name": "dp-1", "adminPort": -1}',
            "Could not parse the request: adminPort must be in the range [0, 65535]",
        ),
    ],
)
async def test_bad_request_is_400(body: bytes, message: str) -> None:
    manager = await new_manager(BACKEND_DATAPLANE.format(mesh="default", name="dp-1"))
    async with bootstrap_client(manager, default_settings()) as client:
        response = await client.post(
            "/bootstrap", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.text.startswith(message)


async def test_unknown_fields_are_ignored() -> None:
    manager = await new_manager(BACKEND_DATAPLANE.format(mesh="default", name="dp-1"))
    async with bootstrap_client(manager, default_settings()) as client:
        response = await client.post(
            "/bootstrap", json={"mesh": "default", "name": "dp-1", "future": {"x": 1}}
        )
    assert response.status_code == 200


async def test_only_post() -> None:
    manager = await new_manager()
    async with bootstrap_client(manager, default_settings()) as client:
        assert (await client.get("/bootstrap")).status_code == 405
        assert (await client.post("/other", json={})).status_code == 404


async def test_unreadable_ca_file_is_500(tmp_path: Any) -> None:
    manager = await new_manager(BACKEND_DATAPLANE.format(mesh="default", name="dp-1"))
    missing = tmp_path / "missing.pem"
    async with bootstrap_client(manager, default_settings(xds_ca_cert_file=str(missing))) as client:
        response = await client.post("/bootstrap", json={"mesh": "default", "name": "dp-1"})
    assert response.status_code == 500
    assert response.text.startswith("Could not generate a bootstrap configuration:")
    assert str(missing) in response.text
