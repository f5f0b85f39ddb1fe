"""A lone create mutation planned as one statement: insert the row, build the payload in Postgres.

Only the happy path is planned. Input the ordinary path would refuse (a malformed id, text
that fails validation, a value out of range) raises `Rejected` while binding, and a parent
that does not exist, or a unique value already taken, makes the statement insert nothing and
return no row: in both cases the ordinary path answers, with its `userErrors`, and nothing
was written here.
"""

from collections.abc import Hashable

from sqlalchemy import exists, func, insert, or_, select

from api.catalog.describe import Entity, Kind
from api.catalog.entities import ENTITIES
from api.graphql.planner.compiler import (
    BIND_TYPES,
    Builder,
    CompiledPlan,
    column_name,
    compile_plan,
    response,
)
from api.graphql.planner.document import NotPlannable, Selection
from api.graphql.planner.json_text import json_object, sql_text
from api.graphql.surface import SURFACE, Role


def created_entity(selection: Selection) -> Entity:
    """The entity a `createX` field creates, from the field table."""
    described = SURFACE.field("Mutation", selection.name)
    if described is None or described.role is not Role.CREATED or described.entity is None:
        raise NotPlannable(selection.name)
    return described.entity


def compile_create(root: dict[str, Selection], shape: list[Hashable]) -> CompiledPlan:
    if len(root) != 1:
        raise NotPlannable("only a lone create is planned")
    ((key, selection),) = root.items()
    entity = created_entity(selection)
    builder = Builder(iter(shape), writing=True)
    keys = next(builder.shape)
    assert isinstance(keys, tuple)
    fields = [entity.field(name) for name in keys]
    values = {}
    guards = []
    for described in fields:
        assert described is not None
        value = builder.param(BIND_TYPES[described.kind])
        values[described.key] = value
        if described.kind is Kind.REFERENCE:
            assert described.references is not None
            parent = ENTITIES[described.references].table
            found = exists().where(parent.c.id == value)
            # A null reference (an optional one) points nowhere, and needs no parent.
            guards.append(found if described.required else or_(value.is_(None), found))
        if described.unique_ignoring_case:  # taken: no row, and the ordinary path says TAKEN
            column = entity.table.c[column_name(described)]
            guards.append(~exists().where(func.lower(column) == func.lower(value)))
    table = entity.table
    source = select(*values.values()).where(*guards)
    inserted = (
        insert(table)
        .from_select(list(values), source)
        .returning(*(table.c[c.expression.name] for c in entity.columns))
        .cte()
    )
    payload = []
    payload_type = entity.payload_type("Create")
    for item_key, item in selection.on(payload_type).items():
        if item.name == "__typename":
            payload.append((item_key, sql_text(f'"{payload_type}"')))
        elif item.name == "userErrors":  # the statement answers only when it wrote the row
            payload.append((item_key, sql_text("[]")))
        elif item.name == entity.field_name:
            payload.append(
                (item_key, builder.entity_object(entity, item.on(entity.name), inserted))
            )
        else:
            raise NotPlannable(item.name)
    statement = response(json_object([(key, json_object(payload))])).select_from(inserted)
    return compile_plan(statement)
