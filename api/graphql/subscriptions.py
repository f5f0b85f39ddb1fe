"""The change subscriptions, derived from the entities: `<entity>Changed(filter, after)`.

Only their shape lives here. The live service (api.live) serves them, over WebSocket and
SSE: it opens each through the front door and renders its events from the change log, so
the resolver below is never what runs them; it says so if called directly.
"""

from collections.abc import AsyncGenerator
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from api.catalog.describe import Entity
from api.catalog.entities import ENTITIES
from api.graphql.arguments import filter_argument
from api.graphql.derive import new_type, resolver, with_fields
from api.graphql.errors import ClientError
from api.graphql.types import NODES


@strawberry.enum(description="What happened to the row, as the subscription's filter sees it.")
class ChangeKind(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


def change_field_name(entity: Entity) -> str:
    return f"{entity.python_name}Changed"


def _change_type(entity: Entity) -> type[Any]:
    label = entity.label
    return new_type(
        f"{entity.name}Change",
        [
            (
                "cursor",
                str,
                strawberry.field(
                    description="Resume after this event: pass it as `after` when reconnecting."
                ),
            ),
            ("kind", ChangeKind, strawberry.field(description="Created, updated or deleted.")),
            ("id", strawberry.ID, strawberry.field(description=f"The {label}'s global id.")),
            (
                "node",
                NODES[entity.name] | None,
                strawberry.field(description=f"The {label} now; null when deleted."),
            ),
        ],
        description=f"A committed change to one {label}.",
    )


CHANGE_TYPES = {name: _change_type(entity) for name, entity in ENTITIES.items()}


def _changed(entity: Entity) -> Any:
    change: Any = CHANGE_TYPES[entity.name]

    async def subscribe(
        self: None, info: Info, filter: object | None, after: str | None
    ) -> AsyncGenerator[Any, None]:
        raise ClientError("Subscriptions are served over WebSocket or SSE at /graphql")
        yield  # an async generator, as Strawberry requires of a subscription

    arguments = [filter_argument(entity), ("after", str | None, None)]
    return strawberry.subscription(
        resolver=resolver(subscribe, returns=AsyncGenerator[change, None], arguments=arguments),
        description=(
            f"Every committed change to {entity.plural} matching `filter`; with `after`, "
            "first every change since that event's cursor."
        ),
    )


LIVE_FIELDS = {change_field_name(entity): entity for entity in ENTITIES.values()}


@strawberry.type
@with_fields({name: _changed(entity) for name, entity in LIVE_FIELDS.items()})
class Subscription:
    pass
