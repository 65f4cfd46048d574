# The README's commands. `make run` and `make test` do all set-up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test e2e e2e-build lint format bench bench-watchlist venv deps dev-deps browser-deps service-deps deploy-tools deploy-manifests oidc-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamp files re-install only when the requirement files change.
$(VENV)/.deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.deps

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

# Browser tests drive Debian's Chromium; never `playwright install` (no browser downloads here).
browser-deps:
	@test -x /usr/bin/chromium || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core) \
	  || echo "WARNING: could not install chromium; browser tests will be skipped"; }

# Scale-out tests start their own Redis and PostgreSQL (tests/helpers/services.py) from
# Debian's packages; only the binaries are needed, no running service.
service-deps:
	@test -x /usr/bin/redis-server && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "Installing Debian's redis-server and postgresql for the scale-out tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server postgresql) \
	  || echo "WARNING: could not install redis-server/postgresql; scale-out tests will fail under CI"; }

# The deployment tests use the real tools: helm built from its Go module (cached beside the
# e2e binaries in $(DAEMONVIZ_E2E_CACHE), ~3 min cold) and promtool from Debian's
# `prometheus` package (its service is not started: only the binary is used).
deploy-tools:
	bash tests/e2e/controlplane/build.sh helm >/dev/null
	@test -x /usr/bin/promtool || { \
	  echo "Installing Debian's prometheus package for promtool (alert rule tests)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
	  || echo "WARNING: could not install prometheus; the alert rule tests will fail under CI"; }

# Re-render deploy/rbac.yaml, deploy/k8s/*.yaml, the rules and the dashboard from the chart.
deploy-manifests: deps deploy-tools
	$(BIN)/python deploy/helm/sync.py

# The sign-in tests start a real OpenID Connect provider: panva's oidc-provider on node,
# installed from the npm registry by the committed lockfile (`npm ci`, ~11 s cold; npm
# keeps its download cache in ~/.npm). Re-installed only when the lockfile changes.
OIDC_PROVIDER := tests/oidc_provider
$(OIDC_PROVIDER)/node_modules/.installed: $(OIDC_PROVIDER)/package-lock.json
	@command -v npm >/dev/null || { \
	  echo "Installing Debian's nodejs and npm for the OIDC sign-in tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

oidc-deps: $(OIDC_PROVIDER)/node_modules/.installed

run: deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap
	@echo "daemonviz: serving http://$(HOST):$(PORT)/"
	@# No access log: wall-display URLs carry their secret token in the path.
	$(BIN)/daphne --access-log /dev/null -b $(HOST) -p $(PORT) daemonviz.asgi:application

# The lint steps first (ruff, ruff format, mypy), then every test.
test: lint browser-deps service-deps deploy-tools oidc-deps
	$(BIN)/python -m pytest

# End-to-end tier against a real control plane (etcd, kube-apiserver, controller manager,
# scheduler, kwok) built from Go modules and cached in $(DAEMONVIZ_E2E_CACHE) (default
# ~/.cache/daemonviz-e2e): a cold build takes a while, later runs reuse the binaries. The
# pytest session starts everything on 127.0.0.1 and stops every process it started.
e2e-build:
	bash tests/e2e/controlplane/build.sh all

e2e: dev-deps e2e-build
	$(BIN)/python -m pytest tests/e2e -m e2e

lint: dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: dev-deps
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks print JSON; bench/RESULTS.md records the numbers with the machine's load.
bench: dev-deps browser-deps service-deps
	$(BIN)/python bench/engine_bench.py
	$(BIN)/python bench/kube_bench.py
	$(BIN)/python bench/fanout_bench.py
	$(BIN)/python bench/coalesce_bench.py
	$(BIN)/python bench/browser_bench.py
	$(BIN)/python bench/fault_bench.py
	$(BIN)/python bench/convoy_bench.py
	$(BIN)/python bench/scaleout_bench.py
	$(MAKE) bench-watchlist

# WatchList against paginated lists and protobuf against JSON on the e2e tier's real
# control plane. The protobuf decoder is measured, not used by daemonviz: it lives in a
# virtualenv of its own (protobuf + grpcio-tools for protoc), pinned here.
PB_VENV := var/bench-protobuf-venv
$(PB_VENV)/bin/python:
	$(PY) -m venv $(PB_VENV)
	$(PB_VENV)/bin/pip install -q protobuf==7.36.2 grpcio-tools==1.85.1

bench-watchlist: dev-deps e2e-build $(PB_VENV)/bin/python
	$(BIN)/python bench/watchlist_bench.py --protobuf-python $(PB_VENV)/bin/python

clean:
	rm -rf $(VENV) var tests/artifacts bench/out
