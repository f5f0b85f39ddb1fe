"""The demo catalogue `python -m api seed` loads, written through the `seedCatalog` mutation."""

import json
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.engine import create_session_factory
from api.graphql.context import build_context
from api.graphql.schema import schema
from api.settings import Settings

DEMO_AUTHORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "demo_catalog.json").read_text(encoding="utf-8")
)
"""Authors with their `books` (titles): the data lives in `demo_catalog.json`."""

SEED_MUTATION = """
mutation Seed($input: SeedCatalogInput!) {
  seedCatalog(input: $input) {
    authors { name }
    userErrors { field message code }
  }
}
"""


async def seed_demo_catalog(settings: Settings, engine: AsyncEngine) -> list[str]:
    """Names of the authors written; those already present are skipped, so reruns add nothing."""
    variables = {
        "input": {
            "skipExistingAuthors": True,
            "authors": [
                {
                    **{k: v for k, v in a.items() if k != "books"},
                    "books": [{"title": t} for t in a["books"]],
                }
                for a in DEMO_AUTHORS
            ],
        }
    }
    context = build_context(settings, create_session_factory(engine))
    result = await schema.execute(SEED_MUTATION, variable_values=variables, context_value=context)
    if result.errors or result.data is None:
        raise RuntimeError(f"seeding failed: {result.errors}")
    payload = result.data["seedCatalog"]
    if payload["userErrors"]:
        raise RuntimeError(f"seeding refused: {payload['userErrors']}")
    return [author["name"] for author in payload["authors"]]
