"""kuma-cp's HTTP APIs: the REST API (port 5681) and the admin server (127.0.0.1:5679).

    app = build_api_app(manager, ApiSettings(version="0.7.3", hostname="cp-1"))
    admin = build_admin_app(manager, AdminSettings())

Both are Starlette apps; `kuma.cp` serves them with hypercorn. Routes are generated from
`kuma.model.registry`; shapes, paging and errors follow Kuma 0.7.3 (see docs/rest-api.md).
"""

from __future__ import annotations

from kuma.api.admin import build_admin_app
from kuma.api.app import build_api_app
from kuma.api.settings import AdminSettings, ApiSettings

__all__ = ["AdminSettings", "ApiSettings", "build_admin_app", "build_api_app"]
