"""The planner answers byte for byte as the resolvers do, on documents made from the description.

Every readable field, relation, filter and ordering in `api.catalog.entities` is drawn on, so
a field added there is covered without editing this file. Each document goes to two apps on
the same data, one with the planner and one without; the planner's app is asked twice (its
first request is planned too, after validation), and the three bodies must be equal.
"""

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from graphlib import TopologicalSorter
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from api.catalog.describe import Cardinality, Entity, Field, Filter, Kind, Op
from api.catalog.entities import ENTITIES
from api.catalog.filters import searchable_characters
from api.catalog.ids import encode_id
from api.pipeline import consistency as endpoint  # where the door runs serve_planned
from tests.graphql_client import GraphQLClient

# `make test-fast` leaves these out: many generated documents through both paths (~30 s).
pytestmark = pytest.mark.slow

CASES = 300
FUZZ_CASES = 300
BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TEXTS = [
    "Wisława Szymborska",
    "Same Name",
    "same name",
    'O"Brien \\ back',
    "محمود درويش",
    "東野圭吾 📚",
    "100% _wild_",
    "Zed",
    "Ash",
    "Cedar 50%",
    "Dune_2",
]
ROOT_ENTITY = {entity.plural: entity for entity in ENTITIES.values()}
AUTHORS, BOOKS_PER_AUTHOR = 9, 5


