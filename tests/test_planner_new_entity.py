"""A two-word entity described in a test, with no migration, is planned: one statement.

`BookSeries` and its `Volume`s (tests/scratch_entities.py) are not part of the API; their
field table is built here, the planner builds the document's tree from it and compiles its
SQL, and the statement runs against tables made inside a transaction that is rolled back.
"""

import orjson
from graphql import OperationDefinitionNode, parse
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from api.catalog.ids import encode_id
from api.graphql.planner.binding import ConnectionShape
from api.graphql.planner.compiler import compile_query
from api.graphql.planner.document import operation_tree
from api.graphql.surface import build_surface
from tests.scratch_entities import (
    SCRATCH_COUNTED,
    SCRATCH_ENTITIES,
    BookSeriesRow,
    Scratch,
    VolumeRow,
)

DOCUMENT = """
{
  allBookSeries(first: 2, orderBy: NAME_ASC) {
    edges {
      node { __typename name volumes(first: 3) { edges { node { title series { name } } } } }
    }
    pageInfo { hasNextPage }
  }
  bookSeries(id: "x") { id name }
}
"""


async def test_a_two_word_entity_is_planned_as_one_statement(engine: AsyncEngine) -> None:
    surface = build_surface(SCRATCH_ENTITIES, SCRATCH_COUNTED)
    operation = parse(DOCUMENT).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)

    tree, _ = operation_tree(operation, {}, surface)
    page = ConnectionShape("NAME_ASC", True, guarded=True)
    volumes = ConnectionShape("ID_ASC", True)
    plan = compile_query(tree, [page, volumes], surface)
    # The guarded page: each filter (series have one), both cursors' (key, id), the size; NULL
    # for what is not given. The lean one: its size alone. Then the id of `bookSeries`.
    no_cursors = [None] * 4
    values = [None, *no_cursors, 2, 3, 2]
    assert plan.custom

    assert set(tree) == {"allBookSeries", "bookSeries"}
    assert "book_series" in plan.sql
    assert "volumes" in plan.sql
    async with engine.connect() as connection, connection.begin() as transaction:
        await connection.run_sync(Scratch.metadata.create_all)
        names = ["Discworld", "Earthsea", "Amber"]
        await connection.execute(insert(BookSeriesRow), [{"name": n} for n in names])
        titles = [(1, "The Colour of Magic"), (1, "The Light Fantastic"), (2, "A Wizard")]
        await connection.execute(
            insert(VolumeRow), [{"series_id": s, "title": t} for s, t in titles]
        )
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        body = await driver.fetchval(plan.sql, *plan.parameters(values))
        await transaction.rollback()

    data = orjson.loads(body)["data"]
    series = [edge["node"] for edge in data["allBookSeries"]["edges"]]
    assert [s["name"] for s in series] == ["Amber", "Discworld"]
    assert series[0] == {"__typename": "BookSeries", "name": "Amber", "volumes": {"edges": []}}
    assert [e["node"] for e in series[1]["volumes"]["edges"]] == [
        {"title": "The Colour of Magic", "series": {"name": "Discworld"}},
        {"title": "The Light Fantastic", "series": {"name": "Discworld"}},
    ]
    assert data["allBookSeries"]["pageInfo"] == {"hasNextPage": True}
    assert data["bookSeries"] == {"id": encode_id("BookSeries", 2), "name": "Earthsea"}
