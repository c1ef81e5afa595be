"""Read-only modes: PUT and DELETE answer 405 with Kuma's plain-text message, reads still work."""

from __future__ import annotations

import pytest

from kuma.api.app import GLOBAL_READ_ONLY_MESSAGE, K8S_READ_ONLY_MESSAGE, REMOTE_READ_ONLY_MESSAGE
from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.resource import ResourceType
from kuma.model.rest import resource_from_dict
from tests.api.samples import sample_body
from tests.api.support import api_client, base_settings, snapshot
from tests.api.test_resources import SERVED, item_path

pytestmark = pytest.mark.anyio

K8S_TEXT = (
    "On Kubernetes you cannot change the state of Kuma resources with 'kumactl apply' or via the "
    "HTTP API. As a best practice, you should always be using 'kubectl apply' instead. You can "
    "still use 'kumactl' or the HTTP API to make read-only operations. On Universal this "
    "limitation does not apply.\n"
)


def test_messages_are_kumas() -> None:
    assert K8S_READ_ONLY_MESSAGE == K8S_TEXT
    assert GLOBAL_READ_ONLY_MESSAGE.startswith(
        "On global control plane you can not modify dataplane"
    )
    assert REMOTE_READ_ONLY_MESSAGE.startswith(
        "On remote control plane you can only modify dataplane"
    )
    assert all(m.endswith("\n") for m in (GLOBAL_READ_ONLY_MESSAGE, REMOTE_READ_ONLY_MESSAGE))


@pytest.mark.parametrize("rtype", SERVED, ids=lambda t: t.name)
async def test_read_only_refuses_writes(manager: ResourceManager, rtype: ResourceType) -> None:
    if rtype is registry.DATAPLANE_INSIGHT:
        await manager.create(resource_from_dict(sample_body(registry.DATAPLANE, "existing")))
    await manager.create(resource_from_dict(sample_body(rtype, "existing")))
    before = await snapshot(manager)
    async with api_client(manager, base_settings(read_only=True)) as client:
        for method, name in (("PUT", "new"), ("PUT", "existing"), ("DELETE", "existing")):
            r = await client.request(method, item_path(rtype, name), json=sample_body(rtype, name))
            assert r.status_code == 405, (method, name)
            assert r.text == K8S_TEXT
            assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert (await client.get(item_path(rtype, "existing"))).status_code == 200
    assert await snapshot(manager) == before


async def test_read_only_message_follows_the_mode(manager: ResourceManager) -> None:
    for mode, message in (
        ("global", GLOBAL_READ_ONLY_MESSAGE),
        ("remote", REMOTE_READ_ONLY_MESSAGE),
    ):
        async with api_client(manager, base_settings(read_only=True, mode=mode)) as client:
            r = await client.delete("/meshes/default")
            assert (r.status_code, r.text) == (405, message)


async def test_global_cp_refuses_dataplane_writes_only(manager: ResourceManager) -> None:
    async with api_client(manager, base_settings(mode="global")) as client:
        dp = await client.put(
            "/meshes/default/dataplanes/dp-1", json=sample_body(registry.DATAPLANE, "dp-1")
        )
        assert (dp.status_code, dp.text) == (405, GLOBAL_READ_ONLY_MESSAGE)
        tp = sample_body(registry.TRAFFIC_PERMISSION, "tp-1")
        assert (
            await client.put("/meshes/default/traffic-permissions/tp-1", json=tp)
        ).status_code == 201


async def test_remote_cp_accepts_dataplane_writes_only(manager: ResourceManager) -> None:
    async with api_client(manager, base_settings(mode="remote")) as client:
        dp = sample_body(registry.DATAPLANE, "dp-1")
        assert (await client.put("/meshes/default/dataplanes/dp-1", json=dp)).status_code == 201
        assert (await client.delete("/meshes/default/dataplanes/dp-1")).status_code == 200
        mesh = await client.put("/meshes/other", json={"type": "Mesh", "name": "other"})
        assert (mesh.status_code, mesh.text) == (405, REMOTE_READ_ONLY_MESSAGE)
        zone = await client.delete("/zones/zone-1")
        assert (zone.status_code, zone.text) == (405, REMOTE_READ_ONLY_MESSAGE)
