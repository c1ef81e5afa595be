"""Dataplane validation: Kuma 0.7.3's rules, field paths, messages and order."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations

VALID = {
    "reference backend with inbound and outbounds": """
        networking:
          address: 192.168.0.2
          inbound:
          - port: 8000
            servicePort: 80
            tags:
              kuma.io/service: backend
              kuma.io/protocol: http
              version: v1
              region: us
          outbound:
          - port: 10000
            tags:
              kuma.io/service: redis
          - port: 10001
            service: db
        """,
    "reference gateway": """
        networking:
          address: 10.0.0.1
          gateway:
            tags:
              kuma.io/service: kong
          outbound:
          - port: 33033
            tags:
              kuma.io/service: backend
        """,
    "full inbounds and outbounds": """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 8080
            servicePort: 7777
            address: 127.0.0.1
            tags:
              kuma.io/service: backend
              version: "1"
          outbound:
          - port: 3333
            address: 127.0.0.1
            tags:
              kuma.io/service: redis
        """,
    "gateway with valid tags": """
        networking:
          address: 192.168.0.1
          gateway:
            tags:
              kuma.io/service: backend
              version: "1"
              kuma.io/valid: abc.0123-789.under_score:90
          outbound:
          - port: 3333
            service: redis
        """,
    "ingress mode": """
        networking:
          address: 192.168.0.1
          ingress:
            availableServices:
            - tags:
                kuma.io/service: backend
                version: "1"
                region: us
            - tags:
                kuma.io/service: web
                version: v2
                region: eu
          inbound:
          - port: 10001
        """,
    "service address differs from the dataplane address": """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 10001
            serviceAddress: 192.168.0.2
            servicePort: 5050
            address: 1.1.1.1
            tags:
              kuma.io/service: backend
        """,
    "same inbound and service address, different ports": """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 10001
            address: 192.168.0.2
            serviceAddress: 192.168.0.2
            servicePort: 10002
            tags:
              kuma.io/service: backend
        """,
    "IPv6 addresses, protocol in capitals, transparent proxying, metrics override": """
        networking:
          address: fd00::1
          inbound:
          - port: 8080
            serviceAddress: "::1"
            tags:
              kuma.io/service: web
              kuma.io/protocol: HTTP2
          outbound:
          - port: 10000
            address: "::1"
            tags:
              kuma.io/service: backend
          transparentProxying:
            redirectPortInbound: 15006
            redirectPortOutbound: 15001
            directAccessServices: ["*"]
        metrics:
          type: prometheus
          conf:
            port: 1234
            path: /non-standard-path
            tags: {kuma.io/service: dataplane-metrics}
            skipMTLS: true
            somethingNewer: ignored
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid_dataplanes(text: str) -> None:
    assert violations("Dataplane", text) == []


