"""Mesh validation: backends of mTLS, logging, tracing and metrics, then the CA plugins' checks."""

from __future__ import annotations

import pytest

from kuma.model.validators.accesslog import format_error
from kuma.model.validators.mesh import parse_kuma_duration
from tests.model.test_validators_common import violations

VALID = {
    "every backend kind": """
        mtls:
          enabledBackend: builtin-1
          backends:
          - name: builtin-1
            type: builtin
            dpCert:
              rotation:
                expiration: 2y
            conf:
              caCert:
                RSAbits: 2048
                expiration: 10y
          - name: provided-1
            type: provided
            conf:
              cert: {secret: ca-cert}
              key: {file: /etc/ca.key}
          - name: provided-2
            type: provided
            conf:
              cert: {inline: LS0tLS1CRUdJTg==}
              key: {inline: LS0tLS1CRUdJTg==}
        logging:
          backends:
          - name: file-1
            type: file
            conf:
              path: /path/to/file
          - name: file-2
            format: '%START_TIME% %KUMA_SOURCE_SERVICE%'
            type: file
            conf:
              path: /path/to/file2
          - name: tcp-1
            type: tcp
            conf:
              address: kibana:1234
          - name: tcp-2
            format: '%START_TIME% %KUMA_DESTINATION_SERVICE%'
            type: tcp
            conf:
              address: kibana:1234
          defaultBackend: tcp-1
        tracing:
          backends:
          - name: zipkin-us
            sampling: 80.0
            type: zipkin
            conf:
              url: http://zipkin.local:9411/v2/spans
              traceId128bit: true
              apiVersion: httpProto
          - name: zipkin-eu
            type: zipkin
            conf:
              url: http://zipkin.local:9411/v2/spans
          defaultBackend: zipkin-us
        metrics:
          enabledBackend: prom-1
          backends:
          - name: prom-1
            type: prometheus
            conf:
              port: 5670
              path: /metrics
              skipMTLS: false
              tags: {kuma.io/service: dataplane-metrics}
        """,
    "empty spec": "",
    "empty sections": "{mtls: {}, logging: {}, tracing: {}, metrics: {}}",
    "unknown fields inside backend conf are ignored, like Kuma": """
        logging:
          backends:
          - name: f
            type: file
            conf: {path: /x, address: ignored, nested: {a: 1}}
        metrics:
          backends:
          - name: p
            type: prometheus
        """,
    "dpCert rotation in every unit": """
        mtls:
          backends:
          - {name: a, type: builtin, dpCert: {rotation: {expiration: "0"}}}
          - {name: b, type: builtin, dpCert: {rotation: {expiration: 1w}}}
          - {name: c, type: builtin, dpCert: {rotation: {expiration: 30d}}}
          - {name: d, type: builtin, dpCert: {rotation: {expiration: 500ms}}}
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid_meshes(text: str) -> None:
    assert violations("Mesh", text) == []


INVALID = {
    "mtls backends with the same name": (
        """
        mtls:
          enabledBackend: backend-1
          backends:
          - name: backend-1
            type: builtin
          - name: backend-1
            type: builtin
        """,
        [("mtls.backends[1].name", '"backend-1" name is already used for another backend')],
    ),
    "mtls enabledBackend of unknown name": (
        """
        mtls:
          enabledBackend: backend-2
          backends:
          - name: backend-1
            type: builtin
        """,
        [("mtls.enabledBackend", "has to be set to one of the backends in the mesh")],
    ),
    "dpCert rotation with an invalid expiration": (
        """
        mtls:
          enabledBackend: backend-3
          backends:
          - name: backend-3
            type: builtin
            dpCert:
              rotation:
                expiration: 2e
        """,
        [("mtls.dpcert.rotation.expiration", "has to be a valid format")],
    ),
    "dpCert without rotation": (
        """
        mtls:
          backends:
          - {name: a, type: builtin, dpCert: {}}
          - {name: b, type: builtin, dpCert: {rotation: {expiration: 1.5h}}}
        """,
        [
            ("mtls.dpcert.rotation.expiration", "has to be a valid format"),
            ("mtls.dpcert.rotation.expiration", "has to be a valid format"),
        ],
    ),
    "logging backend with an empty name": (
        """
        logging:
          backends:
          - name:
            type: tcp
            conf:
              address: kibana:1234
        """,
        [("logging.backends[0].name", "cannot be empty")],
    ),
    "logging backends with the same name": (
        """
        logging:
          backends:
          - name: backend-1
            type: tcp
            conf:
              address: kibana:1234
          - name: backend-1
            type: file
            conf:
              path: /path/to/file
          defaultBackend: backend-1
        """,
        [("logging.backends[1].name", '"backend-1" name is already used for another backend')],
    ),
    "tcp logging address empty, malformed, without host or port": (
        """
        logging:
          backends:
          - {name: a, type: tcp, conf: {address: }}
          - {name: b, type: tcp, conf: {address: "wrong-format:234:234"}}
          - {name: c, type: tcp, conf: {address: ":234"}}
          - {name: d, type: tcp, conf: {address: "kibana:"}}
          - {name: e, type: tcp, conf: {address: kibana}}
          - {name: f, type: tcp}
        """,
        [
            ("logging.backends[0].config.address", "cannot be empty"),
            ("logging.backends[1].config.address", "has to be in format of HOST:PORT"),
            ("logging.backends[2].config.address", "has to be in format of HOST:PORT"),
            ("logging.backends[3].config.address", "has to be in format of HOST:PORT"),
            ("logging.backends[4].config.address", "has to be in format of HOST:PORT"),
            ("logging.backends[5].config.address", "cannot be empty"),
        ],
    ),
    "file logging path empty": (
        """
        logging:
          backends:
          - name: backend-1
            type: file
            conf:
              path:
          defaultBackend: backend-1
        """,
        [("logging.backends[0].config.path", "cannot be empty")],
    ),
    "logging conf of the wrong shape": (
        """
        logging:
          backends:
          - {name: a, type: file, conf: {path: [1]}}
          - {name: b, type: tcp, conf: {address: 5}}
        """,
        [
            (
                "logging.backends[0].config.path",
                "could not parse config: must be a string, got a list",
            ),
            (
                "logging.backends[1].config.address",
                "could not parse config: must be a string, got a number",
            ),
        ],
    ),
    "invalid access log format": (
        """
        logging:
          backends:
          - name: backend-1
            format: "%START_TIME% %sent_bytes%"
            type: file
            conf:
              path: /var/logs
          defaultBackend: backend-1
        """,
        [
            (
                "logging.backends[0].format",
                'format string is not valid: expected a command operator to start at position 14, instead got: "%sent_bytes%"',
            )
        ],
    ),
    "logging defaultBackend of unknown name": (
        """
        logging:
          backends:
          - name: backend-1
            type: file
            conf:
              path: /path
          defaultBackend: non-existing-backend
        """,
        [("logging.defaultBackend", "has to be set to one of the logging backend in mesh")],
    ),
    "tracing backend with an empty name": (
        """
        tracing:
          backends:
          - name:
            type: zipkin
            conf:
              url: http://zipkin.local:9411/v2/spans
        """,
        [("tracing.backends[0].name", "cannot be empty")],
    ),
    "tracing backends with the same name": (
        """
        tracing:
          backends:
          - name: zipkin-us
            type: zipkin
            conf:
              url: http://zipkin.local:9411/v2/spans
          - name: zipkin-us
            type: zipkin
            conf:
              url: http://zipkin.local:9411/v2/spans
        """,
        [("tracing.backends[1].name", '"zipkin-us" name is already used for another backend')],
    ),
    "tracing sampling out of range": (
        """
        tracing:
          backends:
          - name: zipkin-us
            sampling: 100.1
            type: zipkin
            conf:
              url: http://zipkin-us.local:9411/v2/spans
          - name: zipkin-eu
            sampling: -1
            type: zipkin
            conf:
              url: http://zipkin-eu.local:9411/v2/spans
        """,
        [
            ("tracing.backends[0].sampling", "has to be in [0.0 - 100.0] range"),
            ("tracing.backends[1].sampling", "has to be in [0.0 - 100.0] range"),
        ],
    ),
    "zipkin url empty, invalid, without a port": (
        """
        tracing:
          backends:
          - {name: a, type: zipkin, conf: {url: ""}}
          - {name: b, type: zipkin, conf: {url: invalid-url}}
          - {name: c, type: zipkin, conf: {url: "http://zipkin-us.local/v2/spans"}}
          - {name: d, type: zipkin, conf: {url: "http://zipkin:94x1/v2/spans"}}
          - {name: e, type: zipkin}
        """,
        [
            ("tracing.backends[0].config.url", "cannot be empty"),
            ("tracing.backends[1].config.url", "invalid URL"),
            ("tracing.backends[2].config.url", "port has to be explicitly specified"),
            ("tracing.backends[3].config.url", "invalid URL"),
            ("tracing.backends[4].config.url", "cannot be empty"),
        ],
    ),
    "zipkin with an invalid apiVersion": (
        """
        tracing:
          backends:
          - name: zipkin-us
            type: zipkin
            conf:
              url: http://zipkin-us.local:9411/v2/spans
              apiVersion: invalid
        """,
        [
            (
                "tracing.backends[0].config.apiVersion",
                "has invalid value. Allowed values: httpJsonV1, httpJson, httpProto",
            )
        ],
    ),
    "zipkin conf of the wrong shape": (
        """
        tracing:
          backends:
          - {name: a, type: zipkin, conf: {url: 1, traceId128bit: "yes"}}
        """,
        [
            (
                "tracing.backends[0].config.url",
                "could not parse config: must be a string, got a number",
            ),
            (
                "tracing.backends[0].config.traceId128bit",
                "could not parse config: must be a boolean, got a string",
            ),
        ],
    ),
    "tracing defaultBackend of unknown name": (
        """
        tracing:
          defaultBackend: non-existent
          backends:
          - name: zipkin-us
            type: zipkin
            conf:
              url: http://zipkin.local:9411/v2/spans
        """,
        [("tracing.defaultBackend", "has to be set to one of the tracing backend in mesh")],
    ),
    "metrics backends with the same name": (
        """
        metrics:
          enabledBackend: backend-1
          backends:
          - name: backend-1
            type: prometheus
          - name: backend-1
            type: prometheus
        """,
        [("metrics.backends[1].name", '"backend-1" name is already used for another backend')],
    ),
    "metrics enabledBackend of unknown name": (
        """
        metrics:
          enabledBackend: backend-2
          backends:
          - name: backend-1
            type: prometheus
        """,
        [("metrics.enabledBackend", "has to be set to one of the backends in the mesh")],
    ),
    "prometheus conf of the wrong shape (kuma-py reports it with paths)": (
        """
        metrics:
          backends:
          - name: prom
            type: prometheus
            conf: {port: "5670x", path: /metrics, tags: {a: 1}}
        """,
        [
            (
                "metrics.backends[0].config.port",
                "could not convert the backend: must be an integer, got a string '5670x'",
            ),
            (
                'metrics.backends[0].config.tags["a"]',
                "could not convert the backend: must be a string, got a number",
            ),
        ],
    ),
    "unknown backend types": (
        """
        metrics:
          backends:
          - name: backend-1
            type: xxx
        logging:
          backends:
          - name: backend-1
            type: xxx
        tracing:
          backends:
          - name: backend-1
            type: xxx
        """,
        [
            ("logging.backends[0].type", 'unknown backend type. Available backends: "tcp", "file"'),
            ("tracing.backends[0].type", 'unknown backend type. Available backends: "zipkin"'),
            ("metrics.backends[0].type", 'unknown backend type. Available backends: "prometheus"'),
        ],
    ),
    "multiple errors": (
        """
        mtls:
          enabledBackend: invalid-backend
        logging:
          backends:
          - name:
            type: file
            conf:
              path: /path
          - name: tcp-1
            type: file
            conf:
              address: invalid-address
          - name: tcp-1
            type: tcp
          defaultBackend: invalid-backend
        """,
        [
            ("mtls.enabledBackend", "has to be set to one of the backends in the mesh"),
            ("logging.backends[0].name", "cannot be empty"),
            ("logging.backends[1].config.path", "cannot be empty"),
            ("logging.backends[2].config.address", "cannot be empty"),
            ("logging.backends[2].name", '"tcp-1" name is already used for another backend'),
            ("logging.defaultBackend", "has to be set to one of the logging backend in mesh"),
        ],
    ),
    "mtls backend of an unknown type stops the CA checks": (
        """
        mtls:
          backends:
          - {name: a, type: provided, conf: {cert: {secret: ""}, key: {file: /k}}}
          - {name: b, type: vault}
          - {name: c, type: other}
        """,
        [
            ("mtls.backends[0].config.cert.secret", "cannot be empty"),
            ("mtls.backends[1].type", "could not find installed plugin for this type"),
        ],
    ),
    "CA checks run only when the spec rules pass": (
        """
        mtls:
          enabledBackend: nope
          backends:
          - {name: a, type: vault}
        """,
        [("mtls.enabledBackend", "has to be set to one of the backends in the mesh")],
    ),
    "provided CA without cert and key": (
        """
        mtls:
          backends:
          - {name: a, type: provided}
        """,
        [
            ("mtls.backends[0].config.cert", "has to be defined"),
            ("mtls.backends[0].config.key", "has to be defined"),
        ],
    ),
    "provided CA with empty data sources": (
        """
        mtls:
          backends:
          - name: a
            type: provided
            conf:
              cert: {}
              key: {inline: ""}
          - name: b
            type: provided
            conf:
              cert: {file: ""}
              key: {secret: k, somethingElse: 1}
        """,
        [
            (
                "mtls.backends[0].config.cert",
                "data source has to be chosen. Available sources: secret, file, inline",
            ),
            ("mtls.backends[0].config.key.inline", "cannot be empty"),
            ("mtls.backends[1].config.cert.file", "cannot be empty"),
        ],
    ),
    "provided CA conf of the wrong shape": (
        """
        mtls:
          backends:
          - name: a
            type: provided
            conf:
              cert: "pem"
              key: {secret: k, file: /k}
        """,
        [
            (
                "mtls.backends[0].config.cert",
                "could not convert backend config: must be an object, got a string",
            ),
            (
                "mtls.backends[0].config.key.file",
                'could not convert backend config: only one of "secret" and "file" may be set',
            ),
        ],
    ),
    "builtin CA conf of the wrong shape": (
        """
        mtls:
          backends:
          - {name: a, type: builtin, conf: {caCert: 5}}
          - {name: b, type: builtin, conf: {caCert: {RSAbits: -1, expiration: 10}}}
        """,
        [
            (
                "mtls.backends[0].config.caCert",
                "could not convert backend config: must be an object",
            ),
            (
                "mtls.backends[1].config.caCert.RSAbits",
                "could not convert backend config: must be an integer in [0, 4294967295]",
            ),
            (
                "mtls.backends[1].config.caCert.expiration",
                "could not convert backend config: must be a string",
            ),
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid_meshes(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("Mesh", text, mesh="") == expected


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("500ms", 500),
        ("10s", 10_000),
        ("2m", 120_000),
        ("1h", 3_600_000),
        ("1y", 31_536_000_000),
    ],
)
def test_kuma_durations(text: str, ms: int) -> None:
    assert parse_kuma_duration(text) == ms


@pytest.mark.parametrize("text", ["", "2e", "1.5h", "10", "h", "-1s", "1hm", "1 h", "\u0661s"])
def test_invalid_kuma_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_kuma_duration(text)


@pytest.mark.parametrize(
    "fmt",
    [
        "",
        "plain text",
        "%START_TIME%",
        "%START_TIME(%s.%3f)%",
        "%REQ(X-Forwarded-For?X-Real-IP):10% %RESP(content-type)% %TRAILER(grpc-status)%",
        "%REQ()%",
        "%DYNAMIC_METADATA(envoy.lb:canary):5% %FILTER_STATE(key):3%",
        "%KUMA_SOURCE_SERVICE% -> %KUMA_DESTINATION_SERVICE% %UNKNOWN_BUT_UPPERCASE%",
        '[%START_TIME%] "%REQ(:method)% %REQ(X-ENVOY-ORIGINAL-PATH?:path)% %PROTOCOL%"',
    ],
)
def test_valid_access_log_formats(fmt: str) -> None:
    assert format_error(fmt) is None


@pytest.mark.parametrize(
    ("fmt", "error"),
    [
        (
            "text with % character",
            'expected a command operator to start at position 11, instead got: "% character"',
        ),
        ("żółw %x", 'expected a command operator to start at position 9, instead got: "%x"'),
        (
            "%START_TIME(%",
            'expected a command operator to start at position 1, instead got: "%START_TIME(%"',
        ),
        (
            "%BYTES_RECEIVED()%",
            'command "%BYTES_RECEIVED%" doesn\'t support arguments or max length constraint, instead got "%BYTES_RECEIVED()%"',
        ),
        (
            "%DURATION:10%",
            'command "%DURATION%" doesn\'t support arguments or max length constraint, instead got "%DURATION:10%"',
        ),
        (
            "%REQ%",
            'command "%REQ(X?Y):Z%" requires a header and optional alternative header names as its arguments, instead got "%REQ%"',
        ),
        (
            "%RESP:10%",
            'command "%RESP(X?Y):Z%" requires a header and optional alternative header names as its arguments, instead got "%RESP:10%"',
        ),
        (
            "%TRAILER(a?b?c):10%",
            'more than 1 alternative header specified in "%TRAILER(a?b?c):10%"',
        ),
        (
            "%REQ(header-1\n?header-2)%",
            'header name contains a newline in "%REQ(header-1\\n?header-2)%"',
        ),
        ("%REQ(header-1\x00)%", 'header name contains a newline in "%REQ(header-1\\x00)%"'),
        (
            "%REQ(a):99999999999999999999%",
            'length must be an integer, instead got "99999999999999999999" in "%REQ(a):99999999999999999999%"',
        ),
        (
            "%DYNAMIC_METADATA:10%",
            'command "%DYNAMIC_METADATA(NAMESPACE:KEY*):Z%" requires a filter namespace and optional path as its arguments, instead got "%DYNAMIC_METADATA:10%"',
        ),
        (
            "%FILTER_STATE()%",
            'command "%FILTER_STATE(KEY):Z%" requires a key as its argument, instead got "%FILTER_STATE()%"',
        ),
        ("%START_TIME(%n)%", 'start time format string contains a newline in "%START_TIME(%n)%"'),
    ],
)
def test_invalid_access_log_formats(fmt: str, error: str) -> None:
    assert format_error(fmt) == "format string is not valid: " + error
