"""`seedCatalog` planned as one statement: both inserts and the payload, built in Postgres.

Strawberry would turn a seed's 11,000 input objects into Python objects one argument at a
time, which costs more than Postgres takes to store the rows. Planned, a request's coerced
variables (plain dicts and lists) are validated a column at a time by the same code the
resolver uses (`api.catalog.seeding.seed_rows`), and sent as one array per column to the
statement `seeding.written` builds: the authors, then their books, in one transaction.

Only the happy path is planned, as for creates: input the resolver would answer with
`userErrors` (a problem in any entry, too many rows) raises `Rejected` while binding, and
the ordinary path answers; so does `skipExistingAuthors: true`, which takes a lock and reads
first. Selections a statement that writes cannot answer (a page of the new authors' books)
make the document unplannable when it is first seen.
"""

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from api.catalog.describe import Kind
from api.catalog.entities import AUTHOR
from api.catalog.problems import Problem
from api.catalog.seeding import (
    ARRAY_TYPES,
    AUTHOR_FIELDS,
    AUTHOR_NUMBER,
    BOOK_FIELDS,
    book_columns,
    seed_rows,
    written,
)
from api.graphql.planner.binding import Binder, Rejected, Site, Step, Walk
from api.graphql.planner.compiler import Builder, CompiledPlan, compile_plan, response
from api.graphql.planner.document import NotPlannable, Selection
from api.graphql.planner.json_text import json_array, json_object, json_string_constant, sql_text
from api.graphql.planner.writes import compile_create, created_entity
from api.graphql.surface import SEED_AUTHORS, SEED_FIELD, SEED_PAYLOAD

SKIP_EXISTING = "skipExistingAuthors"
BOOK_KEYS = (AUTHOR_NUMBER, *(f.key for f in BOOK_FIELDS))


@dataclass(frozen=True)
class Seed:
    """The seed's input: an array per column (the values), always the same statement."""

    site: Site

    def bind(self, binder: Binder) -> None:
        given: dict[str, Any] = binder.arguments(self.site)["input"]
        if given[SKIP_EXISTING]:
            raise Rejected("skipping existing authors is left to the resolver")
        problems: list[Problem] = []
        rows = seed_rows(given["authors"], problems)
        if problems:
            raise Rejected(problems[0].message)
        books = book_columns(rows)
        binder.bound.shape.append(SEED_FIELD)
        binder.bound.values.extend(rows.authors[f.key] for f in AUTHOR_FIELDS)
        binder.bound.values.extend(books[key] for key in BOOK_KEYS)


def seed_steps(walk: Walk, selection: Selection) -> tuple[Step, ...]:
    for item in selection.on(SEED_PAYLOAD).values():
        if item.name == SEED_AUTHORS and walk.entity(AUTHOR, item.on(AUTHOR.name)):
            raise NotPlannable("a page would not see the rows being written")
    return (Seed(walk.site("Mutation", selection)),)


def write_steps(walk: Walk, selection: Selection) -> tuple[Step, ...]:
    """The steps of a planned write: a seed, or a create."""
    if selection.name == SEED_FIELD:
        return seed_steps(walk, selection)
    return walk.create(created_entity(selection), selection)


def compile_seed(key: str, selection: Selection, shape: list[Hashable]) -> CompiledPlan:
    builder = Builder(iter(shape), writing=True)
    if next(builder.shape) != SEED_FIELD:
        raise NotPlannable("not a seed")
    authors = {f.key: builder.param(ARRAY_TYPES[f.kind]) for f in AUTHOR_FIELDS}
    kinds = {AUTHOR_NUMBER: Kind.INT, **{f.key: f.kind for f in BOOK_FIELDS}}
    books = {key: builder.param(ARRAY_TYPES[kinds[key]]) for key in BOOK_KEYS}
    new_authors, new_books = written(authors, books)
    payload = []
    for item_key, item in selection.on(SEED_PAYLOAD).items():
        if item.name == "__typename":
            payload.append((item_key, json_string_constant(SEED_PAYLOAD)))
        elif item.name == "userErrors":  # the statement answers only when it wrote the rows
            payload.append((item_key, sql_text("[]")))
        elif item.name == SEED_AUTHORS:
            author = builder.entity_object(AUTHOR, item.on(AUTHOR.name), new_authors)
            in_order = func.array_agg(aggregate_order_by(author, new_authors.c.id))
            payload.append((item_key, select(json_array(in_order)).scalar_subquery()))
        else:
            raise NotPlannable(item.name)
    body = response(json_object([(key, json_object(payload))]))
    return compile_plan(body.add_cte(new_authors, new_books))


def compile_write(root: dict[str, Selection], shape: list[Hashable]) -> CompiledPlan:
    """The statement of a planned write: a seed, or a create."""
    if len(root) == 1:
        ((key, selection),) = root.items()
        if selection.name == SEED_FIELD:
            return compile_seed(key, selection, shape)
    return compile_create(root, shape)
