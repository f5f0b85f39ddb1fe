"""Range filters that few rows pass, in every ordering, read about those rows and no more.

Books are added over time, so their ids and creation times follow their publication years:
the few books of the latest year sit at the end of the id and createdAt indexes, and of the
publishedYear index too. A page of them, ordered by any of those, used to walk the ordering's
index from its start and filter row by row until it met them, reading nearly every row. Here
a catalogue of BOOKS books is laid out that way; each page's statements, as each path sent
them, are replayed under auto_explain (custom and generic plans, tests/plans.py), and every
plan must read no more than the rows that pass the filter and ROWS_BUDGET others. (The walk
read 496,000 of the 500,000 books.)
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from api.app import front_door_for
from api.catalog.entities import ENTITIES
from api.db.migrations import upgrade_to_head
from api.db.reads import CUSTOM_PLANS
from api.db.statements import statement_counter
from api.settings import Settings
from tests.conftest import make_settings, serving
from tests.graphql_client import GraphQLClient
from tests.plans import executed_plans
from tests.postgres import create_database, drop_database
from tests.sent_sql import SentStatement, statements_sent

# `make test-fast` leaves these out: lays out a catalogue of its own first (a few seconds).
pytestmark = pytest.mark.slow

BOOKS = 500_000
FIRST_YEAR, LAST_YEAR = 1900, 2024
PER_YEAR = BOOKS // (LAST_YEAR - FIRST_YEAR + 1)  # 0.8% of the books
ROWS_BUDGET = 1_000  # besides the rows that pass the filter
TABLES = frozenset({"authors", "books"})
BOOK = ENTITIES["Book"]
# (filter, value): the latest year, the earliest, and years no book has.
FILTERS = [
    ("publishedYearFrom", LAST_YEAR),
    ("publishedYearTo", FIRST_YEAR),
    ("publishedYearFrom", LAST_YEAR + 1),
    ("publishedYearTo", FIRST_YEAR - 1),
]
PAGE = (
    "query($filter: BookFilter, $order: BookOrderBy) { books(first: 20, filter: $filter, "
    "orderBy: $order) { edges { node { id publishedYear } } pageInfo { hasNextPage } } }"
)
LAYOUT = f"""
INSERT INTO authors (id, name) SELECT g, 'Author ' || g FROM generate_series(1, 100) AS g;
INSERT INTO books (id, title, author_id, published_year, created_at)
SELECT n, 'Book ' || n, 1 + n % 100,
       {FIRST_YEAR} + (n - 1) * ({LAST_YEAR} - {FIRST_YEAR} + 1) / {BOOKS},
       timestamptz '2005-01-01 00:00:00+00' + n * interval '1 minute'
FROM generate_series(1, {BOOKS}) AS n;
SELECT setval(pg_get_serial_sequence('books', 'id'), {BOOKS});
SELECT setval(pg_get_serial_sequence('authors', 'id'), 100);
ANALYZE authors, books;
"""


@pytest.fixture(scope="module")
async def catalogue(postgres_admin_url: str) -> AsyncIterator[str]:
    url = await create_database(postgres_admin_url, prefix="catalog_ranges")
    try:
        target = Settings(_env_file=None, database_url=url).migration_database
        await asyncio.to_thread(upgrade_to_head, target, quiet=True)
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(LAYOUT)
        finally:
            await connection.close()
        yield url
    finally:
        await drop_database(postgres_admin_url, url)


@pytest.fixture(scope="module")
async def paths(catalogue: str) -> AsyncIterator[dict[str, GraphQLClient]]:
    async with (
        serving(make_settings(catalogue, query_planner=False)) as resolvers,
        serving(make_settings(catalogue)) as planner,
    ):
        yield {"resolvers": resolvers, "planner": planner}


async def sent_by(
    path: str, client: GraphQLClient, url: str, variables: dict[str, Any]
) -> tuple[list[SentStatement], dict[str, Any]]:
    """The statements `path` sent for the page, and its data."""
    if path == "resolvers":
        with statements_sent() as sent:
            data = await client.execute(PAGE, variables)
        return sent, data
    plans = front_door_for(make_settings(url))
    assert plans is not None
    prepared = await plans.prepare(orjson.dumps({"query": PAGE, "variables": variables}))
    assert prepared is not None, "not planned"
    with statement_counter() as counter, statements_sent() as ordinary:
        data = await client.execute(PAGE, variables)
    assert (counter.count, ordinary) == (1, []), "answered by the resolvers, not the planner"
    # Replayed on a connection set as the planner's are (`api.db.reads.CUSTOM_PLANS`).
    settings = [
        SentStatement("SELECT set_config($1, $2, true)", (name, value))
        for name, value in CUSTOM_PLANS.items()
    ]
    return [*settings, SentStatement(prepared.sql, tuple(prepared.parameters))], data


def passing(name: str, value: int) -> int:
    """Books that pass the filter."""
    return PER_YEAR * len(expected_years(name, value))


def expected_years(name: str, value: int) -> set[int]:
    if name == "publishedYearFrom":
        return {value} if value <= LAST_YEAR else set()
    return {value} if value >= FIRST_YEAR else set()


@pytest.mark.parametrize("path", ["resolvers", "planner"])
@pytest.mark.parametrize("order", list(BOOK.orderings))
@pytest.mark.parametrize(("name", "value"), FILTERS, ids=[f"{n}={v}" for n, v in FILTERS])
async def test_a_range_few_rows_pass_reads_only_those_in_every_ordering(
    catalogue: str,
    paths: dict[str, GraphQLClient],
    name: str,
    value: int,
    order: str,
    path: str,
) -> None:
    variables = {"filter": {name: value}, "order": order}
    await paths[path].execute(PAGE, variables)  # the planner learns the document first
    sent, data = await sent_by(path, paths[path], catalogue, variables)
    years = {edge["node"]["publishedYear"] for edge in data["books"]["edges"]}
    assert years == expected_years(name, value), data
    assert len(data["books"]["edges"]) == (20 if years else 0)
    for statement, plans in await executed_plans(catalogue, sent, TABLES):
        for execution, work in enumerate(plans):
            assert work.rows_examined() <= passing(name, value) + ROWS_BUDGET, (
                f"{work.rows_examined()} rows examined in execution {execution + 1} of:\n"
                f"{statement.sql}\n{statement.params}\n{work.text()}"
            )
