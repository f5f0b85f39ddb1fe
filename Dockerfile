# The API image: docker-compose.yml runs it as the one-shot migrate job and as every API replica.
#
# Two stages. The builder turns the lock (requirements/run.txt: exact versions, every file's
# sha256) and the project into wheels. The runtime stage installs only those wheels, offline and
# checked against the same hashes, then runs as an unprivileged user. No compiler, no pip cache
# and no source tree beyond what `python -m api migrate` reads (alembic/) reach the final image.
#
# The base image is pinned twice: the exact tag says what it is, the digest (the tag's
# multi-platform index, as docker-library/repo-info recorded it on 2026-09-01) makes it exact.
# To move to a newer patch release, change both together.
#
# Needs BuildKit (Docker's default builder since 23.0, and Compose's) for RUN --mount.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements/run.txt requirements/build.txt requirements/
# Every third-party wheel, downloaded and checked against the lock's hashes.
RUN pip wheel --require-hashes --wheel-dir /wheels -r requirements/run.txt
# The locked build backend, then the project's own wheel (not editable), without dependencies.
RUN pip install --require-hashes -r requirements/build.txt
COPY pyproject.toml README.md ./
COPY api ./api
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels/project .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ALEMBIC_CONFIG=/app/alembic.ini
RUN useradd --create-home --uid 10001 --user-group app
COPY requirements/run.txt /tmp/run.txt
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels --require-hashes -r /tmp/run.txt \
    && pip install --no-index --no-deps /wheels/project/*.whl \
    && rm /tmp/run.txt
WORKDIR /app
# The migrations: `python -m api migrate` reads them through ALEMBIC_CONFIG; `serve` checks
# the database is at their head before it listens.
COPY alembic ./alembic
COPY alembic.ini ./
USER app
EXPOSE 8000
CMD ["python", "-m", "api", "serve", "--host", "0.0.0.0", "--port", "8000"]
