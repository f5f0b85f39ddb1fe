"""Shapes stay few: a connection's filters and cursors, given or not, share a few plans.

A connection field compiles three times per ordering and direction of travel: once for any
filters (guarded), and twice when no filter is given (lean), with and without the cursor it
travels from.
In a guarded shape every filter and both cursors are bind parameters, NULL when not given,
behind `$n IS NULL OR …` guards (issue 15, compile amplification: `books` had 1,024
present/absent shapes, 64 kept per operation). The guards cost no index only while Postgres
plans each statement with its values; the planner sees to that for guarded statements,
directly and behind a transaction-mode pooler. Lean statements hold no guard, so a plan made
once for any values (which Postgres may settle on) keeps nothing they did not ask for.
"""

import asyncio
import dataclasses
import itertools
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import front_door_for
from api.catalog.entities import ENTITIES
from api.catalog.ids import encode_id
from api.db.engine import EngineOptions
from api.db.reads import PlannerPool, create_planner_pool
from api.db.statements import statement_counter
from api.db.urls import DatabaseTarget
from api.graphql.planner.fastpath import Prepared
from api.settings import Settings
from tests.factories import author_gid, insert_authors
from tests.graphql_client import GraphQLClient
from tests.plans import AUTO_EXPLAIN
from tests.test_planner_differential import comparable

