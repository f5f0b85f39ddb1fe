"""Many writes at once: nothing lost, nothing duplicated, no 500, and an end state that agrees
with what every caller was told."""

import asyncio
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import author_gid, insert_authors
from tests.graphql_client import GraphQLClient

CREATE_BOOK = (
    "mutation Create($input: CreateBookInput!) { createBook(input: $input) "
    "{ book { id databaseId title } userErrors { field message code } } }"
)
UPDATE_AUTHOR = (
    "mutation Update($input: UpdateAuthorInput!) { updateAuthor(input: $input) "
    "{ author { id name bio } userErrors { field message code } } }"
)
DELETE_AUTHOR = (
    "mutation Delete($input: DeleteAuthorInput!) { deleteAuthor(input: $input) "
    "{ author { id } deletedBookIds userErrors { field message code } } }"
)
SEED = (
    "mutation Seed($input: SeedCatalogInput!) { seedCatalog(input: $input) "
    "{ authors { id name } userErrors { field message code } } }"
)


async def payload_of(
    client: GraphQLClient, query: str, field: str, input: dict[str, Any]
) -> dict[str, Any]:
    """The mutation's payload; the response must be a 200 with no top-level errors."""
    data = await client.execute(query, {"input": input})
    payload: dict[str, Any] = data[field]
    return payload


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as connection:
        return await connection.scalar(text(sql), params)


async def book_ids_of(engine: AsyncEngine, author_id: int) -> set[int]:
    async with engine.connect() as connection:
        rows = await connection.scalars(
            text("SELECT id FROM books WHERE author_id = :a"), {"a": author_id}
        )
        return set(rows)


async def test_concurrent_book_creation_loses_and_duplicates_nothing(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    author_id, other_id = await insert_authors(engine, 2)
    titles = [f"Volume {n:03d}" for n in range(200)]
    payloads = await asyncio.gather(
        *(
            payload_of(
                client, CREATE_BOOK, "createBook", {"authorId": author_gid(author_id), "title": t}
            )
            for t in titles
        )
    )

    assert all(p["userErrors"] == [] for p in payloads), payloads
    assert sorted(p["book"]["title"] for p in payloads) == titles
    ids = {p["book"]["databaseId"] for p in payloads}
    assert len({p["book"]["id"] for p in payloads}) == 200
    assert len(ids) == 200
    assert await book_ids_of(engine, author_id) == ids
    assert await book_ids_of(engine, other_id) == set()
    assert await scalar(engine, "SELECT count(*) FROM books") == 200


async def test_concurrent_updates_of_one_author_all_succeed(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    (author_id,) = await insert_authors(engine, 1)
    names = [f"Writer {n:02d}" for n in range(50)]
    payloads = await asyncio.gather(
        *(
            payload_of(
                client, UPDATE_AUTHOR, "updateAuthor", {"id": author_gid(author_id), "name": name}
            )
            for name in names
        )
    )

    for name, payload in zip(names, payloads, strict=True):
        assert payload["userErrors"] == [], payload
        assert payload["author"]["name"] == name
        assert payload["author"]["bio"] == "Bio 0"
    final = await scalar(engine, "SELECT name FROM authors WHERE id = :a", a=author_id)
    assert final in names
    assert await scalar(engine, "SELECT bio FROM authors WHERE id = :a", a=author_id) == "Bio 0"
    assert await scalar(engine, "SELECT count(*) FROM authors") == 1


BOOKS_PER_ROUND = 12
# Where the delete stands among the creates, from first to last.
DELETE_POSITIONS = [0, 1, 3, 6, 9, BOOKS_PER_ROUND]


async def test_deleting_an_author_while_books_are_added_stays_consistent(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    author_ids = await insert_authors(engine, len(DELETE_POSITIONS))
    every_acknowledged = 0

    for author_id, position in zip(author_ids, DELETE_POSITIONS, strict=True):
        gid = author_gid(author_id)
        creates = [
            payload_of(client, CREATE_BOOK, "createBook", {"authorId": gid, "title": f"T{n}"})
            for n in range(BOOKS_PER_ROUND)
        ]
        delete = payload_of(client, DELETE_AUTHOR, "deleteAuthor", {"id": gid, "withBooks": False})
        calls = [*creates[:position], delete, *creates[position:]]
        results = await asyncio.gather(*calls)
        deleted = results.pop(position)

        acknowledged: set[int] = set()
        for created in results:
            if created["book"] is not None:
                assert created["userErrors"] == []
                acknowledged.add(created["book"]["databaseId"])
            else:
                assert [e["code"] for e in created["userErrors"]] == ["NOT_FOUND"], created
                assert created["userErrors"][0]["field"] == ["authorId"]

        stored = await book_ids_of(engine, author_id)
        exists = await scalar(engine, "SELECT count(*) FROM authors WHERE id = :a", a=author_id)
        if deleted["author"] is not None:
            assert deleted["userErrors"] == []
            assert deleted["deletedBookIds"] == []
            assert exists == 0
            assert stored == set()
            assert acknowledged == set(), "a book was acknowledged for a deleted author"
        else:
            assert [e["code"] for e in deleted["userErrors"]] == ["HAS_BOOKS"], deleted
            assert exists == 1
            assert stored == acknowledged
            assert len(acknowledged) == BOOKS_PER_ROUND, "the author stayed, so every add works"
        every_acknowledged += len(acknowledged)

    # No book was written that nobody was told about, for any author.
    assert await scalar(engine, "SELECT count(*) FROM books") == every_acknowledged


def seed_entries(prefix: str, count: int, *, bad_at: int | None = None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = [
        {"name": f"{prefix} {n:02d}", "books": [{"title": f"{prefix} book {n}"}] * 3}
        for n in range(count)
    ]
    if bad_at is not None:
        entries[bad_at] = {"name": f"{prefix} bad", "books": [{"title": "x" * 201}]}
    return entries


async def test_seeds_with_one_bad_entry_write_nothing_even_among_concurrent_seeds(
    client: GraphQLClient, engine: AsyncEngine
) -> None:
    await insert_authors(engine, 3, books_each=2)
    before = (
        await scalar(engine, "SELECT count(*) FROM authors"),
        await scalar(engine, "SELECT count(*) FROM books"),
    )
    entries = 40
    bad_positions = [0, 13, 39, 20, 7]
    inputs = [seed_entries(f"Good {n}", entries) for n in range(5)] + [
        seed_entries(f"Bad {n}", entries, bad_at=at) for n, at in enumerate(bad_positions)
    ]
    payloads = await asyncio.gather(
        *(payload_of(client, SEED, "seedCatalog", {"authors": authors}) for authors in inputs)
    )

    for payload in payloads[:5]:
        assert payload["userErrors"] == [], payload
        assert len(payload["authors"]) == entries
    for payload, at in zip(payloads[5:], bad_positions, strict=True):
        assert payload["authors"] == []
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            (["authors", str(at), "books", "0", "title"], "TOO_LONG")
        ]
    assert await scalar(engine, "SELECT count(*) FROM authors WHERE name LIKE 'Bad %'") == 0
    assert await scalar(engine, "SELECT count(*) FROM authors") == before[0] + 5 * entries
    assert await scalar(engine, "SELECT count(*) FROM books") == before[1] + 5 * entries * 3
