# Two commands for a newcomer: `make run` serves the API, `make check` runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_INSTALLED := $(VENV)/.installed-run
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.installed-bench
PIP := $(PY) -m pip --quiet --disable-pip-version-check

.PHONY: run check test-fast lock schema bench bench-tools clean test-services bench-scale vendor-graphiql check-graphiql-offline check-clients

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

# Installs come from the lock files in requirements/ (exact versions, every file's sha256), never
# from pyproject.toml's ranges: `make lock` turns the ranges into those files. The project itself
# goes in last with --no-deps, built by the locked setuptools (requirements/build.txt).
RUN_LOCK := requirements/run.txt
DEV_LOCK := requirements/dev.txt
BUILD_LOCK := requirements/build.txt
PIP_LOCKED := $(PIP) install --require-hashes
INSTALL_PROJECT := $(PIP) install --no-deps --no-build-isolation -e .

# What serving needs, and no more: `make run` on a fresh clone installs only this. After
# `make check` the dev lock already holds it, so nothing is installed again.
$(RUN_INSTALLED): pyproject.toml $(RUN_LOCK) $(BUILD_LOCK) | $(VENV)/bin/python
	@if [ $(INSTALLED) -nt pyproject.toml ] && [ $(INSTALLED) -nt $(RUN_LOCK) ]; then :; else \
	  $(PIP_LOCKED) -r $(RUN_LOCK) -r $(BUILD_LOCK) && $(INSTALL_PROJECT); fi
	@touch $(RUN_INSTALLED)

# Everything `make check` needs: the test, lint and type-checking tools, and the benchmark's
# extras (matplotlib, psutil: `make check` type-checks bench/ and tests/test_bench.py runs it).
$(INSTALLED): pyproject.toml $(DEV_LOCK) $(BUILD_LOCK) | $(VENV)/bin/python
	$(PIP_LOCKED) -r $(DEV_LOCK) -r $(BUILD_LOCK)
	$(INSTALL_PROJECT)
	@touch $(INSTALLED)

# The dev lock holds the benchmark's extras too; the name stays for the targets that use it.
$(BENCH_INSTALLED): $(INSTALLED)
	@touch $(BENCH_INSTALLED)

# The one platform every lock is for: CPython 3.11 on x86_64 Linux with glibc 2.36 (Debian
# bookworm: this machine, CI and the Dockerfile's base image).
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_36 --custom-compile-command "make lock" $(LOCK_ARGS)

## Rewrite requirements/*.txt from pyproject.toml's ranges, keeping every pin still in range.
## After adding or changing a dependency in pyproject.toml: `make lock`, then commit both.
## Move every pin to the newest release in range: make lock LOCK_ARGS=--upgrade
## (or one package: make lock LOCK_ARGS="--upgrade-package starlette").
lock:
	@test -x $(VENV)/bin/uv || $(MAKE) --no-print-directory $(INSTALLED)
	$(UV_COMPILE) pyproject.toml -o $(RUN_LOCK)
	$(UV_COMPILE) pyproject.toml --extra dev --extra bench --constraints $(RUN_LOCK) -o $(DEV_LOCK)
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(UV_COMPILE) - -o $(BUILD_LOCK)

PORT ?= 8000
# HOST only from the command line: some shells export HOST as the machine's name.
ifneq ($(origin HOST),command line)
HOST := 127.0.0.1
endif
## Serve GraphiQL at http://127.0.0.1:8000/graphql (embedded Postgres unless DATABASE_URL is set).
## Options: make run PORT=8080 HOST=0.0.0.0
run: $(RUN_INSTALLED)
	$(PY) -m api dev --host $(HOST) --port $(PORT)

## Debian's PgBouncer for the pooled-mode tests (installed when we are root with apt-get).
test-services:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing pgbouncer from Debian for the pooled-mode tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; \
	  else \
	    echo "note: no pgbouncer; pooled-mode tests are skipped (install it: apt-get install pgbouncer)"; \
	  fi; }

