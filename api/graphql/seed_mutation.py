"""`seedCatalog`: many authors and their books in one transaction, or nothing."""

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog.problems import Problem, ProblemCode
from api.catalog.seeding import NewAuthor, seed_catalog
from api.catalog.text import clean_text
from api.db.models import TITLE_MAX
from api.graphql.author_mutations import author_fields
from api.graphql.context import Info
from api.graphql.errors import UserError
from api.graphql.permissions import CanWrite
from api.graphql.types import Author
from api.graphql.writes import user_errors, write

MAX_SEED_AUTHORS = 1000
MAX_SEED_BOOKS = 10_000


@strawberry.input
class SeedBookInput:
    title: str


@strawberry.input
class SeedAuthorInput:
    name: str
    bio: str | None = None
    country: str | None = None
    books: list[SeedBookInput] = strawberry.field(default_factory=list)


@strawberry.input
class SeedCatalogInput:
    authors: list[SeedAuthorInput]
    skip_existing_authors: bool = strawberry.field(
        default=False,
        description="Skip authors whose exact name exists (with their books): safe re-runs.",
    )


@strawberry.type
class SeedCatalogPayload:
    authors: list[Author] = strawberry.field(description="The authors written by this call.")
    user_errors: list[UserError]


def _new_authors(entries: list[SeedAuthorInput], problems: list[Problem]) -> list[NewAuthor]:
    if len(entries) > MAX_SEED_AUTHORS:
        problems.append(
            Problem(
                ("authors",), f"at most {MAX_SEED_AUTHORS} authors per call", ProblemCode.TOO_MANY
            )
        )
    if sum(len(entry.books) for entry in entries) > MAX_SEED_BOOKS:
        problems.append(
            Problem(("authors",), f"at most {MAX_SEED_BOOKS} books per call", ProblemCode.TOO_MANY)
        )
    if problems:
        return []
    new_authors = []
    for index, entry in enumerate(entries):
        path = ("authors", str(index))
        fields = author_fields(
            name=entry.name, bio=entry.bio, country=entry.country, problems=problems, path=path
        )
        titles = [
            clean_text(
                book.title,
                field=(*path, "books", str(book_index), "title"),
                max_length=TITLE_MAX,
                problems=problems,
            )
            for book_index, book in enumerate(entry.books)
        ]
        new_authors.append(
            NewAuthor(
                name=fields["name"] or "",
                bio=fields["bio"],
                country=fields["country"],
                book_titles=[title for title in titles if title is not None],
            )
        )
    return new_authors


@strawberry.type
class SeedMutations:
    @strawberry.mutation(
        permission_classes=[CanWrite],
        description="Write authors with their books, all in one transaction.",
    )
    async def seed_catalog(self, info: Info, input: SeedCatalogInput) -> SeedCatalogPayload:
        problems: list[Problem] = []
        new_authors = _new_authors(input.authors, problems)
        if problems:
            return SeedCatalogPayload(authors=[], user_errors=user_errors(problems))

        async def seed(session: AsyncSession) -> list[Author]:
            seeded = await seed_catalog(
                session, authors=new_authors, skip_existing=input.skip_existing_authors
            )
            return [Author.from_row(entry.author) for entry in seeded]

        authors, errors = await write(info, seed)
        return SeedCatalogPayload(authors=authors or [], user_errors=errors)
