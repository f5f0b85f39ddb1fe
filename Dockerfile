# The API image: used by docker-compose.yml for both the migrate job and the server.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 10001 app
COPY pyproject.toml README.md ./
COPY api ./api
COPY alembic ./alembic
COPY alembic.ini schema.graphql ./
RUN pip install -e .
USER app
EXPOSE 8000
CMD ["python", "-m", "api", "serve", "--host", "0.0.0.0", "--port", "8000"]