INVALID = {
    "no inbound and no gateway": (
        """
        networking:
          address: 192.168.0.1
          outbound:
          - port: 3333
            service: redis
        """,
        [("networking", "has to contain at least one inbound interface or gateway")],
    ),
    "no networking at all": (
        "metrics: {type: prometheus}",
        [
            ("networking", "has to contain at least one inbound interface or gateway"),
            ("networking.address", "address has to be valid IP address"),
        ],
    ),
    "both inbound and gateway": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 8080
            servicePort: 7777
            tags:
              kuma.io/service: backend
          gateway:
            tags:
              kuma.io/service: kong
        """,
        [("networking", "inbound cannot be defined both with gateway")],
    ),
    "address is a hostname": (
        """
        networking:
          address: backend.local
          gateway: {tags: {kuma.io/service: kong}}
        """,
        [("networking.address", "address has to be valid IP address")],
    ),
    "inbound ports out of range": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - tags:
              kuma.io/service: backend
          - port: 65536
            tags:
              kuma.io/service: sub-backend
        """,
        [
            ("networking.inbound[0].port", "port has to be in range of [1, 65535]"),
            ("networking.inbound[1].port", "port has to be in range of [1, 65535]"),
        ],
    ),
    "inbound servicePort out of range": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            servicePort: 65536
            tags: {kuma.io/service: backend}
        """,
        [("networking.inbound[0].servicePort", "servicePort has to be in range of [0, 65535]")],
    ),
    "inbound address and service address not IPs": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            address: invalid-address
            serviceAddress: INVALID
            tags: {kuma.io/service: backend}
        """,
        [
            ("networking.inbound[0].serviceAddress", "serviceAddress has to be valid IP address"),
            ("networking.inbound[0].address", "address has to be valid IP address"),
        ],
    ),
    "service address equals the dataplane address and port": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 10001
            serviceAddress: 192.168.0.1
            tags: {kuma.io/service: backend}
        """,
        [
            (
                "networking.inbound[0].serviceAddress",
                "serviceAddress and servicePort has to differ from address and port",
            )
        ],
    ),
    "service address equals the inbound address, servicePort equals port": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 10001
            servicePort: 10001
            address: 192.168.0.2
            serviceAddress: 192.168.0.2
            tags: {kuma.io/service: backend}
        """,
        [
            (
                "networking.inbound[0].serviceAddress",
                "serviceAddress and servicePort has to differ from address and port",
            )
        ],
    ),
    "inbound without a service tag": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            tags: {version: v1}
        """,
        [('networking.inbound[0].tags["kuma.io/service"]', "tag has to exist")],
    ),
    "inbound tag with an empty value": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            tags:
              kuma.io/service: backend
              version:
        """,
        [('networking.inbound[0].tags["version"]', "tag value cannot be empty")],
    ),
    "protocol tag with an empty value": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            tags:
              kuma.io/service: backend
              kuma.io/protocol:
        """,
        [
            (
                'networking.inbound[0].tags["kuma.io/protocol"]',
                'tag "kuma.io/protocol" has an invalid value "". Allowed values: grpc, http, http2, tcp',
            ),
            ('networking.inbound[0].tags["kuma.io/protocol"]', "tag value cannot be empty"),
        ],
    ),
    "protocol tag with an unsupported value": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            tags:
              kuma.io/service: backend
              kuma.io/protocol: kafka
        """,
        [
            (
                'networking.inbound[0].tags["kuma.io/protocol"]',
                'tag "kuma.io/protocol" has an invalid value "kafka". Allowed values: grpc, http, http2, tcp',
            )
        ],
    ),
    "tag names and values with invalid characters, sorted by name": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            tags:
              kuma.io/service: backend
              invalidTagValue: inv@lid+t@g
              inv@lidT/gN%me: value
              slash: a/b
        """,
        [
            (
                'networking.inbound[0].tags["inv@lidT/gN%me"]',
                "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores",
            ),
            (
                'networking.inbound[0].tags["invalidTagValue"]',
                "tag value must consist of alphanumeric characters, dots, dashes and underscores",
            ),
            (
                'networking.inbound[0].tags["slash"]',
                "tag value must consist of alphanumeric characters, dots, dashes and underscores",
            ),
        ],
    ),
    "wildcard is not a dataplane tag value": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            tags: {kuma.io/service: "*"}
        """,
        [
            (
                'networking.inbound[0].tags["kuma.io/service"]',
                "tag value must consist of alphanumeric characters, dots, dashes and underscores",
            )
        ],
    ),
    "gateway without a service tag": (
        """
        networking:
          address: 192.168.0.1
          gateway:
            tags: {version: v1}
        """,
        [('networking.gateway.tags["kuma.io/service"]', "tag has to exist")],
    ),
    "empty gateway": (
        """
        networking:
          address: 192.168.0.1
          gateway: {}
        """,
        [('networking.gateway.tags["kuma.io/service"]', "tag has to exist")],
    ),
    "gateway tag with an empty value": (
        """
        networking:
          address: 192.168.0.1
          gateway:
            tags:
              kuma.io/service: backend
              version:
        """,
        [('networking.gateway.tags["version"]', "tag value cannot be empty")],
    ),
    "outbound with neither tags nor service": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            tags: {kuma.io/service: backend}
          outbound:
          - port: 3333
        """,
        [("networking.outbound[0].kuma.io/service", "cannot be empty")],
    ),
    "outbound tags without a service tag": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            tags: {kuma.io/service: backend}
          outbound:
          - port: 3333
            service: legacy-is-ignored-when-tags-are-set
            tags:
              version: v@1
        """,
        [
            ('networking.outbound[0].tags["kuma.io/service"]', "tag has to exist"),
            (
                'networking.outbound[0].tags["version"]',
                "tag value must consist of alphanumeric characters, dots, dashes and underscores",
            ),
        ],
    ),
    "outbound ports out of range and bad address": (
        """
        networking:
          address: 192.168.0.1
          inbound:
          - port: 1234
            tags: {kuma.io/service: backend}
          outbound:
          - service: redis
          - port: 65536
            address: invalid
            service: elastic
        """,
        [
            ("networking.outbound[0].port", "port has to be in range of [1, 65535]"),
            ("networking.outbound[1].port", "port has to be in range of [1, 65535]"),
            ("networking.outbound[1].address", "address has to be valid IP address"),
        ],
    ),
    "ingress with outbounds": (
        """
        networking:
          address: 192.168.0.1
          ingress:
            availableServices:
            - tags: {kuma.io/service: backend}
          inbound:
          - port: 10001
          outbound:
          - port: 3333
            service: redis
        """,
        [("networking", "dataplane cannot have outbounds in the ingress mode")],
    ),
    "ingress with a gateway": (
        """
        networking:
          address: 192.168.0.1
          ingress: {}
          gateway: {}
          inbound:
          - port: 10001
        """,
        [("networking", "gateway cannot be defined in the ingress mode")],
    ),
    "ingress without an inbound": (
        """
        networking:
          address: 192.168.0.1
          ingress:
            availableServices:
            - tags: {kuma.io/service: backend}
        """,
        [("networking", "dataplane must have one inbound interface")],
    ),
    "ingress with two inbounds": (
        """
        networking:
          ingress: {}
          inbound:
          - port: 10001
          - port: 10002
        """,
        [("networking", "dataplane must have one inbound interface")],
    ),
    "ingress inbound with redundant fields": (
        """
        networking:
          address: 192.168.0.1
          ingress:
            availableServices:
            - tags: {kuma.io/service: backend, version: "1", region: us}
          inbound:
          - port: 10001
            servicePort: 5050
            serviceAddress: 192.168.0.2
            address: 1.1.1.1
            tags:
              name: ingress-dp
        """,
        [
            ("networking.inbound[0].servicePort", "cannot be defined in the ingress mode"),
            ("networking.inbound[0].serviceAddress", "cannot be defined in the ingress mode"),
            ("networking.inbound[0].address", "cannot be defined in the ingress mode"),
        ],
    ),
    "ingress everything wrong, with Kuma's tag paths": (
        """
        networking:
          ingress:
            availableServices:
            - tags: {region: "e u"}
          gateway: {}
          outbound:
          - port: 1
            service: x
          inbound:
          - port: 0
            tags: {name: ""}
          - port: 70000
        """,
        [
            ("networking", "gateway cannot be defined in the ingress mode"),
            ("networking", "dataplane cannot have outbounds in the ingress mode"),
            ("networking", "dataplane must have one inbound interface"),
            ("networking.inbound[0].port", "port has to be in range of [1, 65535]"),
            ('networking.inbound[0].address.tags["name"]', "tag value cannot be empty"),
            ("networking.inbound[1].port", "port has to be in range of [1, 65535]"),
            (
                'networking.ingress.availableService[0].tags["kuma.io/service"]',
                "cannot be empty",
            ),
            (
                'networking.ingress.availableService[0].tags.tags["region"]',
                "tag value must consist of alphanumeric characters, dots, dashes and underscores",
            ),
        ],
    ),
    "transparent proxying ports out of range (kuma-py)": (
        """
        networking:
          address: 192.168.0.1
          gateway: {tags: {kuma.io/service: kong}}
          transparentProxying:
            redirectPortInbound: 65536
            redirectPortOutbound: 4294967295
        """,
        [
            (
                "networking.transparentProxying.redirectPortInbound",
                "redirectPortInbound has to be in range of [0, 65535]",
            ),
            (
                "networking.transparentProxying.redirectPortOutbound",
                "redirectPortOutbound has to be in range of [0, 65535]",
            ),
        ],
    ),
    "prometheus metrics override that is not a prometheus config (kuma-py)": (
        """
        networking:
          address: 192.168.0.1
          gateway: {tags: {kuma.io/service: kong}}
        metrics:
          type: prometheus
          conf:
            port: "not a port"
            skipMTLS: "yes"
        """,
        [
            (
                "metrics.config.port",
                "could not parse config: must be an integer, got a string 'not a port'",
            ),
            ("metrics.config.skipMTLS", "could not parse config: must be a boolean, got a string"),
        ],
    ),
    "many problems at once, in Kuma's order": (
        """
        networking:
          address: 300.1.1.1
          gateway:
            tags: {version: ""}
          inbound:
          - port: 0
            servicePort: 70000
            tags: {kuma.io/protocol: udp}
          outbound:
          - port: 0
        """,
        [
            ("networking", "inbound cannot be defined both with gateway"),
            ("networking.address", "address has to be valid IP address"),
            ('networking.gateway.tags["kuma.io/service"]', "tag has to exist"),
            ('networking.gateway.tags["version"]', "tag value cannot be empty"),
            ("networking.inbound[0].port", "port has to be in range of [1, 65535]"),
            ("networking.inbound[0].servicePort", "servicePort has to be in range of [0, 65535]"),
            ('networking.inbound[0].tags["kuma.io/service"]', "tag has to exist"),
            (
                'networking.inbound[0].tags["kuma.io/protocol"]',
                'tag "kuma.io/protocol" has an invalid value "udp". Allowed values: grpc, http, http2, tcp',
            ),
            ("networking.outbound[0].port", "port has to be in range of [1, 65535]"),
            ("networking.outbound[0].kuma.io/service", "cannot be empty"),
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid_dataplanes(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("Dataplane", text) == expected
