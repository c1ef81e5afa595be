"""Generators: a resolved Proxy + its MeshContext -> the Envoy resources of that proxy.

    shared = SharedResources(mesh)          # one per mesh, kept by the caller
    proxy = build_proxy(ctx, dataplane, metadata)
    resources = generate(ctx, proxy, shared)

`generate` applies the dataplane's ProxyTemplate (the most specific one, else Kuma's default
that imports `default-proxy`): it runs the imported profiles, adds the template's raw resources,
then applies its modifications (see `proxy_template`). A profile is an ordered list of
generators whose outputs are merged into one ResourceSet (a later generator may replace an
earlier one's resource of the same type and name). Kuma's `default-proxy` profile runs, in
order: prometheus endpoint, transparent proxy, inbound, outbound, direct access, tracing.
kuma-py implements prometheus endpoint, transparent proxy, inbound, outbound and tracing;
direct access slots in at its place in `DEFAULT_PROXY_PROFILE`.

`SnapshotGenerator` is the reconciler-facing entry point: (ctx, dataplane, metadata) ->
Snapshot, keeping one SharedResources per mesh, all built with the control plane's
`GeneratorSettings` (where Envoy finds the SDS server for mTLS).
"""

from __future__ import annotations

from collections.abc import Sequence

from kuma.model.resource import Resource
from kuma.xds.core import DataplaneMetadata, MeshContext, ResourceSet, Snapshot
from kuma.xds.generators.base import (
    ORIGIN_DIRECT_ACCESS,
    ORIGIN_INBOUND,
    ORIGIN_OUTBOUND,
    ORIGIN_PROMETHEUS,
    ORIGIN_PROXY_TEMPLATE_MODIFICATIONS,
    ORIGIN_PROXY_TEMPLATE_RAW,
    ORIGIN_TRACING,
    ORIGIN_TRANSPARENT,
    GenerationError,
    ResourceGenerator,
)
from kuma.xds.generators.inbound import generate_inbound
from kuma.xds.generators.outbound import generate_outbound
from kuma.xds.generators.prometheus import generate_prometheus_endpoint
from kuma.xds.generators.proxy_template import (
    ProxyTemplateError,
    modify,
    raw_resources,
    template_conf,
)
from kuma.xds.generators.settings import GeneratorSettings
from kuma.xds.generators.shared import SharedResources
from kuma.xds.generators.tracing import generate_tracing
from kuma.xds.generators.transparent import generate_transparent_proxy
from kuma.xds.topology import Proxy, build_proxy

__all__ = [
    "DEFAULT_PROXY_PROFILE",
    "GENERATORS",
    "ORIGIN_DIRECT_ACCESS",
    "ORIGIN_INBOUND",
    "ORIGIN_OUTBOUND",
    "ORIGIN_PROMETHEUS",
    "ORIGIN_PROXY_TEMPLATE_MODIFICATIONS",
    "ORIGIN_PROXY_TEMPLATE_RAW",
    "ORIGIN_TRACING",
    "ORIGIN_TRANSPARENT",
    "PROFILES",
    "GenerationError",
    "GeneratorSettings",
    "ProxyTemplateError",
    "ResourceGenerator",
    "SharedResources",
    "SnapshotGenerator",
    "generate",
]

DEFAULT_PROXY_PROFILE: tuple[ResourceGenerator, ...] = (
    generate_prometheus_endpoint,
    generate_transparent_proxy,
    generate_inbound,
    generate_outbound,
    # direct access (next issue)
    generate_tracing,
)
"""Kuma's `default-proxy` profile, in Kuma's order."""

PROFILES: dict[str, tuple[ResourceGenerator, ...]] = {"default-proxy": DEFAULT_PROXY_PROFILE}
"""Profiles a ProxyTemplate may import, by name."""

GENERATORS: dict[str, ResourceGenerator] = {
    ORIGIN_PROMETHEUS: generate_prometheus_endpoint,
    ORIGIN_TRANSPARENT: generate_transparent_proxy,
    ORIGIN_INBOUND: generate_inbound,
    ORIGIN_OUTBOUND: generate_outbound,
    ORIGIN_TRACING: generate_tracing,
}
"""Each generator by the origin it tags its resources with."""


def generate(
    ctx: MeshContext,
    proxy: Proxy,
    shared: SharedResources | None = None,
    profile: Sequence[ResourceGenerator] | None = None,
) -> ResourceSet:
    """Every Envoy resource of `proxy`. Without `shared`, nothing is shared with other calls
    (and default GeneratorSettings apply). With `profile`, only those generators run and the
    ProxyTemplate is ignored. Raises GenerationError (ProxyTemplateError for a template)."""
    if shared is None:
        shared = SharedResources(ctx.name)
    resources = ResourceSet()
    if profile is not None:
        for generator in profile:
            resources.extend(generator(ctx, proxy, shared))
        return resources
    template = proxy.proxy_template
    imports, raws, modifications = template_conf(template)
    for i, name in enumerate(imports):
        generators = PROFILES.get(name)
        if generators is None:
            assert template is not None  # the default template imports a known profile
            raise ProxyTemplateError(
                f"proxytemplate{{name={template.meta.name!r}}}: imports[{i}]{{name={name!r}}}: "
                f"profile{{name={name!r}}}: unknown profile"
            )
        for generator in generators:
            resources.extend(generator(ctx, proxy, shared))
    if template is not None:
        resources.extend(raw_resources(template, raws))
        if modifications:
            modify(template, resources, modifications)
    return resources


class SnapshotGenerator:
    """`(ctx, dataplane, metadata) -> Snapshot`, the reconciler's `Generate` callable.

    Owns one SharedResources per mesh (created on first use). Call `forget(mesh)` when a mesh
    is deleted; `prune(ctx)` now and then drops load assignments of services that are gone.
    """

    def __init__(self, settings: GeneratorSettings | None = None) -> None:
        self.settings = settings if settings is not None else GeneratorSettings()
        self._shared: dict[str, SharedResources] = {}

    def shared(self, mesh: str) -> SharedResources:
        shared = self._shared.get(mesh)
        if shared is None:
            shared = self._shared[mesh] = SharedResources(mesh, settings=self.settings)
        return shared

    def __call__(
        self, ctx: MeshContext, dataplane: Resource, metadata: DataplaneMetadata
    ) -> Snapshot:
        return self.generate(ctx, dataplane, metadata)[0]

    def generate(
        self, ctx: MeshContext, dataplane: Resource, metadata: DataplaneMetadata
    ) -> tuple[Snapshot, frozenset[str]]:
        """The snapshot, and the services whose endpoints it was built from (the reconciler
        regenerates this proxy when one of them changes)."""
        proxy = build_proxy(ctx, dataplane, metadata)
        snapshot = Snapshot.build(generate(ctx, proxy, self.shared(ctx.name)))
        return snapshot, frozenset(proxy.destinations)

    def forget(self, mesh: str) -> None:
        self._shared.pop(mesh, None)

    def prune(self, ctx: MeshContext) -> None:
        shared = self._shared.get(ctx.name)
        if shared is not None:
            shared.prune(ctx.endpoints.keys())
