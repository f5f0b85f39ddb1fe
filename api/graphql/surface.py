"""What each field of the derived schema is, looked up by (parent type, field name).

The schema's types are derived from the entity descriptions (`api.graphql.types`,
`queries`, `mutations`); this table is derived from the same descriptions, once at start-up,
so the query planner and the cost limit look a field up instead of guessing from a type's
name. Descriptions are checked first (`api.catalog.checks`); two fields of one name on one
type stop start-up here, with `UnservableDescription` naming the entity and the field.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from api.catalog.checks import UnservableDescription, check_entities
from api.catalog.describe import Cardinality, Entity, Field, Relation
from api.catalog.entities import ENTITIES

PAGE_INFO_FIELDS = ("hasNextPage", "hasPreviousPage", "startCursor", "endCursor")
NODE_INTERFACE = "Node"


class Role(Enum):
    SCALAR = "scalar"  # a column, an id, a cursor, a count, a PageInfo flag
    CONNECTION = "connection"  # a page of `entity`: a root connection or a to-many relation
    OBJECT = "object"  # one `entity`: a lookup, a to-one relation, an edge's node, a payload's
    ANY_NODE = "any node"  # `node(id:)`: any entity
    EDGES = "edges"  # a connection's edges
    PAGE_INFO = "page info"
    CREATED = "created"  # `createX`: its payload
    SEEDED = "seeded"  # `seedCatalog`: its payload (`api.graphql.planner.seed`)
    USER_ERRORS = "user errors"  # a payload's userErrors (none, when a planned write answers)


ChildTypes = tuple[tuple[str, str | None], ...]
"""The concrete types a field's selection applies to, each with its abstract type (`Node`)."""


@dataclass(frozen=True)
class GraphField:
    """One field of one type: its role, the entity it returns, and where it comes from."""

    role: Role
    entity: Entity | None = None
    relation: Relation | None = None
    column: Field | None = None
    children: ChildTypes = ()


@dataclass(frozen=True)
class Surface:
    entities: Mapping[str, Entity]
    fields: Mapping[tuple[str, str], GraphField]

    def field(self, parent: str, name: str) -> GraphField | None:
        if name == "__typename":
            return GraphField(Role.SCALAR)
        return self.fields.get((parent, name))

    @property
    def connection_names(self) -> frozenset[str]:
        """Every field name that is a page of rows: what the cost limit multiplies by."""
        return frozenset(
            name
            for (_, name), described in self.fields.items()
            if described.role is Role.CONNECTION
        )


def _connection(entity: Entity, relation: Relation | None = None) -> GraphField:
    return GraphField(Role.CONNECTION, entity, relation, children=((entity.connection_type, None),))


def _object(entity: Entity, relation: Relation | None = None) -> GraphField:
    return GraphField(Role.OBJECT, entity, relation, children=((entity.name, NODE_INTERFACE),))


class _Table:
    def __init__(self, entities: Mapping[str, Entity]) -> None:
        self.entities = entities
        self.fields: dict[tuple[str, str], GraphField] = {}

    def add(self, parent: str, name: str, described: GraphField, *, owner: str) -> None:
        if (parent, name) in self.fields:
            raise UnservableDescription(f"{owner}.{name}: {parent}.{name} is described twice")
        self.fields[(parent, name)] = described


def build_surface(entities: Mapping[str, Entity], counted: frozenset[str] | None = None) -> Surface:
    """The field table for `entities`; `UnservableDescription` for one it cannot serve.

    `counted` is the tables whose rows are counted (`row_counts`' columns by default).
    """
    check_entities(entities, counted)
    table = _Table(entities)
    for entity in entities.values():
        name = entity.name
        table.add("Query", entity.plural, _connection(entity), owner=name)
        table.add("Query", entity.field_name, _object(entity), owner=name)
        created = GraphField(
            Role.CREATED, entity, children=((entity.payload_type("Create"), None),)
        )
        table.add("Mutation", f"create{name}", created, owner=name)
        payload = entity.payload_type("Create")
        table.add(payload, entity.field_name, _object(entity), owner=name)
        table.add(payload, "userErrors", GraphField(Role.USER_ERRORS), owner=name)
        edges = GraphField(Role.EDGES, entity, children=((entity.edge_type, None),))
        table.add(entity.connection_type, "edges", edges, owner=name)
        page_info = GraphField(Role.PAGE_INFO, children=(("PageInfo", None),))
        table.add(entity.connection_type, "pageInfo", page_info, owner=name)
        table.add(entity.connection_type, "totalCount", GraphField(Role.SCALAR), owner=name)
        table.add(entity.edge_type, "node", _object(entity), owner=name)
        table.add(entity.edge_type, "cursor", GraphField(Role.SCALAR), owner=name)
        for key in ("id", "databaseId"):
            table.add(name, key, GraphField(Role.SCALAR, entity), owner=name)
        for described in entity.fields:
            if described.readable:
                scalar = GraphField(Role.SCALAR, entity, column=described)
                table.add(name, described.name, scalar, owner=name)
        for relation in entity.relations:
            target = entities[relation.target]
            if relation.cardinality is Cardinality.MANY:
                table.add(name, relation.name, _connection(target, relation), owner=name)
            else:
                table.add(name, relation.name, _object(target, relation), owner=name)
    table.add(
        "Query",
        "node",
        GraphField(Role.ANY_NODE, children=tuple((name, NODE_INTERFACE) for name in entities)),
        owner="Query",
    )
    for flag in PAGE_INFO_FIELDS:
        table.add("PageInfo", flag, GraphField(Role.SCALAR), owner="PageInfo")
    return Surface(entities, table.fields)


SEED_FIELD, SEED_PAYLOAD, SEED_AUTHORS = "seedCatalog", "SeedCatalogPayload", "authors"


def with_seed(surface: Surface, seeded: Entity) -> Surface:
    """`surface` with `seedCatalog`, which writes `seeded` rows (authors) with their books."""
    fields = dict(surface.fields)
    fields[("Mutation", SEED_FIELD)] = GraphField(
        Role.SEEDED, seeded, children=((SEED_PAYLOAD, None),)
    )
    fields[(SEED_PAYLOAD, SEED_AUTHORS)] = _object(seeded)
    fields[(SEED_PAYLOAD, "userErrors")] = GraphField(Role.USER_ERRORS)
    return Surface(surface.entities, fields)


SURFACE = with_seed(build_surface(ENTITIES), ENTITIES["Author"])
