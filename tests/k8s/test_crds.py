from kuma.k8s import crds


def test_every_stored_type_but_secret_is_a_crd_with_kumas_plural() -> None:
    plurals = {c.kind: c.plural for c in crds.all_crds()}
    assert "Secret" not in plurals
    assert plurals["Mesh"] == "meshes"
    assert plurals["TrafficPermission"] == "trafficpermissions"
    assert plurals["DataplaneInsight"] == "dataplaneinsights"
    assert plurals["Retry"] == "retries"


def test_scopes_follow_kuma_0_7_3() -> None:
    assert not crds.for_type("Mesh").namespaced
    assert not crds.for_type("Zone").namespaced
    assert crds.for_type("Dataplane").namespaced
    assert crds.for_type("TrafficRoute").namespaced


def test_paths_and_manifest() -> None:
    route = crds.for_type("TrafficRoute")
    assert (
        route.path("kuma-demo", "r1")
        == "/apis/kuma.io/v1alpha1/namespaces/kuma-demo/trafficroutes/r1"
    )
    assert crds.for_type("Mesh").path(name="default") == "/apis/kuma.io/v1alpha1/meshes/default"
    manifest = crds.crd_manifest(route)
    assert manifest["metadata"]["name"] == "trafficroutes.kuma.io"
    assert manifest["spec"]["scope"] == "Namespaced"
    props = manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert "mesh" in props
    assert (
        "mesh"
        not in crds.crd_manifest(crds.for_type("Mesh"))["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"
        ]["properties"]
    )


def test_insights_declare_status_so_a_real_api_server_keeps_it() -> None:
    def props(kind: str) -> dict:
        manifest = crds.crd_manifest(crds.for_type(kind))
        return manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]

    assert props("DataplaneInsight")["status"]["x-kubernetes-preserve-unknown-fields"] is True
    assert "status" not in props("Dataplane")
