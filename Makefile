# Two commands for a newcomer: `make run` serves the API, `make check` runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_INSTALLED := $(VENV)/.installed-run
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.installed-bench
PIP := $(PY) -m pip --quiet --disable-pip-version-check

.PHONY: run check schema bench bench-tools clean test-services bench-scale vendor-graphiql check-graphiql-offline

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

# What serving needs, and no more: `make run` on a fresh clone installs only this. After
# `make check` the dev extras already hold it, so nothing is installed again.
$(RUN_INSTALLED): pyproject.toml | $(VENV)/bin/python
	@if [ $(INSTALLED) -nt pyproject.toml ]; then :; else $(PIP) install -e .; fi
	@touch $(RUN_INSTALLED)

# Everything `make check` needs: the test, lint and type-checking tools too.
$(INSTALLED): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[dev]'
	@touch $(INSTALLED)

# The benchmark's extras (matplotlib, psutil); `make check` needs them too: it type-checks
# bench/ and tests/test_bench.py runs it.
$(BENCH_INSTALLED): $(INSTALLED)
	$(PIP) install -e '.[dev,bench]'
	@touch $(BENCH_INSTALLED)

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
## Options: make bench BENCH_ARGS="--authors 200 --duration 5" (python -m bench --help).
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

## Fetch GraphiQL's assets from npm into api/static/graphiql/ with their hashes (needs npm).
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

## Write schema.graphql from the code.
schema: $(INSTALLED)
	$(PY) -m api export-schema

clean:
	rm -rf $(VENV) .pgdata .pgdata-test .mypy_cache .ruff_cache .pytest_cache
