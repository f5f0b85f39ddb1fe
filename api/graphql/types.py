"""The catalogue's object types and connections, derived from each entity's description.

Built from rows explicitly: GraphQL types are not ORM models. Every readable field becomes a
field of the type; every relation a field resolved through the request's DataLoaders.
"""

import types
from collections.abc import Awaitable, Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import strawberry
from strawberry import relay

from api.catalog.describe import Cardinality, Entity, Ordering, Relation
from api.catalog.entities import ENTITIES
from api.catalog.keys import INT4_MAX
from api.catalog.pagination import Page
from api.catalog.rows import AnyRow
from api.graphql.arguments import order_argument, ordering_of
from api.graphql.context import Info
from api.graphql.derive import PAGE_ARGUMENTS, described, graphql_type, make_class, resolver
from api.graphql.paging import window_for


class NodeObject(relay.Node):
    """What every derived object type has: its entity, its key, and how to build it from a row."""

    entity: ClassVar[Entity]
    pk: relay.NodeID[int]

    if TYPE_CHECKING:  # Strawberry writes __init__ from the fields the description gives

        def __init__(self, **fields: Any) -> None: ...

    @classmethod
    def from_row(cls, row: AnyRow) -> Self:
        values = {f.key: getattr(row, f.key) for f in cls.entity.fields}
        return cls(pk=row.id, **values)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        loader = info.context.loaders.by_id[cls.entity.name]
        rows = await loader.load_many(_int_keys(node_ids))
        return [None if row is None else cls.from_row(row) for row in rows]


def _int_keys(node_ids: Iterable[str]) -> list[int]:
    """Keys for ids that cannot exist (not a number an id column holds) become 0: no row has it."""
    return [
        int(i) if i.isascii() and i.isdigit() and len(i) <= 10 and int(i) <= INT4_MAX else 0
        for i in node_ids
    ]


NodeT = TypeVar("NodeT", bound=relay.Node)


@strawberry.type(description="A page of items, with the total across all pages.")
class CountedConnection(relay.Connection[NodeT]):
    count_total: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items match, across all pages.")
    async def total_count(self) -> int:
        return await self.count_total()

    @classmethod
    def from_page(
        cls,
        page: Page,
        ordering: Ordering,
        build: Callable[[AnyRow], NodeT],
        count: Callable[[], Awaitable[int]],
    ) -> Self:
        edges = [
            relay.Edge(cursor=ordering.cursor_for(row.sort_key_, row.id), node=build(row))
            for row in page.rows
        ]
        page_info = relay.PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return cls(edges=edges, page_info=page_info, count_total=count)


Hidden = strawberry.Private[Any]
"""A column the type keeps for its relations (a book's author id) but does not show."""


def _database_id(self: NodeObject) -> int:
    return self.pk


def _node_class(entity: Entity) -> type[NodeObject]:
    """The object type of `entity`, not yet decorated: its relations are added first."""
    annotations: dict[str, Any] = {"pk": relay.NodeID[int]}
    attributes: dict[str, Any] = {"entity": entity}
    for field in entity.fields:
        if field.readable:
            annotations[field.key] = graphql_type(field)
            attributes[field.key] = strawberry.field(
                name=field.name, description=described(field.description)
            )
        else:
            annotations[field.key] = Hidden
    attributes["database_id"] = strawberry.field(
        resolver=_database_id,
        description=f"The {entity.label}'s integer key in the database.",
    )
    return make_class(entity.name, annotations, attributes, (NodeObject,))


Nodes = dict[str, type[NodeObject]]
Connections = dict[str, type[CountedConnection[Any]]]


def _to_many(relation: Relation, nodes: Nodes, connections: Connections) -> Any:
    target = ENTITIES[relation.target]
    node, connection = nodes[target.name], connections[target.name]

    async def resolve(
        self: NodeObject, info: Info, order_by: Enum | None, **pagination: Any
    ) -> CountedConnection[NodeObject]:
        ordering = ordering_of(target, order_by)
        window = window_for(info, ordering, **pagination)
        loaders = info.context.loaders
        key = (self.entity.name, relation.name)
        page = await loaders.pages[key].load((self.pk, window))

        def count() -> Awaitable[int]:
            return loaders.counts[key].load(self.pk)

        return connection.from_page(page, ordering, node.from_row, count)

    arguments = [*PAGE_ARGUMENTS, order_argument(target)]
    return strawberry.field(
        resolver=resolver(resolve, returns=connection, arguments=arguments),
        description=described(relation.description),
    )


def _to_one(relation: Relation, nodes: Nodes) -> Any:
    node = nodes[relation.target]

    async def resolve(self: NodeObject, info: Info) -> NodeObject | None:
        key = getattr(self, relation.local.key)
        if key is None:  # an optional relation left empty (a book without a publisher)
            return None
        row = await info.context.loaders.by_id[relation.target].load(key)
        if row is None:  # the foreign key makes this unreachable short of a concurrent delete
            raise LookupError(f"{relation.target} {key} of {self.entity.name} {self.pk} is missing")
        return node.from_row(row)

    returns = node | None if relation.optional else node
    return strawberry.field(
        resolver=resolver(resolve, returns=returns), description=described(relation.description)
    )


def _connection_class(node: type[NodeObject]) -> type[CountedConnection[Any]]:
    cls: type[CountedConnection[Any]] = types.new_class(
        f"{node.__name__}Connection",
        (CountedConnection[node],),  # type: ignore[valid-type]
    )
    return cls


def _derive() -> tuple[Nodes, Connections]:
    """Object types refer to each other (Author.books, Book.author): every class exists
    before any relation field is added, and Strawberry reads them only once complete."""
    nodes = {name: _node_class(entity) for name, entity in ENTITIES.items()}
    connections = {name: _connection_class(node) for name, node in nodes.items()}
    for entity in ENTITIES.values():
        for relation in entity.relations:
            field = (
                _to_many(relation, nodes, connections)
                if relation.cardinality is Cardinality.MANY
                else _to_one(relation, nodes)
            )
            setattr(nodes[entity.name], relation.name, field)
    for name, entity in ENTITIES.items():
        strawberry.type(nodes[name], description=entity.description)
        strawberry.type(connections[name], description=f"A page of {entity.plural}.")
    return nodes, connections


NODES, CONNECTIONS = _derive()