BOOKS = """
query Books($first: Int, $last: Int, $after: String, $before: String, $order: BookOrderBy,
            $author: ID, $title: String, $from: Int, $to: Int, $publisher: ID) {
  books(first: $first, last: $last, after: $after, before: $before, orderBy: $order,
        filter: {authorId: $author, titleContains: $title, publishedYearFrom: $from,
                 publishedYearTo: $to, publisherId: $publisher}) {
    totalCount
    edges { cursor node { title publishedYear } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
FILTERS = {
    "author": author_gid(1),
    "title": "Book",
    "from": 1995,
    "to": 2010,
    "publisher": encode_id("Publisher", 1),
}
BOOK_ORDERINGS = list(ENTITIES["Book"].orderings)
DIRECTIONS = ("first", "last")
RUNS = 8  # of one prepared statement: five planned with the values, then maybe generic


async def catalogue(engine: AsyncEngine) -> None:
    """Books by three authors, some with a year or a publisher, so every filter narrows."""
    await insert_authors(engine, 3, books_each=6)
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO publishers (name) VALUES ('Harvill')"))
        await connection.execute(
            text(
                "UPDATE books SET published_year = CASE WHEN id % 4 = 0 THEN NULL "
                "ELSE 1980 + id * 2 END, publisher_id = CASE WHEN id % 3 = 0 THEN 1 END"
            )
        )


async def cursors(client: GraphQLClient, order: str) -> tuple[str, str]:
    """An `after` and a `before` cursor of `order`, four rows apart."""
    query = "query($o: BookOrderBy) { books(first: 6, orderBy: $o) { edges { cursor } } }"
    data = await client.execute(query, {"o": order})
    edges = data["books"]["edges"]
    return edges[1]["cursor"], edges[5]["cursor"]


def combinations(order: str, after: str, before: str) -> Iterator[dict[str, Any]]:
    """Each direction, each subset of the filters, with and without each cursor."""
    for direction in DIRECTIONS:
        for given in itertools.product((False, True), repeat=len(FILTERS) + 2):
            *filters, with_after, with_before = given
            variables: dict[str, Any] = {direction: 3, "order": order}
            variables.update({k: FILTERS[k] for k, on in zip(FILTERS, filters, strict=True) if on})
            if with_after:
                variables["after"] = after
            if with_before:
                variables["before"] = before
            yield variables


def body(variables: dict[str, Any]) -> bytes:
    return orjson.dumps({"query": BOOKS, "variables": variables})


async def test_present_and_absent_arguments_compile_one_plan_per_ordering_and_direction(
    settings: Settings, engine: AsyncEngine, resolver_client: GraphQLClient
) -> None:
    await catalogue(engine)
    door = front_door_for(settings)
    assert door is not None
    assert door.plans is not None
    prepared = 0
    for order in BOOK_ORDERINGS:
        after, before = await cursors(resolver_client, order)
        for variables in combinations(order, after, before):
            assert await door.prepare(body(variables)) is not None, variables
            prepared += 1
    assert prepared == len(BOOK_ORDERINGS) * len(DIRECTIONS) * 2 ** (len(FILTERS) + 2)  # 2,048
    # Before, each subset of filters and cursors was a shape of its own: 128 per ordering and
    # direction, 64 kept per operation, so cycling them compiled on every request. Now: one
    # guarded shape for any filters, and two lean ones (no filter), with and without a cursor.
    assert door.plans.compiled == len(BOOK_ORDERINGS) * len(DIRECTIONS) * 3


@pytest.mark.parametrize("order", ["ID_ASC", "PUBLISHED_YEAR_DESC", "TITLE_ASC"])
async def test_every_combination_answers_as_the_resolvers_do(
    order: str, client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    """NULL for "not given" changes no answer: byte for byte, with one planned statement."""
    await catalogue(engine)
    after, before = await cursors(resolver_client, order)
    nonempty = 0
    for variables in combinations(order, after, before):
        expected = comparable(await resolver_client.post(BOOKS, variables))
        with statement_counter() as statements:
            answer = comparable(await client.post(BOOKS, variables))
        assert answer == expected, variables
        assert statements.count == 1, variables  # the planner answered, alone
        nonempty += b'"edges":[{' in answer[1]
    assert nonempty > 50  # the filters and cursors leave rows to compare in many of them


async def pool_plans(
    target: DatabaseTarget, prepared: Prepared, *, custom: bool, generic: bool = False
) -> list[str]:
    """The plans of RUNS runs of a prepared request on one connection of a new planner pool
    to `target`, run as the pool runs it. `generic`: Postgres is pushed to a plan for any
    values wherever it may use one."""
    pool = await create_planner_pool(target, EngineOptions())
    try:
        return await _plans_on(pool, prepared.sql, prepared.parameters, custom, generic)
    finally:
        await pool.close()


async def _plans_on(
    pool: PlannerPool, sql: str, params: list[Any], custom: bool, generic: bool
) -> list[str]:
    async with pool.pool.acquire() as connection:
        assert await connection.fetchval("SHOW plan_cache_mode") == "auto"
        if generic:
            await connection.execute("SET plan_cache_mode = force_generic_plan")
        return await plans_of(
            connection, sql, lambda: pool.run(connection, sql, params, custom, None)
        )


async def plans_of(connection: Any, sql: str, run: Callable[[], Awaitable[object]]) -> list[str]:
    """The plans of RUNS calls of `run` (each running `sql` on `connection`), as auto_explain
    reports them."""
    reported: list[str] = []

    def listen(_: object, message: asyncpg.PostgresLogMessage) -> None:
        _, found, plan = message.message.partition("plan:")
        explained = json.loads(plan) if found else {}
        if explained.get("Query Text") == sql:
            reported.append(json.dumps(explained["Plan"]))

    connection.add_log_listener(listen)
    try:
        for setting in AUTO_EXPLAIN:
            await connection.execute(setting)
        for _ in range(RUNS):
            await run()
        for _ in range(200):  # listeners hear of notices a few loop iterations later
            if len(reported) >= RUNS:
                break
            await asyncio.sleep(0.01)
    finally:
        connection.remove_log_listener(listen)
    return reported


@pytest.mark.parametrize("pooled", [False, True], ids=["direct", "transaction pooler"])
async def test_a_guarded_statement_is_planned_with_its_values_every_run(
    settings: Settings, engine: AsyncEngine, pooled: bool
) -> None:
    """Past five runs Postgres may plan a prepared statement once for any values (a generic
    plan), which keeps every `$n IS NULL` guard and cannot pick an index by them. The planner's
    pool prepares a guarded statement afresh for each run; behind a pooler (no statement cache)
    each run is a new unnamed statement, planned with its values all the same."""
    await catalogue(engine)
    door = front_door_for(settings)
    assert door is not None
    prepared = await door.prepare(body({"first": 3, "title": "Book", "from": 1995}))
    assert prepared is not None
    assert prepared.custom
    assert "IS NULL" in prepared.sql
    target = dataclasses.replace(settings.database, pooled=pooled)
    plans = await pool_plans(target, prepared, custom=True)
    assert len(plans) == RUNS
    assert not [plan for plan in plans if "IS NULL" in plan], plans[-1]


async def test_without_custom_the_pool_would_settle_on_a_generic_plan(
    settings: Settings, engine: AsyncEngine
) -> None:
    """The control for the test above: run as a lean statement is (prepared once and cached),
    the same guarded statement gets a generic plan, guards and all, once Postgres is pushed
    to one, as `auto` may do after five runs."""
    await catalogue(engine)
    door = front_door_for(settings)
    assert door is not None
    prepared = await door.prepare(body({"first": 3, "title": "Book", "from": 1995}))
    assert prepared is not None
    plans = await pool_plans(settings.database, prepared, custom=False, generic=True)
    assert len(plans) == RUNS
    assert all("IS NULL" in plan for plan in plans), plans[-1]


async def test_a_plain_page_is_a_lean_statement_without_guards(
    settings: Settings, engine: AsyncEngine, resolver_client: GraphQLClient
) -> None:
    """No filter given: the statement holds only the conditions asked for, so Postgres may
    keep one plan for it (W2 and W6 are such pages), and that plan keeps nothing extra."""
    await catalogue(engine)
    door = front_door_for(settings)
    assert door is not None
    after, before = await cursors(resolver_client, "ID_ASC")
    for variables in ({"first": 3}, {"first": 3, "after": after}, {"last": 2, "before": before}):
        prepared = await door.prepare(body(variables))
        assert prepared is not None, variables
        assert not prepared.custom, variables
        assert "IS NULL" not in prepared.sql, variables
    assert prepared is not None
    generic = await pool_plans(settings.database, prepared, custom=False, generic=True)
    assert generic
    assert not [plan for plan in generic if "IS NULL" in plan]


async def test_a_generic_plan_would_keep_the_guards(
    settings: Settings, engine: AsyncEngine
) -> None:
    """The control for the test above: its check sees a plan made for any values."""
    await catalogue(engine)
    door = front_door_for(settings)
    assert door is not None
    prepared = await door.prepare(body({"first": 3, "title": "Book", "from": 1995}))
    assert prepared is not None
    url = settings.database.url.set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(url, server_settings={"plan_cache_mode": "auto"})
    try:

        def run() -> Awaitable[object]:
            return connection.fetchval(prepared.sql, *prepared.parameters)

        plans = await plans_of(connection, prepared.sql, run)
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        generic = await plans_of(connection, prepared.sql, run)
    finally:
        await connection.close()
    assert "IS NULL" not in plans[0]  # the first runs are planned with the values
    assert len(generic) == RUNS
    assert all("IS NULL" in plan for plan in generic), generic[-1]


CREATE = """
mutation($i: CreateBookInput!) {
  createBook(input: $i) { book { title publishedYear publisher { name } } userErrors { message } }
}
"""


async def test_a_create_compiles_once_whichever_optional_fields_are_given(
    settings: Settings, client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    """A field left out is stored as null, as its column would (no default): the insert
    always names every column, so neither the fields given nor their order fork its plan."""
    await catalogue(engine)
    required = {"authorId": author_gid(2), "title": "Created"}
    optional = {"publishedYear": 2001, "publisherId": encode_id("Publisher", 1)}
    # Each optional field null, left out or given; in the schema's order, and reversed.
    inputs = []
    for states in itertools.product(("null", "out", "in"), repeat=len(optional)):
        present = {
            key: value if state == "in" else None
            for (key, value), state in zip(optional.items(), states, strict=True)
            if state != "out"
        }
        inputs += [{**required, **present}, {**dict(reversed(present.items())), **required}]
    door = front_door_for(settings)
    assert door is not None
    assert door.plans is not None
    for given in inputs:
        assert await door.prepare(orjson.dumps({"query": CREATE, "variables": {"i": given}}))
    assert door.plans.compiled == 1
    for given in inputs[::2]:  # written by both paths, answered alike
        expected = comparable(await resolver_client.post(CREATE, {"i": given}))
        with statement_counter() as statements:
            answer = comparable(await client.post(CREATE, {"i": given}))
        assert answer == expected, given
        assert statements.count == 1, given
