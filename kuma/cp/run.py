"""`kuma-cp run`: the control plane's lifecycle.

    bind every listener  ->  serve diagnostics (/ready answers 503)  ->  open the store
        ->  create the default mesh  ->  load the mesh catalog (xDS)  ->  serve the REST API,
        admin, bootstrap and ADS servers  ->  /ready 200
    (every server runs under hypercorn in ONE task group, stopped by one shared anyio Event)
    SIGINT/SIGTERM  ->  /ready turns 503, servers stop accepting and finish in-flight requests
        (bounded by SHUTDOWN_TIMEOUT), the store is closed, `run_control_plane` returns.

A second signal during shutdown cancels whatever is left at once. Failures raise: ListenError
(a port is taken), ConfigError (a setting kuma-py cannot honour yet), StoreError /
DatabaseNotMigratedError (the database), each with a message for the operator.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import structlog
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from prometheus_client import CollectorRegistry

from kuma.config import ConfigError, ConfigProblem, KumaCpConfig
from kuma.cp.listeners import Listener
from kuma.cp.metrics import ResourceCounter, register_cp_info
from kuma.diagnostics import Readiness, build_diagnostics_app
from kuma.errors import ResourceAlreadyExistsError
from kuma.manager import ResourceManager
from kuma.manager.ca import enable_mesh_ca
from kuma.store.base import ResourceStore
from kuma.store.metered import MeteredStore
from kuma.tokens import DataplaneAuthenticator, ensure_signing_key, make_authenticator
from kuma.version import __version__

__all__ = [
    "GRACEFUL_TIMEOUT",
    "MADS_MIN_RESYNC",
    "SHUTDOWN_TIMEOUT",
    "check_supported",
    "open_store",
    "postgres_options",
    "run_control_plane",
]

log = structlog.get_logger("kuma-cp")

GRACEFUL_TIMEOUT = 3.0
"""Seconds each server gives in-flight requests after a stop signal (Kuma waits 3 s too)."""
SHUTDOWN_TIMEOUT = 5.0
"""Seconds after a stop signal before anything still running is cancelled."""

MADS_MIN_RESYNC = 60.0
"""Seconds: MADS pushes on store changes; its safety reload runs no more often than this."""

ASGIApp = Callable[..., Any]


def check_supported(cfg: KumaCpConfig) -> None:
    """ConfigError for valid Kuma settings that kuma-py cannot run with yet."""
    problems = []
    if cfg.mode != "standalone":
        problems.append(
            ConfigProblem("mode", f"{cfg.mode} mode is not supported yet; use standalone")
        )
    if problems:
        raise ConfigError("Unsupported configuration", problems)


async def open_store(cfg: KumaCpConfig) -> ResourceStore:
    """The store `store.type` names, connected (a PostgresStore also checks its schema)."""
    if cfg.store.type == "memory":
        from kuma.store.memory import MemoryStore

        return MemoryStore()
    if cfg.store.type == "postgres":
        from kuma.store.postgres import PostgresStore

        return await PostgresStore.connect(
            **postgres_options(cfg), max_connections=cfg.store.postgres.max_open_connections
        )
    if cfg.store.type == "kubernetes":
        # the kubeconfig comes from the usual places: in-cluster service account, $KUBECONFIG,
        # ~/.kube/config (docs/kubernetes.md)
        from kuma.store.kubernetes import KubernetesStore

        return await KubernetesStore.connect(system_namespace=cfg.store.kubernetes.system_namespace)
    raise ConfigError(
        "Unsupported configuration",
        [ConfigProblem("store.type", f"store type {cfg.store.type!r} is not supported")],
    )


def postgres_options(cfg: KumaCpConfig) -> dict[str, Any]:
    """`store.postgres.*` as keyword arguments of PostgresStore.connect / migrate_up."""
    p = cfg.store.postgres
    return {
        "host": p.host,
        "port": p.port,
        "user": p.user,
        "password": p.password,
        "database": p.db_name,
        "connect_timeout": float(p.connection_timeout),
        "tls_mode": p.tls.mode,
        "tls_cert_path": p.tls.cert_path or None,
        "tls_key_path": p.tls.key_path or None,
        "tls_ca_path": p.tls.ca_path or None,
    }


def _read_only(cfg: KumaCpConfig) -> bool:
    """Kubernetes mode: resources are changed with kubectl; the REST API only reads."""
    return cfg.api_server.read_only or cfg.environment == "kubernetes"


def _listeners(cfg: KumaCpConfig) -> list[Listener]:
    return [
        Listener("api", "apiServer.port", "", cfg.api_server.port),
        Listener("admin", "adminServer.local.port", "127.0.0.1", cfg.admin_server.local.port),
        Listener("diagnostics", "xdsServer.diagnosticsPort", "", cfg.xds_server.diagnostics_port),
        Listener("bootstrap", "bootstrapServer.port", "", cfg.bootstrap_server.port),
        Listener("xds", "xdsServer.grpcPort", "", cfg.xds_server.grpc_port),
        Listener("sds", "sdsServer.grpcPort", "", cfg.sds_server.grpc_port),
        Listener(
            "mads",
            "monitoringAssignmentServer.grpcPort",
            "",
            cfg.monitoring_assignment_server.grpc_port,
        ),
        *_admission_listener(cfg),
    ]


# -- Kubernetes admission webhooks (kuma.k8s.webhooks) ----------------------------------------


def _admission_enabled(cfg: KumaCpConfig) -> bool:
    """Kubernetes mode serves the admission webhooks (the config requires a cert dir there)."""
    return cfg.environment == "kubernetes"


def _admission_listener(cfg: KumaCpConfig) -> list[Listener]:
    if not _admission_enabled(cfg):
        return []
    adm = cfg.runtime.kubernetes.admission_server
    return [Listener("admission", "runtime.kubernetes.admissionServer.port", adm.address, adm.port)]


def _admission_tls(cfg: KumaCpConfig) -> dict[str, Any]:
    """TLS files by listener name (the admission server's, checked to load)."""
    if not _admission_enabled(cfg):
        return {}
    from kuma.k8s.webhooks import webhook_tls

    return {"admission": webhook_tls(cfg.runtime.kubernetes.admission_server.cert_dir)}


def _admission_app(cfg: KumaCpConfig, manager: ResourceManager) -> dict[str, ASGIApp]:
    if not _admission_enabled(cfg):
        return {}
    from kuma.k8s.webhooks import (
        LazyLightkubeLookup,
        ManagerMeshChecks,
        build_webhook_app,
        injector_from_config,
    )

    lookup = LazyLightkubeLookup()
    injector = injector_from_config(cfg, lookup)
    checks = ManagerMeshChecks(manager)
    app = build_webhook_app(injector, lookup, mesh_checks=checks, mode=cfg.mode)
    return {"admission": app}


def _apps(
    cfg: KumaCpConfig, manager: ResourceManager, auth: Any, metrics: CollectorRegistry
) -> dict[str, ASGIApp]:
    """The ASGI apps of the API and admin listeners, by listener name."""
    from kuma.api import build_admin_app, build_api_app
    from kuma.api.settings import AdminSettings, ApiSettings

    display = cfg.to_json_dict(mask_secrets=True)
    api_settings = ApiSettings(
        version=__version__,
        hostname=socket.gethostname(),
        public_url=cfg.api_public_url,
        read_only=_read_only(cfg),
        mode=cfg.mode,
        environment=cfg.environment,
        cors_allowed_domains=tuple(cfg.api_server.cors_allowed_domains),
        catalog=cfg.catalog(),
        config_json=lambda: display,
    )
    from kuma.xds.bootstrap import BootstrapSettings, build_bootstrap_app

    return {
        "api": build_api_app(manager, api_settings, metrics=metrics),
        "admin": build_admin_app(
            manager,
            AdminSettings(
                read_only=_read_only(cfg),
                # Kuma 0.7.3 issues dataplane tokens on Universal only (Kubernetes: kuma.k8s.auth)
                dataplane_token_enabled=(
                    cfg.admin_server.apis.dataplane_token.enabled
                    and cfg.environment != "kubernetes"
                ),
            ),
        ),
        "bootstrap": build_bootstrap_app(
            manager, BootstrapSettings.from_config(cfg), authenticator=auth
        ),
        **_admission_app(cfg, manager),
    }


def _sds_target(cfg: KumaCpConfig, xds_host: str) -> str:
    url = cfg.api_server.catalog.sds.url
    if url:
        return url.split("://", 1)[-1].rstrip("/")
    return f"{xds_host}:{cfg.sds_server.grpc_port}"


class _Xds:
    """The xDS side of the control plane: catalog -> reconciler -> ADS server, plus insights."""

    def __init__(
        self,
        cfg: KumaCpConfig,
        manager: ResourceManager,
        registry: Any,
        ca_managers: Mapping[str, Any],
        auth: Any,
    ) -> None:
        from kuma.sds import SdsServer, sds_hosts, sds_server_tls
        from kuma.xds.catalog import MeshCatalog, MeshChange
        from kuma.xds.generators import SnapshotGenerator
        from kuma.xds.generators.settings import GeneratorSettings
        from kuma.xds.insights import InsightRecorder
        from kuma.xds.metrics import XdsMetrics
        from kuma.xds.reconciler import Reconciler
        from kuma.xds.server.ads import AdsServer

        self.metrics = XdsMetrics(registry)
        xds_host = cfg.bootstrap_server.params.xds_host or cfg.general.advertised_hostname
        self.sds_tls = sds_server_tls(
            cfg.sds_server.tls_cert_file,
            cfg.sds_server.tls_key_file,
            hosts=sds_hosts(xds_host, cfg.api_server.catalog.sds.url),
        )
        # Envoy reaches SDS where the catalog says (apiServer.catalog.sds.url), else on the xDS
        # host, and trusts the SDS server's own certificate for that channel.
        self.generator = SnapshotGenerator(
            GeneratorSettings(
                sds_target=_sds_target(cfg, xds_host), sds_ca_pem=self.sds_tls.cert_pem
            )
        )

        def on_change(changes: list[MeshChange]) -> None:
            for change in changes:
                if change.deleted:
                    self.generator.forget(change.mesh)
            self.reconciler.on_change(changes)

        self.catalog = MeshCatalog(manager, on_change=on_change)
        self.reconciler = Reconciler(
            self.catalog,
            self.generator.generate,
            observe=self.metrics.observe_generation,
            on_error=self.metrics.count_generation_error,
        )
        self.insights = InsightRecorder(
            manager,
            flush_interval=cfg.xds_server.dataplane_status_flush_interval.total_seconds(),
            subscription_limit=cfg.metrics.dataplane.subscription_limit,
            enabled=cfg.metrics.dataplane.enabled,
        )
        self.instance_id = f"{socket.gethostname()}-{os.getpid()}"
        self.server = AdsServer(
            self.reconciler,
            instance_id=self.instance_id,
            insights=self.insights,
            metrics=self.metrics,
            authenticator=auth,
        )
        self.sds = SdsServer(
            manager,
            ca_managers,
            authenticator=auth,
            refresh_interval=cfg.sds_server.dataplane_configuration_refresh_interval.total_seconds(),
            metrics=registry,
        )

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Load every mesh, then start regenerating and flushing (before streams arrive)."""
        await tg.start(self.catalog.run)
        await tg.start(self.reconciler.run)
        await tg.start(self.insights.run)


async def _serve(listener: Listener, app: ASGIApp, stop: anyio.Event, tls: Any = None) -> None:
    hc = HypercornConfig()
    if tls is not None:  # a kuma.k8s.webhooks.WebhookTls
        hc.certfile, hc.keyfile = tls.cert_file, tls.key_file
    hc.bind = [f"fd://{listener.take_fd()}"]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.graceful_timeout = GRACEFUL_TIMEOUT
    hc.include_server_header = False
    # hypercorn closes a keep-alive connection after 1,000 requests by default; Go never does,
    # and clients (kumactl loops, dashboards, load tests) should not see spurious closes.
    hc.keep_alive_max_requests = 2**31
    await serve(app, hc, shutdown_trigger=stop.wait)
    log.debug("server stopped", server=listener.name)


async def _serve_grpc(run: Any, sock: socket.socket, stop: anyio.Event) -> None:
    """A gRPC server's `run(sock=..., task_status=...)` until `stop` is set."""
    async with anyio.create_task_group() as tg:
        await tg.start(functools.partial(run, sock=sock))
        await stop.wait()
        tg.cancel_scope.cancel()


def _serve_mads(
    cfg: KumaCpConfig,
    manager: ResourceManager,
    listener: Listener,
    serving: anyio.abc.TaskGroup,
    stop: anyio.Event,
    store: ResourceStore | None,
) -> None:
    """MADS on its pre-bound listener: assignments pushed on Mesh/Dataplane changes, with a full
    reload every `assignmentRefreshInterval` but at most every MADS_MIN_RESYNC seconds."""
    from kuma.mads import MadsServer
    from kuma.mads.index import no_extensions

    interval = cfg.monitoring_assignment_server.assignment_refresh_interval.total_seconds()
    server = MadsServer(
        manager,
        instance_id=f"{socket.gethostname()}-{os.getpid()}",
        resync_interval=max(interval, MADS_MIN_RESYNC),
        # the Kubernetes store's k8s.kuma.io/name and /namespace become Prometheus labels
        name_extensions=getattr(store, "name_extensions", no_extensions),
    )
    log.info("listening", server="mads", address=listener.address)
    sock, listener.sock = listener.sock, None
    assert sock is not None
    serving.start_soon(_serve_grpc, server.run, sock, stop, name="mads")


async def _watch_signals(
    stop: anyio.Event, startup: anyio.CancelScope, everything: anyio.CancelScope
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if not stop.is_set():
                log.info("stop signal received, shutting down", signal=name)
                stop.set()
                startup.cancel()  # no-op once start-up is over
            else:
                log.warning("second stop signal received, stopping now", signal=name)
                everything.cancel()


async def _create_defaults(cfg: KumaCpConfig, manager: ResourceManager) -> None:
    if cfg.defaults.skip_mesh_creation:
        log.info("skipping default Mesh creation", reason="defaults.skipMeshCreation")
        return
    try:
        created = await manager.ensure_default_mesh()
    except ResourceAlreadyExistsError:  # another instance created it just now
        created = False
    log.info("default Mesh created" if created else "default Mesh already exists")


async def _authenticator(
    cfg: KumaCpConfig, manager: ResourceManager, background: anyio.abc.TaskGroup
) -> DataplaneAuthenticator:
    """What ADS, SDS and bootstrap check dataplanes with (kuma.tokens, kuma.k8s.auth)."""
    if cfg.environment == "kubernetes":
        # Kuma 0.7.3: sidecars present their ServiceAccount token, checked with a TokenReview
        # whatever adminServer.apis.dataplaneToken says; no signing key is created (standalone
        # Kubernetes does not use one)
        from kuma.k8s.auth import run_kube_authenticator

        authenticate: DataplaneAuthenticator = await background.start(
            run_kube_authenticator, manager
        )
        return authenticate
    # Kuma creates the token signing key on Universal whether tokens are on or not
    await ensure_signing_key(manager)
    return make_authenticator(manager, cfg.admin_server.apis.dataplane_token.enabled)


async def run_control_plane(
    config: KumaCpConfig,
    *,
    readiness: Readiness | None = None,
    handle_signals: bool = True,
    stop: anyio.Event | None = None,
) -> None:
    """Run kuma-cp until SIGINT/SIGTERM (or until `stop` is set); see the module docstring.

    `readiness` is what `/ready` reports (pass one to watch it); `handle_signals=False` leaves
    signals alone, for callers embedding the control plane (tests).
    """
    check_supported(config)
    cfg = config.autoconfigured()
    readiness = readiness or Readiness()
    stop = stop or anyio.Event()
    server_log = logging.getLogger("hypercorn.error")
    if not server_log.isEnabledFor(logging.DEBUG):
        server_log.setLevel(logging.WARNING)  # "Running on ..." repeats our "listening" events
    log.info("starting control plane", version=__version__, mode=cfg.mode)
    log.info(
        "current configuration",
        config=json.dumps(cfg.to_json_dict(mask_secrets=True), separators=(",", ":")),
    )
    async with anyio.create_task_group() as root:
        startup = anyio.CancelScope()
        if handle_signals:
            root.start_soon(_watch_signals, stop, startup, root.cancel_scope)
        try:
            await _run(cfg, readiness, stop, startup)
        finally:
            readiness.set(False)
            root.cancel_scope.cancel()
    log.info("control plane stopped")


async def _run(
    cfg: KumaCpConfig, readiness: Readiness, stop: anyio.Event, startup: anyio.CancelScope
) -> None:
    store: ResourceStore | None = None
    listeners = _listeners(cfg)
    tls = _admission_tls(cfg)
    try:
        # Listeners first: a taken port fails before anything connects anywhere.
        for listener in listeners:
            listener.bind()
        by_name = {listener.name: listener for listener in listeners}
        async with anyio.create_task_group() as background:
            async with anyio.create_task_group() as serving:
                diagnostics = by_name.pop("diagnostics")
                xds_listener = by_name.pop("xds")
                sds_listener = by_name.pop("sds")
                mads_listener = by_name.pop("mads")
                registry = CollectorRegistry()
                log.info("listening", server=diagnostics.name, address=diagnostics.address)
                serving.start_soon(
                    _serve,
                    diagnostics,
                    build_diagnostics_app(readiness, registry),
                    stop,
                    name="diagnostics",
                )
                with startup:  # /ready answers 503 meanwhile
                    store = await open_store(cfg)
                    log.info("resource store opened", type=cfg.store.type)
                    run_store = getattr(store, "run", None)
                    if run_store is not None:
                        await background.start(run_store)
                    manager = ResourceManager(
                        MeteredStore(store, registry),
                        # `<pod>.<namespace>` names: DataplaneInsights of sidecars are written
                        check_names=cfg.store.type != "kubernetes",
                    )
                    ca_managers = enable_mesh_ca(manager)
                    await _create_defaults(cfg, manager)
                    auth = await _authenticator(cfg, manager, background)
                    apps = _apps(cfg, manager, auth, registry)
                    xds = _Xds(cfg, manager, registry, ca_managers, auth)
                    await xds.start(background)
                    register_cp_info(registry, xds.instance_id)
                    await background.start(ResourceCounter(manager, registry).run)
                    if cfg.environment == "kubernetes":  # Pods -> Dataplane CRs
                        from kuma.k8s.controllers import run_controllers

                        await background.start(run_controllers, cfg)
                if not startup.cancel_called:
                    for name, listener in by_name.items():
                        log.info("listening", server=name, address=listener.address)
                        serving.start_soon(
                            _serve, listener, apps[name], stop, tls.get(name), name=name
                        )
                    log.info("listening", server="xds", address=xds_listener.address)
                    assert xds_listener.sock is not None
                    xds_sock, xds_listener.sock = xds_listener.sock, None
                    serving.start_soon(_serve_grpc, xds.server.run, xds_sock, stop, name="xds")
                    log.info("listening", server="sds", address=sds_listener.address)
                    sds_sock, sds_listener.sock = sds_listener.sock, None
                    assert sds_sock is not None
                    serving.start_soon(
                        _serve_grpc,
                        functools.partial(xds.sds.run, ssl=xds.sds_tls.ssl_context()),
                        sds_sock,
                        stop,
                        name="sds",
                    )
                    _serve_mads(cfg, manager, mads_listener, serving, stop, store)
                    readiness.set(True)
                    log.info("control plane ready")
                await stop.wait()
                readiness.set(False)
                serving.cancel_scope.deadline = anyio.current_time() + SHUTDOWN_TIMEOUT
            background.cancel_scope.cancel()
    finally:
        for listener in listeners:
            listener.close()
        if store is not None:
            with anyio.CancelScope(shield=True):
                await store.close()
            log.info("resource store closed")
