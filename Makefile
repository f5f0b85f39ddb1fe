# Two commands for a newcomer: `make run` serves the API, `make check` runs every check.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run check schema bench clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(INSTALLED)

## Serve GraphiQL at http://127.0.0.1:8000/graphql (embedded Postgres unless DATABASE_URL is set).
run: $(INSTALLED)
	$(PY) -m api dev

## Format, lint, types, schema drift and the tests on a real Postgres.
check: $(INSTALLED)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m api export-schema --check
	$(PY) -m pytest

## Write schema.graphql from the code.
schema: $(INSTALLED)
	$(PY) -m api export-schema

clean:
	rm -rf $(VENV) .pgdata .pgdata-test .mypy_cache .ruff_cache .pytest_cache
