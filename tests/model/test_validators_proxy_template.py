"""ProxyTemplate validation: selectors, imports, raw resources and modifications."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations

SELECTORS = """
        selectors:
        - match:
            kuma.io/service: backend
"""

VALID = {
    "full example": SELECTORS
    + """
        conf:
          imports:
          - default-proxy
          resources:
          - name: additional
            version: v1
            resource: |
              '@type': type.googleapis.com/envoy.config.cluster.v3.Cluster
              connectTimeout: 5s
              loadAssignment:
                clusterName: localhost:8443
                endpoints:
                  - lbEndpoints:
                      - endpoint:
                          address:
                            socketAddress:
                              address: 127.0.0.1
                              portValue: 8443
              name: localhost:8443
              type: STATIC
          - name: as-json
            version: v1
            resource: '{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "l"}'
        """,
    "no selectors at all (matches every dataplane)": """
        conf:
          imports: [default-proxy]
        """,
    "empty conf": SELECTORS,
    "cluster modifications": SELECTORS
    + """
        conf:
          modifications:
          - cluster:
              operation: add
              value: |
                name: xyz
                connectTimeout: 5s
                type: STATIC
          - cluster:
              operation: patch
              value: |
                connectTimeout: 5s
          - cluster:
              operation: patch
              match:
                name: inbound:127.0.0.1:8080
              value: |
                connectTimeout: 5s
          - cluster:
              operation: patch
              match:
                origin: inbound
          - cluster:
              operation: remove
          - cluster:
              operation: remove
              match:
                origin: inbound
        """,
    "listener modifications": SELECTORS
    + """
        conf:
          modifications:
          - listener:
              operation: add
              value: |
                name: xyz
                address:
                  socketAddress:
                    address: 192.168.0.1
                    portValue: 8080
          - listener:
              operation: patch
              match:
                name: inbound:127.0.0.1:8080
              value: |
                address:
                  socketAddress:
                    portValue: 8080
          - listener:
              operation: remove
              match:
                origin: inbound
        """,
    "network filter modifications": SELECTORS
    + """
        conf:
          modifications:
          - networkFilter:
              operation: addFirst
              value: |
                name: envoy.filters.network.tcp_proxy
                typedConfig:
                  '@type': type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                  cluster: backend
          - networkFilter:
              operation: addLast
              value: '{"name": "envoy.filters.network.tcp_proxy"}'
          - networkFilter:
              operation: addBefore
              match:
                name: envoy.filters.network.direct_response
              value: |
                name: envoy.filters.network.tcp_proxy
          - networkFilter:
              operation: addAfter
              match:
                name: envoy.filters.network.direct_response
                listenerName: inbound:127.0.0.0:8080
              value: |
                name: envoy.filters.network.tcp_proxy
          - networkFilter:
              operation: patch
              match:
                name: envoy.filters.network.tcp_proxy
                listenerName: inbound:127.0.0.0:8080
              value: |
                typedConfig:
                  cluster: other
          - networkFilter:
              operation: remove
        """,
    "http filter modifications": SELECTORS
    + """
        conf:
          modifications:
          - httpFilter:
              operation: addFirst
              value: |
                name: envoy.filters.http.router
          - httpFilter:
              operation: addAfter
              match:
                name: envoy.filters.http.router
                listenerName: inbound:127.0.0.0:8080
              value: |
                name: envoy.filters.http.gzip
          - httpFilter:
              operation: patch
              match:
                name: envoy.filters.http.router
          - httpFilter:
              operation: remove
              match:
                name: envoy.filters.http.gzip
        """,
    "virtual host modifications": SELECTORS
    + """
        conf:
          modifications:
          - virtualHost:
              operation: add
              match:
                origin: outbound
                routeConfigurationName: outbound:backend
              value: |
                name: backend
                domains:
                - backend.com
                routes:
                - match:
                    prefix: /
                  route:
                    cluster: backend
          - virtualHost:
              operation: patch
              match:
                routeConfigurationName: outbound:backend
                name: backend
              value: |
                retryPolicy:
                  retryOn: 5xx
                  numRetries: 3
          - virtualHost:
              operation: remove
              match:
                name: backend
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid(text: str) -> None:
    assert violations("ProxyTemplate", text) == []


