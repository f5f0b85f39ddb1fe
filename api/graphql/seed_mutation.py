"""`seedCatalog`: many authors and their books in one transaction, or nothing.

Its inputs are derived: an author's creatable fields and a list of their books, each with a
book's creatable fields but the reference to the author.
"""

from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog.entities import AUTHOR, BOOK
from api.catalog.problems import Problem, ProblemCode
from api.catalog.seeding import AUTHOR_OF_BOOK, NewAuthor, SeededAuthor, seed_catalog
from api.graphql.context import Info
from api.graphql.derive import NO_DEFAULT, list_of, new_type, resolver
from api.graphql.errors import UserError
from api.graphql.inputs import cleaned, creatable, input_field
from api.graphql.types import NODES
from api.graphql.writes import mutate
from api.pipeline.policy import ListCap

MAX_SEED_AUTHORS = 1000
MAX_SEED_BOOKS = 10_000
TOO_MANY_AUTHORS = f"at most {MAX_SEED_AUTHORS} authors per call"
TOO_MANY_BOOKS = f"at most {MAX_SEED_BOOKS} books per call"
# The front door counts these in the raw variables, before any is coerced; `_new_authors`
# holds an input written inline in the document to the same caps.
SEED_LIST_CAPS = (
    ListCap("seedCatalog", "input", ("authors",), MAX_SEED_AUTHORS, TOO_MANY_AUTHORS),
    ListCap("seedCatalog", "input", ("authors", "*", "books"), MAX_SEED_BOOKS, TOO_MANY_BOOKS),
)

AUTHOR_FIELDS = creatable(AUTHOR)
BOOK_FIELDS = [f for f in creatable(BOOK) if f.key != AUTHOR_OF_BOOK]

SeedBookInput = new_type("SeedBookInput", [input_field(f) for f in BOOK_FIELDS], input=True)
SeedAuthorInput = new_type(
    "SeedAuthorInput",
    [
        *(input_field(f) for f in AUTHOR_FIELDS),
        ("books", list_of(SeedBookInput), strawberry.field(default_factory=list)),
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


def _new_authors(entries: list[Any], problems: list[Problem]) -> list[NewAuthor]:
    if len(entries) > MAX_SEED_AUTHORS:
        problems.append(Problem(("authors",), TOO_MANY_AUTHORS, ProblemCode.TOO_MANY))
    if sum(len(entry.books) for entry in entries) > MAX_SEED_BOOKS:
        problems.append(Problem(("authors",), TOO_MANY_BOOKS, ProblemCode.TOO_MANY))
    if problems:
        return []
    new_authors = []
    for index, entry in enumerate(entries):
        path = ("authors", str(index))
        values = cleaned(AUTHOR_FIELDS, entry, problems, path)
        books = [
            cleaned(BOOK_FIELDS, book, problems, (*path, "books", str(book_index)))
            for book_index, book in enumerate(entry.books)
        ]
        new_authors.append(NewAuthor(values=values, books=books))
    return new_authors


async def _seed(self: None, info: Info, input: Any) -> Any:
    def validate(problems: list[Problem]) -> list[NewAuthor]:
        return _new_authors(input.authors, problems)

    async def work(session: AsyncSession, new_authors: list[NewAuthor]) -> list[SeededAuthor]:
        return await seed_catalog(
            session, authors=new_authors, skip_existing=input.skip_existing_authors
        )

    def respond(seeded: list[SeededAuthor] | None, errors: list[UserError]) -> Any:
        written = [NODES[AUTHOR.name].from_row(entry.author) for entry in seeded or []]
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
