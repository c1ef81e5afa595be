"""The bootstrap server (kuma-cp port 5682, `bootstrapServer.port`): `POST /bootstrap`.

    app = build_bootstrap_app(manager, BootstrapSettings.from_config(config),
                              authenticator=make_authenticator(manager, enabled=True))

Request body: `{"mesh", "name", "adminPort"?, "dataplaneTokenPath"?, "dataplaneToken"?}` (JSON).

With an `authenticator` (kuma.tokens.make_authenticator), the request's `dataplaneToken` is
checked for the requested `<mesh>.<name>` (as `authorization` metadata) before anything else,
so a dataplane with a missing or wrong token learns it at once instead of from an Envoy that
cannot connect. The token, when given, is put into the bootstrap (ADS initial metadata).
Answers:

| status | body |
|---|---|
| 200 | the Envoy v3 bootstrap as YAML, `text/x-yaml` |
| 400 | plain text: the body is not JSON, or `mesh`/`name` is missing, or a field has a bad type |
| 401 | plain text: a token is required and the request has none (`TOKEN_REQUIRED_MESSAGE`) |
| 403 | plain text: `Invalid Dataplane Token: <reason>` (garbled, other key, other dataplane) |
| 404 | plain text: no such dataplane (Kuma: empty body) |
| 422 | plain text: `Resource precondition failed: Port N requested as both admin and inbound port.` |
| 503 | plain text: `Not ready yet, retry: <reason>` (Kubernetes: the Pod's Dataplane is not written yet, or the API server does not answer) |
| 500 | plain text; the cause is logged (also when the token cannot be checked, e.g. no signing key) |
"""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kuma.errors import ResourceNotFoundError, TransientError
from kuma.manager import ResourceManager
from kuma.xds.bootstrap.generator import (
    AdminPortConflictError,
    bootstrap_to_yaml,
    generate_bootstrap,
)
from kuma.xds.bootstrap.settings import BootstrapSettings
from kuma.xds.bootstrap.types import BootstrapRequest, BootstrapRequestError

if TYPE_CHECKING:
    from kuma.xds.server.ads import Authenticator

__all__ = ["TOKEN_REQUIRED_MESSAGE", "YAML_CONTENT_TYPE", "build_bootstrap_app"]

YAML_CONTENT_TYPE = "text/x-yaml"
TOKEN_REQUIRED_MESSAGE = (
    "Dataplane Token is required. Generate token using 'kumactl generate dataplane-token > "
    "/path/file' and provide it via --dataplane-token-file=/path/file argument to Kuma DP"
)
"""Kuma 1.x's answer to a bootstrap request without a token when tokens are required."""

log = structlog.get_logger("bootstrap-server")


def build_bootstrap_app(
    manager: ResourceManager,
    settings: BootstrapSettings,
    *,
    authenticator: Authenticator | None = None,
) -> Starlette:
    """The starlette app serving `POST /bootstrap` for dataplanes stored in `manager`.

    `authenticator`: `(proxy_id, metadata) -> None` (sync or async) checking the request's
    token, given as `{"authorization": <dataplaneToken>}` (`{}` when the request has none);
    raising `kuma.xds.server.ads.AuthenticationError` refuses the request (401 when it carried
    no token, else 403). None: no check.
    """
    from kuma.xds.core import ProxyId
    from kuma.xds.server.ads import AuthenticationError

    async def authenticate(req: BootstrapRequest, bound: Any) -> Response | None:
        assert authenticator is not None
        metadata = {"authorization": req.dataplane_token} if req.dataplane_token else {}
        try:
            result = authenticator(ProxyId(req.mesh, req.name), metadata)
            if inspect.isawaitable(result):
                await result
        except AuthenticationError as e:
            if not req.dataplane_token:
                bound.info("bootstrap refused: no dataplane token", reason=str(e))
                return PlainTextResponse(TOKEN_REQUIRED_MESSAGE, status_code=401)
            bound.info("bootstrap refused: invalid dataplane token", reason=str(e))
            return PlainTextResponse(f"Invalid Dataplane Token: {e}", status_code=403)
        except TransientError as e:  # e.g. the Pod's Dataplane is not written yet: kuma-dp retries
            bound.info("bootstrap deferred", reason=str(e))
            return PlainTextResponse(f"Not ready yet, retry: {e}", status_code=503)
        except Exception as e:
            bound.exception("could not check the dataplane token")
            return PlainTextResponse(f"Could not check the Dataplane Token: {e}", status_code=500)
        return None

    async def bootstrap(request: Request) -> Response:
        body = await request.body()
        try:
            req = BootstrapRequest.from_json(json.loads(body))
        except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError and BootstrapRequestError
            reason = str(e) if isinstance(e, BootstrapRequestError) else f"invalid JSON: {e}"
            log.info("could not parse a bootstrap request", error=reason)
            return PlainTextResponse(f"Could not parse the request: {reason}", status_code=400)
        bound = log.bind(mesh=req.mesh, dataplane=req.name)
        if authenticator is not None:
            refused = await authenticate(req, bound)
            if refused is not None:
                return refused
        try:
            config = await generate_bootstrap(manager, settings, req)
        except ResourceNotFoundError:
            bound.info("bootstrap requested for an unknown dataplane")
            return PlainTextResponse(
                f'Dataplane "{req.name}" not found in mesh "{req.mesh}"', status_code=404
            )
        except AdminPortConflictError as e:
            bound.info("admin port clashes with a dataplane port", port=e.port)
            return PlainTextResponse(str(e), status_code=422)
        except Exception as e:
            bound.exception("could not generate a bootstrap configuration")
            return PlainTextResponse(
                f"Could not generate a bootstrap configuration: {e}", status_code=500
            )
        bound.info(
            "generated bootstrap configuration",
            admin_port=req.admin_port or settings.admin_port,
            xds=f"{settings.xds_host}:{settings.xds_port}",
        )
        return Response(bootstrap_to_yaml(config), headers={"content-type": YAML_CONTENT_TYPE})

    return Starlette(routes=[Route("/bootstrap", bootstrap, methods=["POST"])])
