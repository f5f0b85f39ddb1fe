"""Mutation inputs derived from each entity's fields, and their validation.

Create inputs hold the `creatable` fields (optional ones default to null); update inputs the
id and every `updatable` field, each optional, where a field left out keeps its value.
"""

from collections.abc import Iterable
from typing import Any

import strawberry

from api.catalog.describe import Entity, Field
from api.catalog.entities import ENTITIES
from api.catalog.ids import decode_id
from api.catalog.problems import InvalidValue, Problem
from api.catalog.words import with_article
from api.graphql.derive import described, graphql_type, new_type


def input_field(field: Field) -> tuple[str, Any, Any]:
    """A create input's field: required fields have no default, the others default to null."""
    default: dict[str, Any] = {} if field.required else {"default": None}
    description = described(field.description)
    return (
        field.key,
        graphql_type(field),
        strawberry.field(name=field.name, description=description, **default),
    )


def creatable(entity: Entity) -> list[Field]:
    return [f for f in entity.fields if f.creatable]


def updatable(entity: Entity) -> list[Field]:
    return [f for f in entity.fields if f.updatable]


def _create_input(entity: Entity) -> type[Any]:
    return new_type(
        f"Create{entity.name}Input", [input_field(f) for f in creatable(entity)], input=True
    )


def _update_input(entity: Entity) -> type[Any]:
    fields = updatable(entity)
    clearable = [f.name for f in fields if not f.required]
    description = "Fields left out keep their value" + (
        f"; null clears {' or '.join(clearable)}." if clearable else "."
    )
    changes = [
        (
            f.key,
            graphql_type(f, optional=True),
            strawberry.field(
                name=f.name, description=described(f.description), default=strawberry.UNSET
            ),
        )
        for f in fields
    ]
    return new_type(
        f"Update{entity.name}Input",
        [("id", strawberry.ID, strawberry.field()), *changes],
        description=description,
        input=True,
    )


def _delete_input(entity: Entity) -> type[Any]:
    label = entity.label
    flags = [
        (
            relation.cascade_argument,
            bool,
            strawberry.field(
                name=relation.cascade_argument,
                default=False,
                description=f"Also delete the {label}'s {relation.name}; "
                f"without it {with_article(label)} with {relation.name} is kept.",
            ),
        )
        for relation in entity.owned
    ]
    return new_type(
        f"Delete{entity.name}Input",
        [("id", strawberry.ID, strawberry.field()), *flags],
        input=True,
    )


CREATE_INPUTS = {name: _create_input(entity) for name, entity in ENTITIES.items()}
UPDATE_INPUTS = {name: _update_input(entity) for name, entity in ENTITIES.items()}
DELETE_INPUTS = {name: _delete_input(entity) for name, entity in ENTITIES.items()}


def cleaned(
    fields: Iterable[Field], given: object, problems: list[Problem], path: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Column values for the fields given (UNSET ones are left out); problems are collected."""
    values = {}
    for field in fields:
        value = getattr(given, field.key)
        if value is strawberry.UNSET:
            continue
        try:
            values[field.key] = field.clean(value, (*path, field.name))
        except InvalidValue as invalid:
            problems.append(invalid.problem)
    return values


def key_of(entity: Entity, given: str) -> int:
    """The key in the global id `given` as `id`; `InvalidValue` when it is not one."""
    return decode_id(given, type_name=entity.name, field=("id",))
