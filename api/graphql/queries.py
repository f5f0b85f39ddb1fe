"""Read-only entry points: connections over authors and books, and lookups by id."""

from collections.abc import Awaitable, Callable
from enum import Enum

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay

from api.catalog import authors, books
from api.catalog.authors import AUTHOR_ORDERINGS
from api.catalog.books import BOOK_ORDERINGS
from api.catalog.ids import decode_id
from api.catalog.pagination import Page
from api.catalog.problems import Problem
from api.catalog.text import filter_text_problem
from api.graphql.context import Info
from api.graphql.errors import ClientError
from api.graphql.paging import window_for
from api.graphql.types import Author, AuthorConnection, Book, BookConnection, BookOrderBy


@strawberry.enum(description="Orderings of authors; the id breaks ties.")
class AuthorOrderBy(Enum):
    ID_ASC = "ID_ASC"
    ID_DESC = "ID_DESC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"
    CREATED_AT_ASC = "CREATED_AT_ASC"
    CREATED_AT_DESC = "CREATED_AT_DESC"


@strawberry.input(description="Authors matching every given condition.")
class AuthorFilter:
    country: str | None = strawberry.field(default=None, description="Exact, ignoring case.")
    name_contains: str | None = strawberry.field(
        default=None, description="Substring of the name, ignoring case."
    )


@strawberry.input(description="Books matching every given condition.")
class BookFilter:
    author_id: strawberry.ID | None = strawberry.field(
        default=None, description="The author's global id."
    )
    title_contains: str | None = strawberry.field(
        default=None, description="Substring of the title, ignoring case."
    )


def checked_filter_text(value: str | None, argument: str) -> str | None:
    """Filter text Postgres can compare: refused here rather than failing in the database."""
    problem = None if value is None else filter_text_problem(value, argument)
    if problem is not None:
        raise ClientError(problem)
    return value


async def page_and_count(
    info: Info,
    fetch_page: Callable[[AsyncSession], Awaitable[Page]],
    count_rows: Callable[[AsyncSession], Awaitable[int]],
) -> tuple[Page, Callable[[], Awaitable[int]]]:
    """The page now; the total only if the client selects `totalCount`."""
    db = info.context.db
    async with db.read() as session:
        page = await fetch_page(session)

    async def count() -> int:
        async with db.read() as session:
            return await count_rows(session)

    return page, count


def _key_or_error(value: str, *, type_name: str, argument: str) -> int:
    decoded = decode_id(value, type_name=type_name, field=(argument,))
    if isinstance(decoded, Problem):
        raise ClientError(decoded.message)
    return decoded


NODE_TYPES: dict[str, type[Author] | type[Book]] = {"Author": Author, "Book": Book}


@strawberry.type
class Query:
    @strawberry.field(description="Any object, by its global id; null when there is none.")
    async def node(self, info: Info, id: strawberry.ID) -> relay.Node | None:
        try:
            global_id = relay.GlobalID.from_id(id)
        except relay.GlobalIDValueError:
            raise ClientError("`id` is not a valid id") from None
        node_type = NODE_TYPES.get(global_id.type_name)
        if node_type is None:
            raise ClientError(f"`id` is not the id of any of: {', '.join(NODE_TYPES)}")
        (node,) = await node_type.resolve_nodes(info=info, node_ids=[global_id.node_id])
        return node

    @strawberry.field(description="Authors, a page at a time.")
    async def authors(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: AuthorFilter | None = None,
        order_by: AuthorOrderBy = AuthorOrderBy.ID_ASC,
    ) -> AuthorConnection:
        ordering = AUTHOR_ORDERINGS[order_by.value]
        window = window_for(info, ordering, first=first, after=after, last=last, before=before)
        where = authors.AuthorFilter(
            country=checked_filter_text(filter.country, "country") if filter else None,
            name_contains=checked_filter_text(filter.name_contains, "nameContains")
            if filter
            else None,
        )
        page, count = await page_and_count(
            info,
            lambda session: authors.authors_page(session, window=window, where=where),
            lambda session: authors.count_authors(session, where=where),
        )
        return AuthorConnection.from_page(page, ordering, Author.from_row, count)

    @strawberry.field(description="Books, a page at a time.")
    async def books(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: BookFilter | None = None,
        order_by: BookOrderBy = BookOrderBy.ID_ASC,
    ) -> BookConnection:
        ordering = BOOK_ORDERINGS[order_by.value]
        window = window_for(info, ordering, first=first, after=after, last=last, before=before)
        author_id = None
        if filter and filter.author_id is not None:
            author_id = _key_or_error(filter.author_id, type_name="Author", argument="authorId")
        where = books.BookFilter(
            author_id=author_id,
            title_contains=checked_filter_text(filter.title_contains, "titleContains")
            if filter
            else None,
        )
        page, count = await page_and_count(
            info,
            lambda session: books.books_page(session, window=window, where=where),
            lambda session: books.count_books(session, where=where),
        )
        return BookConnection.from_page(page, ordering, Book.from_row, count)

    @strawberry.field(description="One author by global id; null when there is none.")
    async def author(self, info: Info, id: strawberry.ID) -> Author | None:
        key = _key_or_error(id, type_name="Author", argument="id")
        row = await info.context.loaders.author_by_id.load(key)
        return None if row is None else Author.from_row(row)

    @strawberry.field(description="One book by global id; null when there is none.")
    async def book(self, info: Info, id: strawberry.ID) -> Book | None:
        key = _key_or_error(id, type_name="Book", argument="id")
        row = await info.context.loaders.book_by_id.load(key)
        return None if row is None else Book.from_row(row)
