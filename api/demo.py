"""The demo catalogue `python -m api seed` loads, written through the `seedCatalog` mutation."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.engine import create_session_factory
from api.graphql.context import build_context
from api.graphql.schema import schema
from api.settings import Settings

DEMO_AUTHORS: list[dict[str, Any]] = [
    {
        "name": "Ursula K. Le Guin",
        "bio": "American author of speculative fiction.",
        "country": "United States",
        "books": ["A Wizard of Earthsea", "The Left Hand of Darkness", "The Dispossessed"],
    },
    {
        "name": "Chinua Achebe",
        "bio": "Nigerian novelist, poet and critic.",
        "country": "Nigeria",
        "books": ["Things Fall Apart", "No Longer at Ease", "Arrow of God"],
    },
    {
        "name": "Gabriel García Márquez",
        "bio": "Colombian novelist and journalist.",
        "country": "Colombia",
        "books": ["One Hundred Years of Solitude", "Love in the Time of Cholera"],
    },
    {
        "name": "Haruki Murakami",
        "bio": "Japanese novelist and translator.",
        "country": "Japan",
        "books": ["Norwegian Wood", "Kafka on the Shore", "1Q84"],
    },
    {
        "name": "Wisława Szymborska",
        "bio": "Polish poet, Nobel laureate in 1996.",
        "country": "Poland",
        "books": ["View with a Grain of Sand", "Here"],
    },
]

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
