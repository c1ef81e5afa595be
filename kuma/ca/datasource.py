"""DataSource: bytes from a mesh Secret, a file on the control plane's host, or inline.

Errors carry Kuma's messages (`could not load data: open /x: no such file or directory`,
`could not load data: Resource not found: type="Secret" name="s" mesh="m"`), because they end
up in validation errors users see.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

import anyio

from kuma.ca.core import CaError
from kuma.errors import ResourceNotFoundError
from kuma.model import registry
from kuma.pb.kuma.system import v1alpha1 as system_pb

if TYPE_CHECKING:
    from kuma.manager.manager import ResourceManager

__all__ = ["DataSourceLoader", "go_os_error"]


def go_os_error(op: str, path: str, e: OSError) -> str:
    """An OSError the way Go's os package words it: `open /x: no such file or directory`."""
    text = os.strerror(e.errno) if e.errno is not None else str(e)
    if e.errno == errno.EISDIR:
        op = "read"
    return f"{op} {path}: {text[:1].lower()}{text[1:]}"


class DataSourceLoader:
    """Loads DataSources; Secrets are read from the DataSource's mesh through `manager`."""

    def __init__(self, manager: ResourceManager | None) -> None:
        self._manager = manager

    async def load(self, mesh: str, source: system_pb.DataSource) -> bytes:
        """The bytes `source` names; CaError (Kuma's message) when they cannot be read."""
        if source.secret is not None:
            data = await self._secret(mesh, source.secret)
        elif source.inline is not None:
            data = source.inline
        elif source.file is not None:
            path = source.file
            try:
                data = await anyio.Path(path).read_bytes()
            except OSError as e:
                raise CaError(f"could not load data: {go_os_error('open', path, e)}") from None
        else:
            raise CaError("unsupported type of the DataSource")
        return data

    async def _secret(self, mesh: str, name: str) -> bytes:
        if self._manager is None:
            raise CaError("could not load data: secrets are not available here")
        try:
            secret = await self._manager.get(registry.SECRET, name, mesh)
        except ResourceNotFoundError:
            raise CaError(
                f'could not load data: Resource not found: type="Secret" name="{name}" '
                f'mesh="{mesh}"'
            ) from None
        data: bytes | None = secret.spec.data
        return data or b""