NOT_VALID = "native Envoy resource is not valid: "

INVALID = {
    "empty import": (
        """
        conf:
          imports:
          - ""
        """
        + SELECTORS,
        [("conf.imports[0]", "cannot be empty")],
    ),
    "unknown profile": (
        """
        conf:
          imports:
          - default-proxy
          - unknown-profile
        """
        + SELECTORS,
        [("conf.imports[1]", "profile not found. Available profiles: default-proxy")],
    ),
    "resources with empty fields": (
        SELECTORS
        + """
        conf:
          resources:
          - name:
            version:
            resource:
        """,
        [
            ("conf.resources[0].name", "cannot be empty"),
            ("conf.resources[0].version", "cannot be empty"),
            ("conf.resources[0].resource", "cannot be empty"),
        ],
    ),
    "selector without tags": (
        """
        selectors:
        - match:
        """,
        [
            ("selectors[0].match", "must have at least one tag"),
            ("selectors[0].match", 'mandatory tag "kuma.io/service" is missing'),
        ],
    ),
    "empty tag name": (
        """
        selectors:
        - match:
            "": asdf
        """,
        [
            ("selectors[0].match", "tag name must be non-empty"),
            ("selectors[0].match", 'mandatory tag "kuma.io/service" is missing'),
        ],
    ),
    "empty tag value": (
        """
        selectors:
        - match:
            kuma.io/service:
        """,
        [('selectors[0].match["kuma.io/service"]', "tag value must be non-empty")],
    ),
    "resources that are not Envoy resources": (
        SELECTORS
        + """
        conf:
          resources:
          - name: a
            version: v1
            resource: not-envoy-resource
          - name: b
            version: v1
            resource: "- a list"
          - name: c
            version: v1
            resource: |
              name: no-type
          - name: d
            version: v1
            resource: '{"@type": "type.googleapis.com/x", '
          - name: e
            version: v1
            resource: "42"
        """,
        [
            (
                "conf.resources[0].resource",
                NOT_VALID
                + "json: cannot unmarshal string into Go value of type map[string]*json.RawMessage",
            ),
            (
                "conf.resources[1].resource",
                NOT_VALID
                + "json: cannot unmarshal array into Go value of type map[string]*json.RawMessage",
            ),
            ("conf.resources[2].resource", NOT_VALID + "Any JSON doesn't have '@type'"),
            ("conf.resources[3].resource", NOT_VALID + "unexpected EOF"),
            (
                "conf.resources[4].resource",
                NOT_VALID
                + "json: cannot unmarshal number into Go value of type map[string]*json.RawMessage",
            ),
        ],
    ),
    "invalid cluster modifications": (
        SELECTORS
        + """
        conf:
          modifications:
          - cluster:
              operation: addFirst
          - cluster:
              operation: add
              value: '{'
          - cluster:
              operation: patch
              value: '{'
          - cluster:
              operation: add
              match:
                name: inbound:127.0.0.1:80
              value: |
                name: xyz
          - cluster:
              operation: add
          - cluster: {}
        """,
        [
            (
                "conf.modifications[0].cluster.operation",
                'invalid operation. Available operations: "add", "patch", "remove"',
            ),
            ("conf.modifications[1].cluster.value", NOT_VALID + "unexpected EOF"),
            ("conf.modifications[2].cluster.value", NOT_VALID + "unexpected EOF"),
            ("conf.modifications[3].cluster.match", "cannot be defined"),
            ("conf.modifications[4].cluster.value", NOT_VALID + "value cannot be empty"),
            (
                "conf.modifications[5].cluster.operation",
                'invalid operation. Available operations: "add", "patch", "remove"',
            ),
        ],
    ),
    "invalid listener modifications": (
        SELECTORS
        + """
        conf:
          modifications:
          - listener:
              operation: addFirst
          - listener:
              operation: add
              value: '{'
          - listener:
              operation: patch
              value: 'true'
          - listener:
              operation: add
              match:
                name: inbound:127.0.0.1:80
              value: |
                name: xyz
        """,
        [
            (
                "conf.modifications[0].listener.operation",
                'invalid operation. Available operations: "add", "patch", "remove"',
            ),
            ("conf.modifications[1].listener.value", NOT_VALID + "unexpected EOF"),
            (
                "conf.modifications[2].listener.value",
                NOT_VALID
                + "json: cannot unmarshal bool into Go value of type map[string]json.RawMessage",
            ),
            ("conf.modifications[3].listener.match", "cannot be defined"),
        ],
    ),
    "invalid network filter modifications": (
        SELECTORS
        + """
        conf:
          modifications:
          - networkFilter:
              operation: addFirst
              value: '{'
          - networkFilter:
              operation: addBefore
              value: '{'
          - networkFilter:
              operation: addAfter
              value: '{'
          - networkFilter:
              operation: patch
              value: '{'
          - networkFilter:
              operation: add
        """,
        [
            ("conf.modifications[0].networkFilter.value", NOT_VALID + "unexpected EOF"),
            (
                "conf.modifications[1].networkFilter.match.name",
                "cannot be empty. You need to pick a filter before which this one will be added",
            ),
            ("conf.modifications[1].networkFilter.value", NOT_VALID + "unexpected EOF"),
            (
                "conf.modifications[2].networkFilter.match.name",
                "cannot be empty. You need to pick a filter after which this one will be added",
            ),
            ("conf.modifications[2].networkFilter.value", NOT_VALID + "unexpected EOF"),
            ("conf.modifications[3].networkFilter.match.name", "cannot be empty"),
            ("conf.modifications[3].networkFilter.value", NOT_VALID + "unexpected EOF"),
            (
                "conf.modifications[4].networkFilter.operation",
                "invalid operation. Available operations: "
                '"addFirst", "addLast", "addBefore", "addAfter", "patch", "remove"',
            ),
        ],
    ),
    "invalid http filter modifications": (
        SELECTORS
        + """
        conf:
          modifications:
          - httpFilter:
              operation: addFirst
              value: '{'
          - httpFilter:
              operation: addBefore
              match: {listenerName: x}
              value: '{'
          - httpFilter:
              operation: addAfter
              value: '{'
          - httpFilter:
              operation: patch
              value: '{'
          - httpFilter:
              operation: addLast
        """,
        [
            ("conf.modifications[0].httpFilter.value", NOT_VALID + "unexpected EOF"),
            (
                "conf.modifications[1].httpFilter.match.name",
                "cannot be empty. You need to pick a filter before which this one will be added",
            ),
            ("conf.modifications[1].httpFilter.value", NOT_VALID + "unexpected EOF"),
            (
                "conf.modifications[2].httpFilter.match.name",
                "cannot be empty. You need to pick a filter after which this one will be added",
            ),
            ("conf.modifications[2].httpFilter.value", NOT_VALID + "unexpected EOF"),
            ("conf.modifications[3].httpFilter.match.name", "cannot be empty"),
            ("conf.modifications[3].httpFilter.value", NOT_VALID + "unexpected EOF"),
            ("conf.modifications[4].httpFilter.value", NOT_VALID + "value cannot be empty"),
        ],
    ),
    "invalid virtual host modifications": (
        SELECTORS
        + """
        conf:
          modifications:
          - virtualHost:
              operation: add
              match:
                name: xyz
              value: '{'
          - virtualHost:
              operation: addFirst
          - virtualHost:
              operation: patch
              value: '{'
        """,
        [
            ("conf.modifications[0].virtualHost.match.name", "cannot be defined"),
            ("conf.modifications[0].virtualHost.value", NOT_VALID + "unexpected EOF"),
            (
                "conf.modifications[1].virtualHost.operation",
                'invalid operation. Available operations: "add", "patch", "remove"',
            ),
            ("conf.modifications[2].virtualHost.value", NOT_VALID + "unexpected EOF"),
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("ProxyTemplate", text) == expected
