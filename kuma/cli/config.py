"""kumactl's configuration file (`~/.kumactl/config`).

The file is the YAML form of Kuma's `kumactl.config.v1alpha1.Configuration` message:

    contexts:
    - controlPlane: local
      name: local
    controlPlanes:
    - coordinates:
        apiServer:
          url: http://localhost:5681
      name: local
    currentContext: local

Reading accepts both the JSON names (`controlPlanes`) and the proto names (`control_planes`)
and ignores unknown keys, like Kuma's jsonpb reader. Writing uses the JSON names, sorts keys,
leaves out empty values, creates missing parent directories and gives a new file mode 0600.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kuma.cli.errors import KumactlError
from kuma.cli.output import to_yaml

__all__ = [
    "AdminApiCredentials",
    "Configuration",
    "Context",
    "ControlPlane",
    "default_config_file",
    "load_config",
    "save_config",
]


def default_config_file() -> Path:
    """`$HOME/.kumactl/config`."""
    return Path(os.path.expanduser("~")) / ".kumactl" / "config"


class ConfigInvalidError(KumactlError):
    """A configuration message broke one of its rules (Kuma's protoc-gen-validate wording)."""


def _get(data: Mapping[str, Any], json_name: str, proto_name: str) -> Any:
    if json_name in data:
        return data[json_name]
    return data.get(proto_name)


def _str(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: must be a string")
    return value


def _obj(value: Any, where: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}: must be a list")
    return value


@dataclass
class ControlPlane:
    name: str
    url: str
    """URL of the Control Plane API Server (`coordinates.apiServer.url`)."""

    def validate(self) -> None:
        if not self.name:
            raise ConfigInvalidError(
                "invalid ControlPlane.Name: value length must be at least 1 runes"
            )
        prefix = (
            "invalid ControlPlane.Coordinates: embedded message failed validation | caused by: "
            "invalid ControlPlaneCoordinates.ApiServer: embedded message failed validation | "
            "caused by: invalid ControlPlaneCoordinates_ApiServer.Url: "
        )
        try:
            parsed = urllib.parse.urlsplit(self.url)
        except ValueError as e:
            raise ConfigInvalidError(
                f"{prefix}value must be a valid URI | caused by: {e}"
            ) from None
        if not parsed.scheme:
            raise ConfigInvalidError(f"{prefix}value must be absolute")

    def to_dict(self) -> dict[str, Any]:
        api_server: dict[str, Any] = {"url": self.url} if self.url else {}
        out: dict[str, Any] = {"coordinates": {"apiServer": api_server}}
        if self.name:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> ControlPlane:
        obj = _obj(data, where) or {}
        coordinates = _obj(obj.get("coordinates"), f"{where}.coordinates") or {}
        api_server = (
            _obj(_get(coordinates, "apiServer", "api_server"), f"{where}.coordinates.apiServer")
            or {}
        )
        return cls(
            name=_str(obj.get("name"), f"{where}.name"),
            url=_str(api_server.get("url"), f"{where}.coordinates.apiServer.url"),
        )


@dataclass
class AdminApiCredentials:
    client_cert: str = ""
    client_key: str = ""

    @property
    def has_client_cert(self) -> bool:
        return bool(self.client_cert and self.client_key)


@dataclass
class Context:
    name: str
    control_plane: str
    defaults_mesh: str | None = None
    """`defaults.mesh` (kept as it is; kumactl 0.7.3 does not use it)."""
    admin_api: AdminApiCredentials | None = None
    """`credentials.adminApi`; present (possibly empty) on contexts made by `add`."""
    has_credentials: bool = False

    def validate(self) -> None:
        if not self.name:
            raise ConfigInvalidError("invalid Context.Name: value length must be at least 1 runes")
        if not self.control_plane:
            raise ConfigInvalidError(
                "invalid Context.ControlPlane: value length must be at least 1 runes"
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.control_plane:
            out["controlPlane"] = self.control_plane
        if self.has_credentials or self.admin_api is not None:
            credentials: dict[str, Any] = {}
            if self.admin_api is not None:
                admin: dict[str, Any] = {}
                if self.admin_api.client_cert:
                    admin["clientCert"] = self.admin_api.client_cert
                if self.admin_api.client_key:
                    admin["clientKey"] = self.admin_api.client_key
                credentials["adminApi"] = admin
            out["credentials"] = credentials
        if self.defaults_mesh is not None:
            out["defaults"] = {"mesh": self.defaults_mesh} if self.defaults_mesh else {}
        if self.name:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Context:
        obj = _obj(data, where) or {}
        defaults = _obj(obj.get("defaults"), f"{where}.defaults")
        credentials = _obj(obj.get("credentials"), f"{where}.credentials")
        admin_api: AdminApiCredentials | None = None
        if credentials is not None:
            admin = _obj(_get(credentials, "adminApi", "adminApi"), f"{where}.credentials.adminApi")
            if admin is not None:
                admin_api = AdminApiCredentials(
                    client_cert=_str(
                        _get(admin, "clientCert", "client_cert"), f"{where}.clientCert"
                    ),
                    client_key=_str(_get(admin, "clientKey", "client_key"), f"{where}.clientKey"),
                )
        return cls(
            name=_str(obj.get("name"), f"{where}.name"),
            control_plane=_str(_get(obj, "controlPlane", "control_plane"), f"{where}.controlPlane"),
            defaults_mesh=None
            if defaults is None
            else _str(defaults.get("mesh"), f"{where}.defaults.mesh"),
            admin_api=admin_api,
            has_credentials=credentials is not None,
        )


@dataclass
class Configuration:
    control_planes: list[ControlPlane] = field(default_factory=list)
    contexts: list[Context] = field(default_factory=list)
    current_context: str = ""

    @classmethod
    def default(cls) -> Configuration:
        """What kumactl writes on first use: the `local` control plane at localhost:5681."""
        return cls(
            control_planes=[ControlPlane("local", "http://localhost:5681")],
            contexts=[Context("local", "local")],
            current_context="local",
        )

    # -- validation and (de)serialisation ------------------------------------------------------

    def validate(self) -> None:
        for i, cp in enumerate(self.control_planes):
            try:
                cp.validate()
            except ConfigInvalidError as e:
                raise ConfigInvalidError(
                    f"invalid Configuration.ControlPlanes[{i}]: embedded message failed "
                    f"validation | caused by: {e.message}"
                ) from None
        for i, ctx in enumerate(self.contexts):
            try:
                ctx.validate()
            except ConfigInvalidError as e:
                raise ConfigInvalidError(
                    f"invalid Configuration.Contexts[{i}]: embedded message failed "
                    f"validation | caused by: {e.message}"
                ) from None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.contexts:
            out["contexts"] = [c.to_dict() for c in self.contexts]
        if self.control_planes:
            out["controlPlanes"] = [cp.to_dict() for cp in self.control_planes]
        if self.current_context:
            out["currentContext"] = self.current_context
        return out

    def to_yaml(self) -> str:
        return to_yaml(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> Configuration:
        """Raises ValueError on values of the wrong shape."""
        obj = _obj(data, "configuration") or {}
        return cls(
            control_planes=[
                ControlPlane.from_dict(cp, f"controlPlanes[{i}]")
                for i, cp in enumerate(
                    _list(_get(obj, "controlPlanes", "control_planes"), "controlPlanes")
                )
            ],
            contexts=[
                Context.from_dict(c, f"contexts[{i}]")
                for i, c in enumerate(_list(obj.get("contexts"), "contexts"))
            ],
            current_context=_str(_get(obj, "currentContext", "current_context"), "currentContext"),
        )

    # -- the operations of Kuma's config_helpers.go --------------------------------------------

    def get_context(self, name: str) -> Context | None:
        return next((c for c in self.contexts if c.name == name), None)

    def current(self) -> Context | None:
        return self.get_context(self.current_context)

    def get_control_plane(self, name: str) -> ControlPlane | None:
        return next((cp for cp in self.control_planes if cp.name == name), None)

    def add_control_plane(self, cp: ControlPlane, *, overwrite: bool) -> bool:
        for i, old in enumerate(self.control_planes):
            if old.name == cp.name:
                if not overwrite:
                    return False
                self.control_planes[i] = cp
                return True
        self.control_planes.append(cp)
        return True

    def add_context(self, ctx: Context, *, overwrite: bool) -> bool:
        for i, old in enumerate(self.contexts):
            if old.name == ctx.name:
                if not overwrite:
                    return False
                self.contexts[i] = ctx
                return True
        self.contexts.append(ctx)
        return True

    def remove_context(self, name: str) -> bool:
        ctx = self.get_context(name)
        if ctx is None:
            return False
        self.contexts.remove(ctx)
        if self.current_context == name:
            self.current_context = self.contexts[0].name if self.contexts else ""
        return True

    def switch_context(self, name: str) -> bool:
        if self.get_context(name) is None:
            return False
        self.current_context = name
        return True

    def remove_control_plane(self, name: str) -> bool:
        cp = self.get_control_plane(name)
        if cp is None:
            return False
        for ctx in [c for c in self.contexts if c.control_plane == name]:
            self.remove_context(ctx.name)
        self.control_planes.remove(cp)
        return True


def load_config(path: Path) -> Configuration:
    """Read and validate the file; KumactlError with Kuma's messages on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise KumactlError(
            f'Failed to read configuration from file "{path}": {e.strerror or e}'
        ) from None
    try:
        data = yaml.safe_load(text) if text.strip() else {}
        config = Configuration.from_dict(data)
    except (yaml.YAMLError, ValueError) as e:
        detail = str(e).replace("\n", " ")
        raise KumactlError(f'Failed to parse configuration from file "{path}": {detail}') from None
    try:
        config.validate()
    except ConfigInvalidError as e:
        raise KumactlError(
            f'Failed to load invalid configuration from file "{path}": {e.message}'
        ) from None
    return config


def save_config(path: Path, config: Configuration) -> None:
    """Validate and write; parent directories are created (0755), a new file gets mode 0600."""
    try:
        config.validate()
    except ConfigInvalidError as e:
        raise KumactlError(f"Failed to save invalid configuration: {e.message}") from None
    contents = config.to_yaml().encode("utf-8")
    parent = path.parent
    try:
        parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as e:
        raise KumactlError(f'Failed to create a directory "{parent}": {e.strerror or e}') from None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(contents)
    except OSError as e:
        raise KumactlError(
            f'Failed to write configuration into file "{path}": {e.strerror or e}'
        ) from None
