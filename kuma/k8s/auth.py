"""Authenticating sidecars by their ServiceAccount token (`environment: kubernetes`).

On Kubernetes the injector points kuma-dp at the pod's ServiceAccount token
(`KUMA_DATAPLANE_RUNTIME_TOKEN_PATH=/var/run/secrets/kubernetes.io/serviceaccount/token`); kuma-dp
sends it with its bootstrap request and Envoy sends it as `authorization` metadata on its ADS and
SDS streams. kuma-cp checks it the way Kuma 0.7.3 does (pkg/sds/auth/k8s):

1. a token must be present;
2. the API server must vouch for it: a TokenReview (authentication.k8s.io/v1) answers
   `authenticated: true`;
3. the user must be a service account, `system:serviceaccount:<namespace>:<name>`;
4. `<namespace>` must be the proxy's namespace (the dataplane name is `<pod>.<namespace>`):
   tokens are not bound to one pod, so a pod's token admits any dataplane of its namespace;
5. the Dataplane must exist. (Kuma also requires a `kuma.io/service` there, for the SDS identity;
   kuma-py's SDS server refuses a service-less Dataplane itself when it issues a certificate, and
   ADS must still serve one: a zone ingress Dataplane has no service.)

    async with kube_authenticator(manager) as authenticate:
        await authenticate(ProxyId("default", "web-1.shop"), {"authorization": token})

    authenticate = await tg.start(run_kube_authenticator, manager)   # what kuma-cp does

The authenticator has the signature of `kuma.tokens.make_authenticator`'s and raises the same
typed errors, so the ADS, SDS and bootstrap servers answer as they do for dataplane tokens:

* TokenRequiredError when there is no token;
* TokenRejectedError when steps 2-4 refuse it (Kuma's messages);
* DataplaneNotReadyError (not an AuthenticationError) when the token is fine but the Dataplane
  is missing; the servers answer it as an internal error, so kuma-dp and Envoy retry: the Pod
  controller may not have written the Dataplane yet when the sidecar starts;
* TokenReviewFailedError (not an AuthenticationError) when the API server cannot be asked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import structlog

from kuma.errors import ResourceNotFoundError, TransientError
from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.tokens.auth import (
    DataplaneAuthenticator,
    TokenRejectedError,
    TokenRequiredError,
    token_from_metadata,
)
from kuma.xds.core import ProxyId

__all__ = [
    "DataplaneNotReadyError",
    "KubeAuthenticator",
    "TokenReviewFailedError",
    "kube_authenticator",
    "proxy_namespace",
    "run_kube_authenticator",
]

log = structlog.get_logger("k8s-auth")


class TokenReviewFailedError(TransientError):
    """The TokenReview could not be made (API server unreachable, forbidden, ...)."""


class DataplaneNotReadyError(TransientError):
    """The token is valid but the proxy's Dataplane does not exist (yet)."""


def proxy_namespace(name: str) -> str:
    """The namespace of a Kubernetes dataplane name `<pod>.<namespace>` (TokenRejectedError with
    Kuma's messages when the name has none)."""
    idx = name.rfind(".")
    if idx == -1:
        raise TokenRejectedError('name must include namespace after the dot, ex. "name.namespace"')
    namespace = name[idx + 1 :]
    if not namespace:
        raise TokenRejectedError("namespace must be non-empty")
    return namespace


class KubeAuthenticator:
    """`async (proxy_id, metadata) -> None` checking ServiceAccount tokens with TokenReviews.

    `client`: a lightkube `AsyncClient` (the caller owns and closes it); `manager`: where the
    Dataplane is looked up.
    """

    def __init__(self, client: Any, manager: ResourceManager) -> None:
        self.client = client
        self.manager = manager

    async def __call__(self, proxy_id: ProxyId, metadata: Mapping[str, str]) -> None:
        await self.review_token(proxy_id, token_from_metadata(metadata))
        # the token only says "some pod of this namespace": the rest comes from the proxy id
        try:
            await self.manager.get(registry.DATAPLANE, proxy_id.name, proxy_id.mesh)
        except ResourceNotFoundError as e:
            raise DataplaneNotReadyError(
                f'unable to find Dataplane for proxy "{proxy_id}": {e}'
            ) from None
        log.debug("service account token verified", mesh=proxy_id.mesh, dataplane=proxy_id.name)

    async def review_token(self, proxy_id: ProxyId, token: str) -> None:
        """Steps 1-4 of the module docstring."""
        if not token:
            raise TokenRequiredError("authentication failed: k8s token is missing")
        status = await self._token_review(token)
        if not status.get("authenticated"):
            raise TokenRejectedError("authentication failed: token doesn't belong to a valid user")
        username = str((status.get("user") or {}).get("username") or "")
        parts = username.split(":")
        if len(parts) != 4:
            raise TokenRejectedError(
                "authentication failed: username inside TokenReview response has unexpected "
                f'format: "{username}"'
            )
        if parts[0] != "system" or parts[1] != "serviceaccount":
            raise TokenRejectedError(
                "authentication failed: token must belong to a k8s system account, "
                f'got "{username}"'
            )
        expected = proxy_namespace(proxy_id.name)
        if parts[2] != expected:
            raise TokenRejectedError(
                f'authentication failed: token belongs to a namespace ("{parts[2]}") different '
                f'from proxyId ("{expected}")'
            )

    async def _token_review(self, token: str) -> dict[str, Any]:
        """The `status` of a TokenReview of `token`, as a JSON map."""
        from lightkube import ApiError
        from lightkube.models.authentication_v1 import TokenReviewSpec
        from lightkube.resources.authentication_v1 import TokenReview

        try:
            review = await self.client.create(TokenReview(spec=TokenReviewSpec(token=token)))
        except ApiError as e:
            raise TokenReviewFailedError(
                f"authentication failed: call to TokenReview API failed: {e.status.message}"
            ) from None
        except Exception as e:  # httpx transport errors: the API server is unreachable
            raise TokenReviewFailedError(
                f"authentication failed: call to TokenReview API failed: {e}"
            ) from None
        status: dict[str, Any] = (review.to_dict().get("status") or {}) if review else {}
        return status


@asynccontextmanager
async def kube_authenticator(
    manager: ResourceManager, client: Any = None
) -> AsyncIterator[DataplaneAuthenticator]:
    """A KubeAuthenticator; `client` defaults to kuma-cp's cluster client (in-cluster service
    account, else KUBECONFIG, else ~/.kube/config), made here and closed on exit."""
    from kuma.k8s.controllers.runner import kube_client

    own = client is None
    kube = kube_client() if own else client
    try:
        yield KubeAuthenticator(kube, manager)
    finally:
        if own:
            with anyio.CancelScope(shield=True):
                await kube.close()


async def run_kube_authenticator(
    manager: ResourceManager,
    *,
    task_status: anyio.abc.TaskStatus[DataplaneAuthenticator] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Hand a KubeAuthenticator to `task_status` and keep its client open until cancelled."""
    async with kube_authenticator(manager) as authenticate:
        task_status.started(authenticate)
        await anyio.sleep_forever()
