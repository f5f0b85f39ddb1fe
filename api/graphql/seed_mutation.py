"""`seedCatalog`: many authors and their books in one transaction, or nothing.

Its inputs are derived: an author's creatable fields and a list of their books, each with a
book's creatable fields but the reference to the author.
"""

from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog.entities import AUTHOR
from api.catalog.problems import Problem
from api.catalog.rows import AnyRow
from api.catalog.seeding import (
    AUTHOR_FIELDS,
    BOOK_FIELDS,
    BOOKS,
    MAX_SEED_AUTHORS,
    MAX_SEED_BOOKS,
    TOO_MANY_AUTHORS,
    TOO_MANY_BOOKS,
    SeedRows,
    seed_catalog,
    seed_rows,
)
from api.graphql.context import Info
from api.graphql.derive import NO_DEFAULT, list_of, new_type, resolver
from api.graphql.errors import UserError
from api.graphql.inputs import input_field
from api.graphql.types import NODES
from api.graphql.writes import mutate
from api.pipeline.policy import ListCap

__all__ = ["MAX_SEED_AUTHORS", "MAX_SEED_BOOKS", "SEED_LIST_CAPS", "SEED_MUTATIONS"]
# The front door counts these in the raw variables, before any is coerced; `seed_rows`
# holds an input written inline in the document to the same caps.
SEED_LIST_CAPS = (
    ListCap("seedCatalog", "input", ("authors",), MAX_SEED_AUTHORS, TOO_MANY_AUTHORS),
    ListCap("seedCatalog", "input", ("authors", "*", "books"), MAX_SEED_BOOKS, TOO_MANY_BOOKS),
)

SeedBookInput = new_type("SeedBookInput", [input_field(f) for f in BOOK_FIELDS], input=True)
SeedAuthorInput = new_type(
    "SeedAuthorInput",
    [
        *(input_field(f) for f in AUTHOR_FIELDS),
        (BOOKS.name, list_of(SeedBookInput), strawberry.field(default_factory=list)),
    ],
    input=True,
)
SeedCatalogInput = new_type(
    "SeedCatalogInput",
    [
        ("authors", list_of(SeedAuthorInput), strawberry.field()),
        (
            "skip_existing_authors",
            bool,
            strawberry.field(
                default=False,
                description=(
                    "Skip authors whose exact name exists (with their books): safe re-runs."
                ),
            ),
        ),
    ],
    input=True,
)
SeedCatalogPayload = new_type(
    "SeedCatalogPayload",
    [
        (
            "authors",
            list_of(NODES[AUTHOR.name]),
            strawberry.field(description="The authors written by this call."),
        ),
        ("user_errors", list[UserError], strawberry.field()),
    ],
)


def _plain(entry: Any) -> dict[str, Any]:
    """An author's input as GraphQL names to values, like the planner's coerced variables."""
    author = {f.name: getattr(entry, f.key) for f in AUTHOR_FIELDS}
    author[BOOKS.name] = [
        {f.name: getattr(book, f.key) for f in BOOK_FIELDS} for book in entry.books
    ]
    return author


async def _seed(self: None, info: Info, input: Any) -> Any:
    def validate(problems: list[Problem]) -> SeedRows:
        return seed_rows([_plain(entry) for entry in input.authors], problems)

    async def work(session: AsyncSession, rows: SeedRows) -> list[AnyRow]:
        return await seed_catalog(session, rows=rows, skip_existing=input.skip_existing_authors)

    def respond(seeded: list[AnyRow] | None, errors: list[UserError]) -> Any:
        written = [NODES[AUTHOR.name].from_row(row) for row in seeded or []]
        return SeedCatalogPayload(authors=written, user_errors=errors)

    return await mutate(info, validate, work, respond)


SEED_MUTATIONS = {
    "seed_catalog": strawberry.mutation(
        resolver=resolver(
            _seed, returns=SeedCatalogPayload, arguments=[("input", SeedCatalogInput, NO_DEFAULT)]
        ),
        description="Write authors with their books, all in one transaction.",
    )
}