## Debian's wrk for the benchmark (installed when we are root with apt-get).
bench-tools:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing wrk from Debian for the benchmark"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "note: no wrk; the benchmark needs it (install it: apt-get install wrk)"; \
	  fi; }

## The API against a hand-written reference under wrk: bench/results/latest.{json,md,png}.
## Options: make bench BENCH_ARGS="--authors 200 --duration 5" (python -m bench --help);
## BENCH_ARGS="--attacks" adds W2 under two attackers, "--processes 2" W1/W2/W6 on two APIs.
bench: $(INSTALLED) $(BENCH_INSTALLED) bench-tools
	$(PY) -m bench $(BENCH_ARGS)

## Every query shape at 10,000 and 10,000,000 books, one client: bench/results/scale.{json,md}.
## Long the first time (loads and indexes 10M books); reuses the loaded database after that.
## Options: make bench-scale BENCH_SCALE_ARGS="--migrate-under-load" (python -m bench.scale --help).
bench-scale: $(INSTALLED) $(BENCH_INSTALLED)
	$(PY) -m bench.scale $(BENCH_SCALE_ARGS)

## Format, lint, types, import contracts (no cycles), schema drift, migration lint and the tests
## on a real Postgres.
check: $(INSTALLED) $(BENCH_INSTALLED) test-services bench-tools
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m api export-schema --check
	$(PY) -m api lint-migrations
	@if git rev-parse --verify --quiet HEAD~1 >/dev/null 2>&1; then \
	  $(PY) -m api schema-diff --against HEAD~1; \
	else \
	  echo "note: no previous commit here (first commit or shallow clone): schema-diff skipped"; \
	fi
	$(PY) -m pytest

## The tests less those marked slow (scale, bench, faults, N-1, pooled, migrations under load):
## a quick loop while working. `make check` still runs every test.
test-fast: $(INSTALLED) test-services
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

## Fetch GraphiQL's assets from npm into api/vendor/graphiql/ with their hashes (needs npm).
vendor-graphiql: $(RUN_INSTALLED)
	$(PY) scripts/vendor_graphiql.py

NPM_TOOLS := $(VENV)/npm-tools
PLAYWRIGHT_CORE := playwright-core@1.65.1
## GraphiQL in headless Chromium with every request off 127.0.0.1 blocked: types a query,
## runs it, reads the result, screenshot in /tmp/graphiql-offline.png. Starts `python -m api
## dev` itself, or checks GRAPHIQL_URL=http://127.0.0.1:PORT/graphql when given.
check-graphiql-offline: $(RUN_INSTALLED)
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium from Debian for the offline GraphiQL check"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is needed: apt-get install chromium (or set CHROMIUM=/path)"; exit 1; \
	  fi; }
	@test -d $(NPM_TOOLS)/node_modules/playwright-core || \
	  npm install --silent --no-save --no-audit --no-fund --prefix $(NPM_TOOLS) $(PLAYWRIGHT_CORE)
	node scripts/check_graphiql_offline.mjs $(GRAPHIQL_URL)

CLIENTS := scripts/check_clients
## The API with the clients frontends use, in Node: Apollo Client 4's persisted queries over
## POST and GET, urql 6's defaults, Relay by doc_id, graphql-codegen's persisted documents
## under TRUSTED_DOCUMENTS=require. One line per client. Installs the exact versions in
## $(CLIENTS)/package-lock.json; starts `python -m api dev` itself (an embedded Postgres in a
## scratch folder), or checks CLIENTS_URL=http://127.0.0.1:PORT/graphql with DATABASE_URL set
## to that server's database. Not part of `make check`: it needs npm and takes a while.
check-clients: $(RUN_INSTALLED)
	@test $(CLIENTS)/node_modules/.package-lock.json -nt $(CLIENTS)/package-lock.json || \
	  npm ci --silent --no-audit --no-fund --prefix $(CLIENTS)
	node $(CLIENTS)/check_clients.mjs $(CLIENTS_URL)

## Write schema.graphql from the code.
schema: $(INSTALLED)
	$(PY) -m api export-schema

clean:
	rm -rf $(VENV) .pgdata .pgdata-test .mypy_cache .ruff_cache .pytest_cache
