"""kuma.k8s.auth: sidecars authenticated by their ServiceAccount token through TokenReviews sent to
the (fake) API server, with Kuma 0.7.3's refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from lightkube import AsyncClient, KubeConfig

from kuma.k8s.auth import (
    DataplaneNotReadyError,
    KubeAuthenticator,
    TokenReviewFailedError,
    kube_authenticator,
)
from kuma.manager import ResourceManager
from kuma.model import codec, registry
from kuma.model.resource import Resource, ResourceMeta
from kuma.store.memory import MemoryStore
from kuma.tokens import TokenRejectedError, TokenRequiredError
from kuma.xds.core import ProxyId
from kuma.xds.server.ads import AuthenticationError
from tests.support.fake_kube import FakeKube, fake_kube

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

WEB = ProxyId("default", "web-7d4f9-abcde.shop")


@pytest.fixture(scope="module")
def kube() -> Iterator[FakeKube]:
    with fake_kube(namespaces=("default", "shop", "billing", "kuma-system")) as k:
        yield k


@pytest.fixture
async def manager() -> ResourceManager:
    manager = ResourceManager(MemoryStore())
    await manager.ensure_default_mesh()
    spec = codec.decode(
        registry.DATAPLANE.spec_cls,
        {
            "networking": {
                "address": "10.1.0.7",
                "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web_shop_svc_80"}}],
            }
        },
    )
    # Kubernetes names (with a dot) go straight to the store, as the Kubernetes store holds them
    await manager.store.create(Resource(registry.DATAPLANE, ResourceMeta(WEB.name, WEB.mesh), spec))
    return manager


@pytest.fixture
async def authenticate(
    kube: FakeKube, manager: ResourceManager, tmp_path: Path
) -> AsyncIterator[KubeAuthenticator]:
    config = KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    client = AsyncClient(config, trust_env=False)
    try:
        yield KubeAuthenticator(client, manager)
    finally:
        await client.close()


def auth(token: str) -> dict[str, str]:
    return {"authorization": token}


async def test_token_of_the_pods_namespace_is_accepted(
    kube: FakeKube, authenticate: KubeAuthenticator
) -> None:
    token = kube.issue_service_account_token("shop", "default")
    before = len(kube.requests)
    await authenticate(WEB, auth(token))
    await authenticate(WEB, auth(f"Bearer {token}\n"))  # as make_authenticator reads it
    # any ServiceAccount of the namespace: Kuma 0.7.3 tokens are not bound to one pod
    await authenticate(WEB, auth(kube.issue_service_account_token("shop", "web")))
    reviews = [r for r in kube.requests[before:] if r[1].endswith("/tokenreviews")]
    assert reviews == [("POST", "/apis/authentication.k8s.io/v1/tokenreviews")] * 3


async def test_a_dataplane_without_service_is_let_in(
    kube: FakeKube, manager: ResourceManager, authenticate: KubeAuthenticator
) -> None:
    """A zone ingress has no `kuma.io/service`: ADS must still serve it (SDS refuses it a
    certificate on its own)."""
    ingress = ProxyId("default", "kuma-ingress-5f6b8-qwxyz.kuma-system")
    spec = codec.decode(
        registry.DATAPLANE.spec_cls,
        {"networking": {"ingress": {}, "address": "10.1.0.9", "inbound": [{"port": 10001}]}},
    )
    await manager.store.create(
        Resource(registry.DATAPLANE, ResourceMeta(ingress.name, ingress.mesh), spec)
    )
    await authenticate(ingress, auth(kube.issue_service_account_token("kuma-system")))


@pytest.mark.parametrize(
    ("token", "error", "message"),
    [
        ("", TokenRequiredError, "authentication failed: k8s token is missing"),
        (
            "not-a-token",
            TokenRejectedError,
            "authentication failed: token doesn't belong to a valid user",
        ),
        (
            "user:jane",
            TokenRejectedError,
            "authentication failed: username inside TokenReview response has unexpected "
            'format: "jane"',
        ),
        (
            "user:system:serviceaccount:shop",
            TokenRejectedError,
            "authentication failed: username inside TokenReview response has unexpected "
            'format: "system:serviceaccount:shop"',
        ),
        (
            "user:system:admin:ops:jane",
            TokenRejectedError,
            'authentication failed: token must belong to a k8s system account, got "system:admin:'
            'ops:jane"',
        ),
        (
            "sa:billing",
            TokenRejectedError,
            'authentication failed: token belongs to a namespace ("billing") different from '
            'proxyId ("shop")',
        ),
    ],
)
async def test_refusals_have_kumas_messages(
    kube: FakeKube,
    authenticate: KubeAuthenticator,
    token: str,
    error: type[AuthenticationError],
    message: str,
) -> None:
    if token.startswith("user:"):
        token = kube.issue_token(token.removeprefix("user:"))
    elif token.startswith("sa:"):
        token = kube.issue_service_account_token(token.removeprefix("sa:"), "default")
    with pytest.raises(error) as refused:
        await authenticate(WEB, auth(token) if token else {})
    assert str(refused.value) == message
    assert isinstance(refused.value, AuthenticationError)  # ADS/SDS: UNAUTHENTICATED


async def test_dataplane_must_exist_and_name_a_namespace(
    kube: FakeKube, authenticate: KubeAuthenticator
) -> None:
    token = kube.issue_service_account_token("shop")
    # the token is fine, the Dataplane is not there (yet): not an authentication failure, so
    # kuma-dp and Envoy retry until the Pod controller has written it
    with pytest.raises(DataplaneNotReadyError) as missing:
        await authenticate(ProxyId("default", "other-pod.shop"), auth(token))
    assert not isinstance(missing.value, AuthenticationError)
    assert str(missing.value).startswith(
        'unable to find Dataplane for proxy "default.other-pod.shop": '
    )
    with pytest.raises(DataplaneNotReadyError):  # same name, other mesh
        await authenticate(ProxyId("demo", WEB.name), auth(token))
    with pytest.raises(TokenRejectedError) as no_namespace:
        await authenticate(ProxyId("default", "web"), auth(token))
    assert str(no_namespace.value) == (
        'name must include namespace after the dot, ex. "name.namespace"'
    )


async def test_unreachable_api_server_is_not_a_refusal(
    manager: ResourceManager, tmp_path: Path
) -> None:
    with fake_kube() as gone:
        kubeconfig = gone.write_kubeconfig(tmp_path / "kubeconfig")
    client = AsyncClient(KubeConfig.from_file(kubeconfig), trust_env=False)
    async with kube_authenticator(manager, client) as authenticate:
        with pytest.raises(TokenReviewFailedError) as failed:
            await authenticate(WEB, auth("some-token"))
    await client.close()
    assert not isinstance(failed.value, AuthenticationError)  # answered as an internal error
    assert str(failed.value).startswith("authentication failed: call to TokenReview API failed")
