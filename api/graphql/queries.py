"""Read-only entry points: a connection and a lookup by id per entity, and `node`."""

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay

from api.catalog import records
from api.catalog.describe import Entity
from api.catalog.entities import ENTITIES
from api.catalog.ids import decode_id
from api.catalog.pagination import Page
from api.catalog.problems import InvalidValue
from api.graphql.arguments import conditions, filter_argument, order_argument, ordering_of
from api.graphql.context import Info
from api.graphql.derive import NO_DEFAULT, PAGE_ARGUMENTS, resolver, with_fields
from api.graphql.errors import ClientError
from api.graphql.paging import window_for
from api.graphql.types import CONNECTIONS, NODES, CountedConnection, NodeObject


async def page_and_count(
    info: Info,
    fetch_page: Callable[[AsyncSession], Awaitable[Page]],
    count_rows: Callable[[AsyncSession], Awaitable[int]],
) -> tuple[Page, Callable[[], Awaitable[int]]]:
    """The page now; the total only if the client selects `totalCount`."""
    db = info.context.db
    async with db.read() as session:
        page = await fetch_page(session)

    async def count() -> int:
        async with db.read() as session:
            return await count_rows(session)

    return page, count


def key_or_error(value: str, *, type_name: str, argument: str) -> int:
    try:
        return decode_id(value, type_name=type_name, field=(argument,))
    except InvalidValue as invalid:
        raise ClientError(invalid.problem.message) from None


def _connection(entity: Entity) -> Any:
    async def resolve(
        self: None, info: Info, filter: object | None, order_by: Enum | None, **pagination: Any
    ) -> CountedConnection[NodeObject]:
        ordering = ordering_of(entity, order_by)
        window = window_for(info, ordering, **pagination)
        where = conditions(entity, filter)
        page, count = await page_and_count(
            info,
            lambda session: records.page(session, entity, window=window, where=where),
            lambda session: records.count(session, entity, where=where),
        )
        node = NODES[entity.name]
        return CONNECTIONS[entity.name].from_page(page, ordering, node.from_row, count)

    arguments = [*PAGE_ARGUMENTS, filter_argument(entity), order_argument(entity)]
    return strawberry.field(
        resolver=resolver(resolve, returns=CONNECTIONS[entity.name], arguments=arguments),
        description=f"{entity.plural.capitalize()}, a page at a time.",
    )


def _lookup(entity: Entity) -> Any:
    async def resolve(self: None, info: Info, id: str) -> NodeObject | None:
        key = key_or_error(id, type_name=entity.name, argument="id")
        row = await info.context.loaders.by_id[entity.name].load(key)
        return None if row is None else NODES[entity.name].from_row(row)

    label = entity.label
    return strawberry.field(
        resolver=resolver(
            resolve,
            returns=NODES[entity.name] | None,
            arguments=[("id", strawberry.ID, NO_DEFAULT)],
        ),
        description=f"One {label} by global id; null when there is none.",
    )


ENTITY_QUERIES = {
    **{entity.plural: _connection(entity) for entity in ENTITIES.values()},
    **{entity.python_name: _lookup(entity) for entity in ENTITIES.values()},
}


@strawberry.type
@with_fields(ENTITY_QUERIES)
class Query:
    @strawberry.field(description="Any object, by its global id; null when there is none.")
    async def node(self, info: Info, id: strawberry.ID) -> relay.Node | None:
        try:
            global_id = relay.GlobalID.from_id(id)
        except relay.GlobalIDValueError:
            raise ClientError("`id` is not a valid id") from None
        node_type = NODES.get(global_id.type_name)
        if node_type is None:
            raise ClientError(f"`id` is not the id of any of: {', '.join(NODES)}")
        (node,) = await node_type.resolve_nodes(info=info, node_ids=[global_id.node_id])
        return node
