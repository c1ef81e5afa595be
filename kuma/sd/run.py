"""`kuma-prometheus-sd run`: catalog, then a MADS stream kept open for ever, feeding the file.

    await run_sd(load_config({}))

1. The output file's directory must be writable (created if missing), else OutputFileError.
2. `GET <cp-address>/catalog` names the MADS server (`apis.monitoringAssignment.url`); if the
   control plane cannot be reached or answers something else, CatalogError (Kuma 0.7.3 exits
   there too: run it under a supervisor that restarts it, or start it after kuma-cp).
3. The MADS stream is opened; every accepted response rewrites the file when the targets
   changed. When the stream ends or fails, the file stays as it is and the stream is opened
   again after a backoff that doubles from `Backoff.initial` up to `Backoff.maximum` and starts
   over once a stream has delivered a response. Before each new attempt the catalog is read
   again (if the control plane answers) in case the MADS address moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import structlog
from anyio.abc import TaskStatus

from kuma.errors import KumaError
from kuma.pb.kuma.observability.v1alpha1 import MonitoringAssignment
from kuma.sd.config import SdConfig
from kuma.sd.filesd import FileSdWriter, OutputFileError
from kuma.sd.mads import MadsAddress, MadsSession, stream_assignments
from kuma.sd.targets import to_target_groups

__all__ = ["Backoff", "CatalogError", "fetch_mads_address", "run_sd"]

log = structlog.get_logger("kuma-prometheus-sd")

CATALOG_TIMEOUT = 10.0
"""Seconds the first `GET /catalog` may take."""
CATALOG_REFRESH_TIMEOUT = 2.0
"""Seconds a re-read of the catalog before reconnecting may take (else the last URL is used)."""


class CatalogError(KumaError):
    """kuma-cp's catalog could not be read, or names no usable MADS server."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Wait between MADS stream attempts: `initial`, doubling up to `maximum` (seconds)."""

    initial: float = 0.2
    maximum: float = 5.0

    def next(self, delay: float) -> float:
        return min(delay * 2, self.maximum)


async def fetch_mads_address(cp_address: str, http_timeout: float = CATALOG_TIMEOUT) -> MadsAddress:
    """The MADS server named by `<cp_address>/catalog`. Raises CatalogError."""
    url = cp_address.rstrip("/") + "/catalog"
    try:
        async with httpx.AsyncClient(timeout=http_timeout) as client:
            resp = await client.get(url)
    except httpx.HTTPError as e:
        raise CatalogError(
            f'unable to retrieve Catalog of Kuma APIs from "{url}": {e or type(e).__name__}'
        ) from e
    if resp.status_code != 200:
        raise CatalogError(
            f'unable to retrieve Catalog of Kuma APIs from "{url}": HTTP {resp.status_code}'
        )
    try:
        data: Any = resp.json()
        mads_url = data["apis"]["monitoringAssignment"]["url"]
    except (ValueError, KeyError, TypeError) as e:
        raise CatalogError(
            f'"{url}" is not a Kuma catalog: no apis.monitoringAssignment.url ({e!r})'
        ) from e
    if not isinstance(mads_url, str):
        raise CatalogError(f'"{url}": apis.monitoringAssignment.url is not a string')
    try:
        return MadsAddress.parse(mads_url)
    except ValueError as e:
        raise CatalogError(f"{url}: {e}") from e


async def run_sd(
    cfg: SdConfig,
    *,
    backoff: Backoff = Backoff(),
    task_status: TaskStatus[MadsAddress] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run until cancelled (see module docstring). Reports the MADS address once started."""
    log.info("effective configuration", config=cfg.to_json_dict())
    writer = FileSdWriter(cfg.output_file)
    writer.check_writable()
    address = await fetch_mads_address(cfg.cp_address)
    log.info("fetched Catalog of Kuma APIs", monitoring_assignment=str(address))
    task_status.started(address)

    session = MadsSession(cfg.name)
    delay = backoff.initial
    stream_id = 0
    while True:
        stream_id += 1
        responses = 0

        async def on_assignments(assignments: list[MonitoringAssignment]) -> None:
            nonlocal responses
            responses += 1
            groups = to_target_groups(assignments)
            try:
                if writer.write(groups):
                    log.info("wrote targets", file=str(writer.path), groups=len(groups))
            except OutputFileError as e:
                log.error("failed to write output", error=str(e))

        try:
            await stream_assignments(address, session, on_assignments)
            log.info("MADS stream closed by the server", stream_id=stream_id)
        except Exception as e:  # any failure of one stream: keep the file, reconnect
            log.error(
                "xDS stream terminated with an error",
                stream_id=stream_id,
                server=str(address),
                error=str(e) or type(e).__name__,
            )
        if responses:
            delay = backoff.initial
        await anyio.sleep(delay)
        delay = backoff.next(delay)
        try:
            address = await fetch_mads_address(cfg.cp_address, CATALOG_REFRESH_TIMEOUT)
        except CatalogError as e:
            log.debug("catalog not available, reconnecting to the last MADS address", error=str(e))
