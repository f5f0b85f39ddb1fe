"""Arguments of the connections, derived from each entity's orderings and filters.

`orderBy` is nullable with the entity's default ordering as its default, and an explicit
null means that default too, so clients (Relay) may pass a nullable variable.
"""

from enum import Enum
from typing import Any

import strawberry
from sqlalchemy import ColumnElement

from api.catalog.describe import Entity, InvalidFilter, Ordering
from api.catalog.entities import ENTITIES
from api.graphql.derive import described, graphql_type, new_type
from api.graphql.errors import ClientError, ErrorCode

# Enum's functional form, typed loosely: its members come from the description.
_enum: Any = Enum


def _order_enum(entity: Entity) -> type[Enum]:
    members = [(name, name) for name in entity.orderings]
    enum: type[Enum] = _enum(f"{entity.name}OrderBy", members)
    return strawberry.enum(enum, description=f"Orderings of {entity.plural}; the id breaks ties.")


def _filter_input(entity: Entity) -> type[Any]:
    return new_type(
        f"{entity.name}Filter",
        [
            (
                f.name,
                graphql_type(f.field, optional=True),
                strawberry.field(name=f.name, default=None, description=described(f.description)),
            )
            for f in entity.filters
        ],
        description=f"{entity.plural.capitalize()} matching every given condition.",
        input=True,
    )


ORDER_ENUMS = {name: _order_enum(entity) for name, entity in ENTITIES.items()}
FILTER_INPUTS = {name: _filter_input(entity) for name, entity in ENTITIES.items()}


def order_argument(entity: Entity) -> tuple[str, Any, Any]:
    enum = ORDER_ENUMS[entity.name]
    return ("order_by", enum | None, enum[entity.default_order])


def filter_argument(entity: Entity) -> tuple[str, Any, Any]:
    return ("filter", FILTER_INPUTS[entity.name] | None, None)


def ordering_of(entity: Entity, order_by: Enum | None) -> Ordering:
    return entity.ordering(None if order_by is None else order_by.value)


def conditions(entity: Entity, given: object | None) -> list[ColumnElement[bool]]:
    """The SQL conditions of a filter input; a value that cannot be compared is the client's."""
    if given is None:
        return []
    clauses = []
    for condition in entity.filters:
        value = getattr(given, condition.name)
        if value is None:
            continue
        try:
            clauses.append(condition.clause(condition.value(value)))
        except InvalidFilter as error:
            raise ClientError(str(error), ErrorCode(error.code)) from None
    return clauses