def sample_value(field: Field, rng: random.Random, index: int) -> Any:
    """A stored value for a field, with repeats and nulls so orderings meet ties."""
    if not field.required and rng.random() < 0.25:
        return None
    if field.kind is Kind.TEXT:
        text = rng.choice(TEXTS)
        if field.unique_ignoring_case:  # "Same Name" and "same name" cannot both be stored
            text = f"{text} {index}"
        return text + "\nsecond line" if field.multiline and rng.random() < 0.3 else text
    if field.kind is Kind.INT:
        low = field.minimum if field.minimum is not None else 0
        high = field.maximum if field.maximum is not None else 1000
        return rng.choice([low, high, (low + high) // 2, low + index % 7])
    if field.kind is Kind.TIMESTAMP:
        return BASE + timedelta(seconds=rng.choice([0, 1, 1, 2, 3.5, 4.000123]))
    raise TypeError(field.kind)


def stored_fields(entity: Entity) -> Iterator[Field]:
    return (f for f in entity.fields if f.kind is not Kind.REFERENCE)


def insertion_order() -> list[Entity]:
    """Every entity after those it references, so each row's parents exist when it is written."""
    graph = {
        name: {f.references for f in entity.fields if f.kind is Kind.REFERENCE and f.references}
        for name, entity in ENTITIES.items()
    }
    return [ENTITIES[name] for name in TopologicalSorter(graph).static_order()]


def rows_for(entity: Entity, rng: random.Random, ids: dict[str, list[int]]) -> list[dict[str, Any]]:
    """Rows with every described field set (or null).

    An entity that needs a parent gets `i % BOOKS_PER_AUTHOR` rows under its i-th parent, so
    pages of children meet every size; an optional reference is sometimes left null.
    """
    references = [f for f in entity.fields if f.kind is Kind.REFERENCE]
    required = next((f for f in references if f.required), None)
    parents: list[int | None] = [None] * AUTHORS
    if required is not None:
        parents = [
            parent
            for i, parent in enumerate(ids[required.references or ""])
            for _ in range(i % BOOKS_PER_AUTHOR)
        ]
    rows = []
    for i, parent in enumerate(parents):
        row = {f.key: sample_value(f, rng, i) for f in stored_fields(entity)}
        for reference in references:
            if reference is required:
                row[reference.key] = parent
            else:
                choices = ids[reference.references or ""]
                use = choices and rng.random() < 0.75
                row[reference.key] = rng.choice(choices) if use else None
        rows.append(row)
    return rows


async def populate(engine: AsyncEngine, rng: random.Random) -> dict[str, list[int]]:
    """Rows of every described entity, ids by entity name."""
    ids: dict[str, list[int]] = {}
    async with engine.begin() as connection:
        for entity in insertion_order():
            rows = rows_for(entity, rng, ids)
            written = insert(entity.model).returning(entity.id_column, sort_by_parameter_order=True)
            ids[entity.name] = list(await connection.scalars(written, rows)) if rows else []
    return ids


class QueryGenerator:
    """Random but reproducible documents over the whole read-only schema, from the description."""

    def __init__(
        self, rng: random.Random, ids: dict[str, list[int]], cursors: dict[str, list[str]]
    ):
        self.rng = rng
        self.ids = ids
        self.cursors = cursors
        self.declared: dict[str, str] = {}
        self.variables: dict[str, Any] = {}

    def argument(self, name: str, graphql_type: str, value: Any, literal: str) -> str:
        """`name: literal`, or the same value through a variable."""
        if self.rng.random() < 0.5:
            return f"{name}: {literal}"
        variable = f"v{len(self.declared)}"
        self.declared[variable] = graphql_type
        self.variables[variable] = value
        return f"{name}: ${variable}"

    def gid(self, entity: Entity) -> str:
        keys = self.ids[entity.name]
        key = self.rng.choice([*keys, 999_999]) if keys else 999_999
        return encode_id(entity.name, key)

    def aliased(self, name: str) -> str:
        return f"{name}_{self.rng.randint(1, 9)}: {name}" if self.rng.random() < 0.15 else name

    def entity(self, entity: Entity, depth: int) -> str:
        rng = self.rng
        names = ["id", "databaseId", "__typename", *(f.name for f in entity.fields if f.readable)]
        parts = [self.aliased(n) for n in rng.sample(names, k=rng.randint(1, len(names)))]
        for relation in entity.relations:
            if depth > 0 and rng.random() < 0.6:
                target = ENTITIES[relation.target]
                if relation.cardinality is Cardinality.MANY:
                    inner = self.connection(target, depth - 1, nested=True)
                else:
                    inner = " " + self.entity(target, depth - 1)
                parts.append(self.aliased(relation.name) + inner)
        if rng.random() < 0.2:
            parts.append("... on Node { id }")
        if rng.random() < 0.15:
            field = rng.choice([f for f in entity.fields if f.readable])
            parts.append(f"... on {entity.name} {{ {field.name} }}")
        return "{ " + " ".join(parts) + " }"

    def pattern(self, text: str, described: Filter) -> str:
        """A piece of `text` long enough for the filter, wildcards and all; now and then one
        too short (refused alike on both paths, before any SQL)."""
        if self.rng.random() < 0.1:
            return self.rng.choice(["", "%", "_", "a", "Ab", "%_%", " z "])
        pieces = [
            text[start : start + size].lower()
            for start in range(len(text))
            for size in range(3, 7)
            if searchable_characters(text[start : start + size]) >= (described.min_length or 0)
        ]
        return self.rng.choice(pieces or [text])

    def filter_value(self, described: Filter) -> tuple[Any, str]:
        rng = self.rng
        op, field = described.op, described.field
        if field.kind is Kind.REFERENCE:
            assert field.references is not None
            value = self.gid(ENTITIES[field.references])
            return value, f'"{value}"'
        if field.kind is Kind.INT:
            low = field.minimum if field.minimum is not None else 0
            high = field.maximum if field.maximum is not None else 1000
            number = rng.choice([low, high, (low + high) // 2, low + 3])
            return number, str(number)
        text = rng.choice(TEXTS)
        if op is Op.CONTAINS:
            text = self.pattern(text, described)
        elif rng.random() < 0.5:
            text = f"  {text.upper()} "
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return text, f'"{escaped}"'

    def arguments(self, entity: Entity, nested: bool) -> str:
        rng = self.rng
        args = []
        order = rng.choice(list(entity.orderings))
        if rng.random() < 0.8:
            args.append(self.argument("orderBy", f"{entity.name}OrderBy", order, order))
        else:
            order = entity.default_order
        pool = self.cursors[f"{entity.name}:{order}"]
        size = rng.choice([0, 1, 2, 3, 5, 100])
        direction = rng.random()
        if direction < 0.45:
            args.append(self.argument("first", "Int", size, str(size)))
            if rng.random() < 0.5 and pool:
                cursor = rng.choice(pool)
                args.append(self.argument("after", "String", cursor, f'"{cursor}"'))
        elif direction < 0.9:
            args.append(self.argument("last", "Int", size, str(size)))
            if rng.random() < 0.5 and pool:
                cursor = rng.choice(pool)
                args.append(self.argument("before", "String", cursor, f'"{cursor}"'))
        if rng.random() < 0.1:
            args.append(rng.choice(['after: "bm9wZQ"', "first: 101", "last: -1"]))
        if not nested and rng.random() < 0.5:
            chosen = rng.sample(list(entity.filters), k=rng.randint(1, min(2, len(entity.filters))))
            values = {}
            literals = []
            for described in chosen:
                value, literal = self.filter_value(described)
                values[described.name] = value
                literals.append(f"{described.name}: {literal}")
            literal = "{ " + ", ".join(literals) + " }"
            args.append(self.argument("filter", f"{entity.name}Filter", values, literal))
        return "(" + ", ".join(args) + ")" if args else ""

    def connection(self, entity: Entity, depth: int, *, nested: bool = False) -> str:
        rng = self.rng
        node = self.entity(entity, depth)
        edge_parts = [p for p in ("cursor", f"node {node}", "__typename") if rng.random() < 0.7]
        parts = [f"edges {{ {' '.join(edge_parts or ['cursor'])} }}"] if rng.random() < 0.85 else []
        if rng.random() < 0.6 or not parts:
            info = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"]
            parts.append(f"pageInfo {{ {' '.join(rng.sample(info, k=rng.randint(1, 4)))} }}")
        if rng.random() < 0.5:
            parts.append("totalCount")
        if rng.random() < 0.1:
            parts.append("__typename")
        rng.shuffle(parts)
        return self.arguments(entity, nested) + " { " + " ".join(parts) + " }"

    def root(self) -> str:
        rng = self.rng
        entity = rng.choice(list(ENTITIES.values()))
        choice = rng.random()
        if choice < 0.7:
            return self.aliased(entity.plural) + self.connection(entity, 2)
        if choice < 0.85:
            gid = self.gid(entity)
            lookup = self.argument("id", "ID!", gid, f'"{gid}"')
            return f"{entity.field_name}({lookup}) " + self.entity(entity, 2)
        gid = self.gid(entity)
        lookup = self.argument("id", "ID!", gid, f'"{gid}"')
        branches = " ".join(f"... on {e.name} {self.entity(e, 1)}" for e in ENTITIES.values())
        return f"node({lookup}) {{ __typename {branches} }}"

    def document(self) -> tuple[str, dict[str, Any]]:
        roots = [self.root() for _ in range(self.rng.choice([1, 1, 2]))]
        header = ", ".join(f"${name}: {kind}" for name, kind in self.declared.items())
        operation = f"query Generated{'(' + header + ')' if header else ''} {{ {' '.join(roots)} }}"
        return operation, self.variables


async def all_cursors(client: GraphQLClient) -> dict[str, list[str]]:
    cursors: dict[str, list[str]] = {}
    for entity in ENTITIES.values():
        for order in entity.orderings:
            query = f"{{ {entity.plural}(first: 100, orderBy: {order}) {{ edges {{ cursor }} }} }}"
            data = await client.execute(query)
            cursors[f"{entity.name}:{order}"] = [e["cursor"] for e in data[entity.plural]["edges"]]
    return cursors


def comparable(response: httpx.Response) -> tuple[int, Any]:
    """Status and body; the bytes when no error (request ids differ between two apps)."""
    payload = response.json()
    if "errors" not in payload:
        return response.status_code, response.content
    for error in payload["errors"]:
        error.get("extensions", {}).pop("requestId", None)
    return response.status_code, payload


class PlannedSpy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.served: list[bool] = []
        original = endpoint.serve_planned  # type: ignore[attr-defined]

        async def spy(*args: Any) -> Any:
            response = await original(*args)
            self.served.append(response is not None)
            return response

        monkeypatch.setattr(endpoint, "serve_planned", spy)


async def test_generated_documents_are_answered_identically(
    client: GraphQLClient,
    resolver_client: GraphQLClient,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(20261129)
    ids = await populate(engine, rng)
    cursors = await all_cursors(resolver_client)
    spy = PlannedSpy(monkeypatch)
    planned = 0
    covered: set[str] = set()
    for case in range(CASES):
        query, variables = QueryGenerator(rng, ids, cursors).document()
        expected = comparable(await resolver_client.post(query, variables))
        spy.served.clear()
        first = comparable(await client.post(query, variables))
        second = comparable(await client.post(query, variables))  # seen twice: kept
        again = comparable(await client.post(query, variables))  # answered from what was kept
        assert first == expected, f"case {case} (first request):\n{query}\n{variables}"
        assert second == expected, f"case {case} (second request):\n{query}\n{variables}"
        assert again == expected, f"case {case} (repeated):\n{query}\n{variables}"
        if spy.served == [True, True, True]:  # planned from its first request on
            assert isinstance(expected[1], bytes)
            planned += 1
            covered.update(query.replace("(", " ").split())
            covered.update(json.dumps(variables).split())
    assert planned > CASES * 0.6
    for entity in ENTITIES.values():  # the generator reached every part of the description
        described = [f.name for f in entity.fields if f.readable]
        described += [*entity.orderings, *(f.name for f in entity.filters)]
        described += [r.name for r in entity.relations]
        missing = [name for name in described if not any(name in word for word in covered)]
        assert not missing, f"{entity.name}: never planned {missing}"


def fuzzed(rng: random.Random, valid: Any, kind: str) -> Any:
    """A variable's value: valid, null, of the wrong type, out of range, or with unknown keys."""
    roll = rng.random()
    if roll < 0.35:
        return valid
    if roll < 0.5:
        return None
    if kind == "Int":
        return rng.choice([-1, 101, 2**31, 2**40, 1.5, "3", True, [], {}])
    if kind == "filter":
        return rng.choice([{"bogus": 1}, {**valid, "nope": "x"}, "text", 7, [valid], {}])
    if kind == "order":
        return rng.choice(["BOGUS_ASC", "id_asc", 3, None, ["ID_ASC"]])
    return rng.choice([7, True, "bm9wZQ", "", "QXV0aG9yOjA=", {"a": 1}, "x" * 300])


async def test_fuzzed_variables_are_answered_identically(
    client: GraphQLClient, resolver_client: GraphQLClient, engine: AsyncEngine
) -> None:
    """Null, missing, wrong-typed and out-of-range variables: the same answer on both paths."""
    rng = random.Random(11)
    ids = await populate(engine, rng)
    cursors = await all_cursors(resolver_client)
    for case in range(FUZZ_CASES):
        entity = rng.choice(list(ENTITIES.values()))
        order = rng.choice(list(entity.orderings))
        described = rng.choice(list(entity.filters))
        valid_filter = {
            described.name: QueryGenerator(rng, ids, cursors).filter_value(described)[0]
        }
        candidates = {
            "first": ("Int", fuzzed(rng, 2, "Int")),
            "last": ("Int", fuzzed(rng, 2, "Int")),
            "after": (
                "String",
                fuzzed(rng, rng.choice(cursors[f"{entity.name}:{order}"] or ["x"]), "String"),
            ),
            "orderBy": (f"{entity.name}OrderBy", fuzzed(rng, order, "order")),
            "filter": (f"{entity.name}Filter", fuzzed(rng, valid_filter, "filter")),
        }
        chosen = rng.sample(list(candidates), k=rng.randint(1, len(candidates)))
        header = ", ".join(f"${name}: {candidates[name][0]}" for name in chosen)
        arguments = ", ".join(f"{name}: ${name}" for name in chosen)
        variables = {
            name: candidates[name][1] for name in chosen if rng.random() < 0.85
        }  # a declared variable may also be missing
        query = (
            f"query Fuzz({header}) {{ {entity.plural}({arguments}) "
            "{ totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }"
        )
        expected = comparable(await resolver_client.post(query, variables))
        for attempt in ("first", "second", "repeated"):
            actual = comparable(await client.post(query, variables))
            assert actual == expected, f"case {case} ({attempt}):\n{query}\n{variables}"
