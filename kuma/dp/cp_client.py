"""kuma-dp's calls to the control plane: `GET /catalog` (API server) and `POST /bootstrap`.

Both retry at a constant backoff until a maximum duration has passed (Kuma's go-retry
`Constant` + `WithMaxDuration`: the last attempt happens when the time is up). Answers that no
retry can change fail at once instead (Kuma 0.7.3 retries them for the whole 30 s):

* 404 from the bootstrap server: the dataplane does not exist (on Universal, the user creates it
  before starting kuma-dp);
* 422: the admin port clashes with one of the dataplane's ports;
* 400: the request itself is malformed;
* 401 / 403: the control plane requires a dataplane token and got none / refused the one sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import anyio
import httpx
import structlog
import yaml

from kuma.config.duration import format_duration
from kuma.dp.errors import (
    BootstrapError,
    ControlPlaneUnreachableError,
    DataplaneNotFoundError,
    TokenError,
)
from kuma.xds.bootstrap.types import BootstrapRequest

__all__ = ["HTTP_TIMEOUT", "Catalog", "fetch_bootstrap", "fetch_catalog"]

log = structlog.get_logger("kuma-dp")

HTTP_TIMEOUT = 10.0
"""Seconds one HTTP request to the control plane may take (Kuma: 10 s)."""

T = TypeVar("T")


class _Retryable(Exception):
    """One attempt failed in a way a later attempt may not."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """The parts of kuma-cp's `GET /catalog` kuma-dp uses."""

    bootstrap_url: str
    dataplane_token_local_url: str = ""

    @property
    def token_required(self) -> bool:
        """Kuma: the token server is enabled iff it publishes a local URL."""
        return bool(self.dataplane_token_local_url)

    @classmethod
    def from_json(cls, data: Any) -> Catalog:
        apis = data.get("apis") if isinstance(data, dict) else None
        if not isinstance(apis, dict):
            raise ValueError('the catalog has no "apis" object')
        bootstrap = apis.get("bootstrap") or {}
        token = apis.get("dataplaneToken") or {}
        url = bootstrap.get("url") if isinstance(bootstrap, dict) else None
        if not isinstance(url, str) or not url:
            raise ValueError("the catalog names no bootstrap server (apis.bootstrap.url)")
        local = token.get("localUrl", "") if isinstance(token, dict) else ""
        return cls(url, local if isinstance(local, str) else "")


async def _retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    backoff: timedelta,
    max_duration: timedelta,
    retrying: str,
) -> T:
    """Run `attempt` until it succeeds or raises something other than _Retryable; re-raise the
    last _Retryable once `max_duration` has passed."""
    deadline = anyio.current_time() + max_duration.total_seconds()
    while True:
        try:
            return await attempt()
        except _Retryable as e:
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                raise
            log.info(retrying, backoff=format_duration(backoff), error=str(e))
            await anyio.sleep(min(backoff.total_seconds(), remaining))


def _describe(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def fetch_catalog(
    client: httpx.AsyncClient, cp_address: str, *, backoff: timedelta, max_duration: timedelta
) -> Catalog:
    """`GET <cp_address>/catalog`, retried; ControlPlaneUnreachableError when time is up."""
    url = cp_address.rstrip("/") + "/catalog"
    log.info("connecting to the Control Plane API for Bootstrap API location", url=url)

    async def attempt() -> Catalog:
        try:
            response = await client.get(url)
        except httpx.HTTPError as e:
            raise _Retryable(f"could not execute the request: {_describe(e)}") from e
        if response.status_code != 200:
            raise _Retryable(f"unexpected status code {response.status_code}. Expected 200")
        try:
            return Catalog.from_json(response.json())
        except ValueError as e:  # includes JSONDecodeError
            raise _Retryable(f"could not parse the catalog: {e}") from e

    try:
        catalog = await _retry(
            attempt,
            backoff=backoff,
            max_duration=max_duration,
            retrying="could not connect to the Control Plane API. Retrying.",
        )
    except _Retryable as e:
        raise ControlPlaneUnreachableError(
            f"could not retrieve catalog from the Control Plane API at {cp_address} within "
            f"{format_duration(max_duration)} (KUMA_CONTROL_PLANE_API_SERVER_RETRY_MAX_DURATION): "
            f"{e}. Check --cp-address and that kuma-cp is running."
        ) from None
    log.info("connection successful", bootstrap_url=catalog.bootstrap_url)
    return catalog


async def fetch_bootstrap(
    client: httpx.AsyncClient,
    bootstrap_url: str,
    request: BootstrapRequest,
    *,
    backoff: timedelta,
    max_duration: timedelta,
) -> str:
    """`POST <bootstrap_url>/bootstrap`: the Envoy bootstrap (YAML text), retried on transient
    failures; DataplaneNotFoundError / BootstrapError / TokenError at once for a 404 /
    400 or 422 / 401 or 403."""
    url = bootstrap_url.rstrip("/") + "/bootstrap"

    async def attempt() -> str:
        log.info("trying to fetch bootstrap configuration from the Control Plane", url=url)
        try:
            response = await client.post(url, json=request.to_json())
        except httpx.HTTPError as e:
            raise _Retryable(f"request to bootstrap server failed: {_describe(e)}") from e
        if response.status_code == 404:
            raise DataplaneNotFoundError(
                f'Dataplane "{request.name}" was not found in mesh "{request.mesh}" on the '
                "Control Plane. On Universal, create the Dataplane (kumactl apply -f "
                "dataplane.yaml) before starting kuma-dp, and check --name and --mesh."
            )
        if response.status_code == 422:
            raise BootstrapError(
                f"{response.text.strip()} Choose an --admin-port that none of the "
                "Dataplane's inbounds or outbounds use."
            )
        if response.status_code == 401:
            raise TokenError(
                f"the Control Plane requires a dataplane token: {response.text.strip()}"
            )
        if response.status_code == 403:
            source = f" in {request.dataplane_token_path}" if request.dataplane_token_path else ""
            raise TokenError(
                f"the Control Plane rejected the dataplane token{source}: "
                f"{response.text.strip()}. On Universal, generate a token for this dataplane "
                f"with 'kumactl generate dataplane-token --dataplane={request.name} "
                f"--mesh={request.mesh}'; on Kubernetes the token is the Pod's ServiceAccount "
                "token, which must belong to the Pod's namespace"
            )
        if response.status_code == 400:
            raise BootstrapError(
                f"the bootstrap server rejected the request: {response.text.strip()}"
            )
        if response.status_code != 200:
            detail = response.text.strip()[:200]
            raise _Retryable(
                f"unexpected status code: {response.status_code}"
                + (f" ({detail})" if detail else "")
            )
        text = response.text
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise _Retryable(f"the bootstrap configuration is not valid YAML: {e}") from e
        if not isinstance(parsed, dict):
            raise _Retryable("the bootstrap configuration is not a YAML mapping")
        return text

    try:
        return await _retry(
            attempt,
            backoff=backoff,
            max_duration=max_duration,
            retrying="could not fetch bootstrap configuration. Retrying.",
        )
    except _Retryable as e:
        raise ControlPlaneUnreachableError(
            f"could not fetch the bootstrap configuration from {url} within "
            f"{format_duration(max_duration)} "
            f"(KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_RETRY_MAX_DURATION): {e}"
        ) from None
