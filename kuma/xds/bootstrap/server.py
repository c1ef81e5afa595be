"""The bootstrap server (kuma-cp port 5682, `bootstrapServer.port`): `POST /bootstrap`.

    app = build_bootstrap_app(manager, BootstrapSettings.from_config(config))

Request body: `{"mesh", "name", "adminPort"?, "dataplaneTokenPath"?}` (JSON). Answers:

| status | body |
|---|---|
| 200 | the Envoy v3 bootstrap as YAML, `text/x-yaml` |
| 400 | plain text: the body is not JSON, or `mesh`/`name` is missing, or a field has a bad type |
| 404 | plain text: no such dataplane (Kuma: empty body) |
| 422 | plain text: `Resource precondition failed: Port N requested as both admin and inbound port.` |
| 500 | plain text; the cause is logged |
"""

from __future__ import annotations

import json

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kuma.errors import ResourceNotFoundError
from kuma.manager import ResourceManager
from kuma.xds.bootstrap.generator import (
    AdminPortConflictError,
    bootstrap_to_yaml,
    generate_bootstrap,
)
from kuma.xds.bootstrap.settings import BootstrapSettings
from kuma.xds.bootstrap.types import BootstrapRequest, BootstrapRequestError

__all__ = ["YAML_CONTENT_TYPE", "build_bootstrap_app"]

YAML_CONTENT_TYPE = "text/x-yaml"

log = structlog.get_logger("bootstrap-server")


def build_bootstrap_app(manager: ResourceManager, settings: BootstrapSettings) -> Starlette:
    """The starlette app serving `POST /bootstrap` for dataplanes stored in `manager`."""

    async def bootstrap(request: Request) -> Response:
        body = await request.body()
        try:
            req = BootstrapRequest.from_json(json.loads(body))
        except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError and BootstrapRequestError
            reason = str(e) if isinstance(e, BootstrapRequestError) else f"invalid JSON: {e}"
            log.info("could not parse a bootstrap request", error=reason)
            return PlainTextResponse(f"Could not parse the request: {reason}", status_code=400)
        bound = log.bind(mesh=req.mesh, dataplane=req.name)
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
