"""The field table: derived from the descriptions, and refusing at start-up what it cannot serve."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from graphql import GraphQLObjectType, OperationDefinitionNode, build_schema, parse

from api.catalog.checks import UnservableDescription
from api.catalog.describe import Cardinality, Relation
from api.catalog.entities import ENTITIES
from api.db.migrations import PROJECT_ROOT
from api.graphql.limits import CONNECTION_FIELDS, query_cost
from api.graphql.surface import SURFACE, Role, build_surface
from tests.scratch_entities import (
    BOOK_SERIES,
    SCRATCH_COUNTED,
    SCRATCH_ENTITIES,
    VOLUME,
    BookSeriesRow,
    VolumeRow,
    with_relation,
)


def test_fields_are_looked_up_by_parent_type_and_name() -> None:
    author, book = ENTITIES["Author"], ENTITIES["Book"]

    books = SURFACE.field("Author", "books")
    assert books is not None
    assert (books.role, books.entity, books.children) == (
        Role.CONNECTION,
        book,
        (("BookConnection", None),),
    )
    assert books.relation is author.relation("books")
    created = SURFACE.field("Mutation", "createBook")
    assert created is not None
    assert (created.role, created.entity) == (Role.CREATED, book)
    assert SURFACE.field("CreateBookPayload", "book") is not None
    assert SURFACE.field("Mutation", "updateBook") is None  # not planned: the resolvers answer
    assert SURFACE.field("Book", "authorId") is None  # not readable
    assert SURFACE.field("Query", "authors") is not None


def test_a_two_word_entity_gets_camel_case_fields_and_its_own_types() -> None:
    surface = build_surface(SCRATCH_ENTITIES, SCRATCH_COUNTED)

    lookup = surface.field("Query", "bookSeries")
    assert lookup is not None
    assert (lookup.role, lookup.entity) == (Role.OBJECT, BOOK_SERIES)
    assert lookup.children == (("BookSeries", "Node"),)
    assert surface.field("Query", "bookseries") is None
    assert surface.field("Mutation", "createBookSeries") is not None
    assert surface.field("CreateBookSeriesPayload", "bookSeries") is not None
    edges = surface.field("BookSeriesConnection", "edges")
    assert edges is not None
    assert edges.children == (("BookSeriesEdge", None),)
    series = surface.field("Volume", "series")
    assert series is not None
    assert (series.role, series.entity) == (Role.OBJECT, BOOK_SERIES)
    assert BOOK_SERIES.python_name == "book_series"
    assert BOOK_SERIES.label == "book series"


def test_every_connection_the_descriptions_give_is_costed() -> None:
    surface = build_surface(SCRATCH_ENTITIES, SCRATCH_COUNTED)
    assert surface.connection_names == {"allBookSeries", "volumes"}

    expected = {e.plural for e in ENTITIES.values()}
    expected |= {r.name for e in ENTITIES.values() for r in e.to_many}
    assert expected == CONNECTION_FIELDS
    for entity in ENTITIES.values():
        for relation in entity.to_many:
            document = parse(
                f"{{ {entity.plural}(first: 10) {{ edges {{ node {{ "
                f"{relation.name}(first: 10) {{ edges {{ node {{ id }} }} }} }} }} }} }}"
            )
            operation = document.definitions[0]
            assert isinstance(operation, OperationDefinitionNode)
            cost = query_cost(operation, {}, {}, default_page_size=20, max_page_size=100)
            # node 1, edges 2, inner page 10 x 3, node 31, edges 32, outer page 10 x 33
            assert cost == 330, (entity.name, relation.name)


UNSERVABLE = {
    "a relation to nobody": (
        with_relation(
            BOOK_SERIES,
            Relation(
                "editions",
                "Edition",
                Cardinality.MANY,
                BookSeriesRow.id,
                VolumeRow.series_id,
                "",
            ),
        ),
        SCRATCH_COUNTED,
        "BookSeries.editions: relation to Edition, which no entity describes",
    ),
    "a nullable key not described as optional": (
        {
            **SCRATCH_ENTITIES,
            "Volume": replace(
                VOLUME,
                relations=(
                    Relation(
                        "series",
                        "BookSeries",
                        Cardinality.ONE,
                        VolumeRow.series_id,
                        BookSeriesRow.id,
                        "",
                        optional=True,
                    ),
                ),
            ),
        },
        SCRATCH_COUNTED,
        "Volume.series: volumes.series_id may not be null; describe it optional=False",
    ),
    "a table nobody counts": (
        SCRATCH_ENTITIES,
        frozenset({"volumes"}),
        "BookSeries.totalCount: table book_series has no row count",
    ),
    "a relation named as a field": (
        with_relation(
            BOOK_SERIES,
            Relation("name", "Volume", Cardinality.MANY, BookSeriesRow.id, VolumeRow.series_id, ""),
        ),
        SCRATCH_COUNTED,
        "BookSeries.name: named twice",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSERVABLE))
def test_a_description_that_cannot_be_served_fails_in_one_line(case: str) -> None:
    entities, counted, message = UNSERVABLE[case]

    with pytest.raises(UnservableDescription) as raised:
        build_surface(entities, counted)

    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_the_table_and_the_schema_agree_on_every_derived_type() -> None:
    """The table is derived beside the Strawberry types; neither may drift from the other."""
    schema = build_schema((PROJECT_ROOT / "schema.graphql").read_text())

    def table_fields(parent: str) -> set[str]:
        return {name for (owner, name) in SURFACE.fields if owner == parent}

    def schema_fields(parent: str) -> set[str]:
        found = schema.get_type(parent)
        assert isinstance(found, GraphQLObjectType), parent
        return set(found.fields)

    for entity in ENTITIES.values():
        for parent in (
            entity.name,
            entity.connection_type,
            entity.edge_type,
            entity.payload_type("Create"),
        ):
            assert table_fields(parent) == schema_fields(parent), parent
    assert table_fields("Query") == schema_fields("Query")
    assert table_fields("PageInfo") == schema_fields("PageInfo")
    assert table_fields("Mutation") <= schema_fields("Mutation")


UNCOUNTED_PUBLISHERS = """
import sys
from api.db.models import RowCount
RowCount.__table__._columns.remove(RowCount.__table__.c.publishers)
from api.cli import main
sys.exit(main(["export-schema", "--check"]))
"""


def test_the_command_refuses_an_unservable_catalogue_in_one_line(tmp_path: Path) -> None:
    """Forgetting a new table's row count stops any command as the catalogue is imported."""
    finished = subprocess.run(
        [sys.executable, "-c", UNCOUNTED_PUBLISHERS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 1, finished
    assert finished.stderr.splitlines() == [
        "error: the catalogue cannot be served: Publisher.totalCount: table publishers has no"
        " row count; add its column to RowCount and install counting"
        " (api.db.counting.install_counting)"
    ]
