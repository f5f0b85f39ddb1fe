"""Mutations that create, change and delete each entity, derived from its description.

Every one is the same skeleton (`writes.mutate`): validate, write, answer with a payload
holding the object (or null) and the user errors.
"""

from collections.abc import Callable
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog import records
from api.catalog.describe import Entity, Kind
from api.catalog.entities import ENTITIES
from api.catalog.ids import encode_id
from api.catalog.problems import InvalidInput, Problem, ProblemCode
from api.catalog.records import Deleted
from api.catalog.rows import AnyRow
from api.catalog.words import with_article
from api.graphql.context import Info
from api.graphql.derive import NO_DEFAULT, new_type, resolver
from api.graphql.errors import UserError
from api.graphql.inputs import (
    CREATE_INPUTS,
    DELETE_INPUTS,
    UPDATE_INPUTS,
    cleaned,
    creatable,
    key_of,
    updatable,
)
from api.graphql.types import NODES
from api.graphql.writes import mutate

Respond = Callable[[AnyRow | None, list[UserError]], Any]


def payload_type(
    verb: str, entity: Entity, *extra: tuple[str, Any, Any], description: str | None = None
) -> type[Any]:
    """`{verb}{Entity}Payload`: the object (null when nothing was written), then user errors."""
    return new_type(
        entity.payload_type(verb),
        [
            (
                entity.python_name,
                NODES[entity.name] | None,
                strawberry.field(name=entity.field_name, description=description),
            ),
            *extra,
            ("user_errors", list[UserError], strawberry.field()),
        ],
    )


def responder(payload: type[Any], entity: Entity) -> Respond:
    node, label = NODES[entity.name], entity.python_name
    return lambda row, errors: payload(
        **{label: None if row is None else node.from_row(row), "user_errors": errors}
    )


def not_found(entity: Entity) -> InvalidInput:
    problem = Problem(("id",), f"no {entity.label} has this id", ProblemCode.NOT_FOUND)
    return InvalidInput([problem])


def mutation(resolve: Any, input_type: type[Any], payload: type[Any], description: str) -> Any:
    return strawberry.mutation(
        resolver=resolver(resolve, returns=payload, arguments=[("input", input_type, NO_DEFAULT)]),
        description=description,
    )


def _create(entity: Entity) -> Any:
    fields = creatable(entity)
    payload = payload_type("Create", entity)

    async def resolve(self: None, info: Info, input: object) -> Any:
        async def work(session: AsyncSession, values: dict[str, Any]) -> AnyRow:
            (row,) = await records.create_rows(session, entity, values=[values])
            return row

        def validate(problems: list[Problem]) -> dict[str, Any]:
            return cleaned(fields, input, problems)

        return await mutate(info, validate, work, responder(payload, entity))

    parents = [f.references for f in fields if f.kind is Kind.REFERENCE and f.required]
    to = "".join(f" to {with_article(ENTITIES[parent].label)}" for parent in parents if parent)
    description = f"Add {with_article(entity.label)}{to}."
    return mutation(resolve, CREATE_INPUTS[entity.name], payload, description)


def _update(entity: Entity) -> Any:
    fields = updatable(entity)
    payload = payload_type("Update", entity)

    async def resolve(self: None, info: Info, input: Any) -> Any:
        def validate(problems: list[Problem]) -> tuple[int, dict[str, Any]]:
            changes = cleaned(fields, input, problems)
            return key_of(entity, input.id), changes

        async def work(session: AsyncSession, validated: tuple[int, dict[str, Any]]) -> AnyRow:
            key, changes = validated
            row = await records.update_row(session, entity, key=key, changes=changes)
            if row is None:
                raise not_found(entity)
            return row

        return await mutate(info, validate, work, responder(payload, entity))

    description = f"Change some of {with_article(entity.label)}'s fields."
    return mutation(resolve, UPDATE_INPUTS[entity.name], payload, description)


def _delete(entity: Entity) -> Any:
    label = entity.label
    cascades = entity.owned
    deleted_ids = {r.name: f"deleted_{ENTITIES[r.target].python_name}_ids" for r in cascades}
    payload = payload_type(
        "Delete",
        entity,
        *((deleted_ids[r.name], list[strawberry.ID], strawberry.field()) for r in cascades),
        description=f"The {label} as it was before deletion.",
    )
    node = NODES[entity.name]

    def respond(deleted: Deleted | None, errors: list[UserError]) -> Any:
        dependents = deleted.dependents if deleted else {}
        return payload(
            **{entity.python_name: None if deleted is None else node.from_row(deleted.row)},
            **{
                deleted_ids[r.name]: [
                    encode_id(r.target, key) for key in dependents.get(r.name, [])
                ]
                for r in cascades
            },
            user_errors=errors,
        )

    async def resolve(self: None, info: Info, input: Any) -> Any:
        def validate(problems: list[Problem]) -> int:
            return key_of(entity, input.id)

        async def work(session: AsyncSession, key: int) -> Deleted:
            cascade = {r.name for r in cascades if getattr(input, r.cascade_argument)}
            deleted = await records.delete_row(session, entity, key=key, cascade=cascade)
            if deleted is None:
                raise not_found(entity)
            return deleted

        return await mutate(info, validate, work, respond)

    only = "".join(
        f"; one with {r.name} only `{r.cascade_argument}: true`"
        if r.owns
        else f"; one that still has {r.name} is refused ({r.has_rows_code})"
        for r in entity.to_many
    )
    description = f"Delete {with_article(label)}{only}."
    return mutation(resolve, DELETE_INPUTS[entity.name], payload, description)


ENTITY_MUTATIONS = {
    f"{verb}_{entity.python_name}": make(entity)
    for entity in ENTITIES.values()
    for verb, make in (("create", _create), ("update", _update), ("delete", _delete))
}
