"""The catalogue's object types. Built from rows explicitly: GraphQL types are not ORM models."""

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import Self, TypeVar

import strawberry
from strawberry import relay

from api.catalog.books import BOOK_ORDERINGS
from api.catalog.describe import Ordering
from api.catalog.pagination import Page
from api.catalog.rows import AnyRow
from api.graphql.context import Info
from api.graphql.paging import window_for


@strawberry.enum(description="Orderings of books; the id breaks ties.")
class BookOrderBy(Enum):
    ID_ASC = "ID_ASC"
    ID_DESC = "ID_DESC"
    TITLE_ASC = "TITLE_ASC"
    TITLE_DESC = "TITLE_DESC"
    CREATED_AT_ASC = "CREATED_AT_ASC"
    CREATED_AT_DESC = "CREATED_AT_DESC"


@strawberry.type(description="A writer in the catalogue.")
class Author(relay.Node):
    pk: relay.NodeID[int]
    name: str
    bio: str | None
    country: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: AnyRow) -> Self:
        return cls(
            pk=row.id, name=row.name, bio=row.bio, country=row.country, created_at=row.created_at
        )

    @strawberry.field(description="The author's integer key in the database.")
    def database_id(self) -> int:
        return self.pk

    @strawberry.field(description="The author's books, oldest first unless ordered otherwise.")
    async def books(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        order_by: BookOrderBy = BookOrderBy.ID_ASC,
    ) -> "BookConnection":
        ordering = BOOK_ORDERINGS[order_by.value]
        window = window_for(info, ordering, first=first, after=after, last=last, before=before)
        loaders = info.context.loaders
        page = await loaders.books_page_by_author.load((self.pk, window))

        def count() -> Awaitable[int]:
            return loaders.book_count_by_author.load(self.pk)

        return BookConnection.from_page(page, ordering, Book.from_row, count)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        rows = await info.context.loaders.author_by_id.load_many(_int_keys(node_ids))
        return [None if row is None else cls.from_row(row) for row in rows]


@strawberry.type(description="A book, written by one author.")
class Book(relay.Node):
    pk: relay.NodeID[int]
    title: str
    created_at: datetime
    author_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: AnyRow) -> Self:
        return cls(pk=row.id, title=row.title, created_at=row.created_at, author_id=row.author_id)

    @strawberry.field(description="The book's integer key in the database.")
    def database_id(self) -> int:
        return self.pk

    @strawberry.field
    async def author(self, info: Info) -> Author:
        row = await info.context.loaders.author_by_id.load(self.author_id)
        if row is None:  # the foreign key makes this unreachable short of a concurrent delete
            raise LookupError(f"author {self.author_id} of book {self.pk} is missing")
        return Author.from_row(row)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        rows = await info.context.loaders.book_by_id.load_many(_int_keys(node_ids))
        return [None if row is None else cls.from_row(row) for row in rows]


def _int_keys(node_ids: Iterable[str]) -> list[int]:
    """Keys for ids that cannot exist (not numeric) become 0, which no row has."""
    return [int(i) if i.isascii() and i.isdigit() and len(i) < 10 else 0 for i in node_ids]


NodeT = TypeVar("NodeT", bound=relay.Node)


@strawberry.type(description="A page of items, with the total across all pages.")
class CountedConnection(relay.Connection[NodeT]):
    count_total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items match, across all pages.")
    async def total_count(self) -> int:
        return await self.count_total()

    @classmethod
    def from_page(
        cls,
        page: Page,
        ordering: Ordering,
        build: Callable[[AnyRow], NodeT],
        count: Callable[[], Awaitable[int]],
    ) -> Self:
        edges = [
            relay.Edge(cursor=ordering.cursor_for(row.sort_key_, row.id), node=build(row))
            for row in page.rows
        ]
        page_info = relay.PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return cls(edges=edges, page_info=page_info, count_total=count)


@strawberry.type(name="AuthorConnection", description="A page of authors.")
class AuthorConnection(CountedConnection[Author]):
    pass


@strawberry.type(name="BookConnection", description="A page of books.")
class BookConnection(CountedConnection[Book]):
    pass
