"""Per-request DataLoaders: each edge of a page costs one batched statement, not one per row."""

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from api.catalog import authors, books
from api.catalog.pagination import Page, Window
from api.catalog.rows import AnyRow
from api.graphql.sessions import RequestSession

BooksPageKey = tuple[int, Window]


@dataclass(frozen=True)
class Loaders:
    author_by_id: DataLoader[int, AnyRow | None]
    book_by_id: DataLoader[int, AnyRow | None]
    books_page_by_author: DataLoader[BooksPageKey, Page]
    book_count_by_author: DataLoader[int, int]


def create_loaders(db: RequestSession) -> Loaders:
    def by_id(
        fetch: Callable[..., Awaitable[dict[int, AnyRow]]],
    ) -> Callable[[list[int]], Awaitable[list[AnyRow | None]]]:
        async def load(ids: list[int]) -> list[AnyRow | None]:
            async with db.read() as session:
                rows = await fetch(session, ids=ids)
            return [rows.get(key) for key in ids]

        return load

    async def load_book_pages(keys: list[BooksPageKey]) -> list[Page]:
        """One statement per distinct window: a page of N authors asks with one window."""
        by_window: dict[Window, list[int]] = defaultdict(list)
        for author_id, window in keys:
            by_window[window].append(author_id)
        pages: dict[BooksPageKey, Page] = {}
        async with db.read() as session:
            for window, author_ids in by_window.items():
                found = await books.books_pages_by_author(
                    session, window=window, author_ids=sorted(set(author_ids))
                )
                pages.update({(author_id, window): page for author_id, page in found.items()})
        return [pages[key] for key in keys]

    async def load_book_counts(author_ids: list[int]) -> Sequence[int]:
        async with db.read() as session:
            counts = await books.count_books_by_author(session, author_ids=author_ids)
        return [counts[author_id] for author_id in author_ids]

    return Loaders(
        author_by_id=DataLoader(load_fn=by_id(authors.authors_by_id)),
        book_by_id=DataLoader(load_fn=by_id(books.books_by_id)),
        books_page_by_author=DataLoader(load_fn=load_book_pages),
        book_count_by_author=DataLoader(load_fn=load_book_counts),
    )
