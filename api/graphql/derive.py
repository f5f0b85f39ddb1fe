"""Building Strawberry types and resolvers from the catalogue's description.

Strawberry reads a type's fields from its annotations and a resolver's arguments from its
signature. A derived type is a class made at import time with annotations built from the
description; a derived resolver is one generic function given the signature of the entity
it serves. Types are therefore `type[Any]` to mypy: the description, not the source, says
what they hold.
"""

import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import GenericAlias
from typing import Any, TypeVar

import strawberry

from api.catalog.describe import Field, Kind
from api.graphql.context import Info

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

NO_DEFAULT = inspect.Parameter.empty
POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD

GRAPHQL_TYPES: dict[Kind, Any] = {
    Kind.TEXT: str,
    Kind.INT: int,
    Kind.TIMESTAMP: datetime,
    Kind.REFERENCE: strawberry.ID,
}

PAGE_ARGUMENTS: list[tuple[str, Any, Any]] = [
    ("first", int | None, None),
    ("after", str | None, None),
    ("last", int | None, None),
    ("before", str | None, None),
]


def graphql_type(field: Field, *, optional: bool = False) -> Any:
    """The field's annotation: nullable unless required (and not made optional)."""
    base = GRAPHQL_TYPES[field.kind]
    return base | None if optional or not field.required else base


def resolver(func: F, *, returns: Any, arguments: Sequence[tuple[str, Any, Any]] = ()) -> F:
    """`func` with the signature Strawberry reads: self, info, then (name, type, default)s."""
    parameters = [
        inspect.Parameter("self", POSITIONAL),
        inspect.Parameter("info", POSITIONAL, annotation=Info),
        *(
            inspect.Parameter(name, POSITIONAL, annotation=annotation, default=default)
            for name, annotation, default in arguments
        ),
    ]
    func.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
    return func


def make_class(
    name: str,
    annotations: Mapping[str, Any],
    attributes: Mapping[str, Any],
    bases: tuple[type, ...] = (),
) -> type[Any]:
    """A plain class for `strawberry.type` or `strawberry.input` to decorate."""
    namespace = {"__annotations__": dict(annotations), "__module__": __name__, **attributes}
    return type(name, bases, namespace)


def new_type(
    name: str,
    fields: Sequence[tuple[str, Any, Any]],
    *,
    description: str | None = None,
    input: bool = False,
) -> type[Any]:
    """An object (or input) type from (python name, annotation, strawberry.field) triples."""
    cls = make_class(
        name, {key: annotation for key, annotation, _ in fields}, {k: f for k, _, f in fields}
    )
    decorate = strawberry.input if input else strawberry.type
    return decorate(cls, description=description)


def with_fields(fields: Mapping[str, Any]) -> Callable[[C], C]:
    """Add derived fields to a class before `strawberry.type` reads it."""

    def add(cls: C) -> C:
        for name, value in fields.items():
            setattr(cls, name, value)
        return cls

    return add


def list_of(item: Any) -> Any:
    """`list[item]` for a type made at run time (mypy takes `list[x]` for an annotation)."""
    return GenericAlias(list, (item,))


def described(text: str) -> str | None:
    """The description's text, or None (GraphQL prints no empty descriptions)."""
    return text or None
