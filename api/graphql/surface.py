"""What each field of the derived schema is, looked up by (parent type, field name).

The schema's types are derived from the entity descriptions (`api.graphql.types`,
`queries`, `mutations`); this table is derived from the same descriptions, once at start-up,
so the query planner and the cost limit look a field up instead of guessing from a type's
name. A description the table cannot serve (a relation to an entity nobody describes, a
nullable key on a relation not described as optional, a table nobody counts, two fields of
one name) stops start-up with `UnservableDescription`, one line naming the entity and field.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from api.catalog.describe import Cardinality, Entity, Field, Kind, Relation
from api.catalog.entities import ENTITIES
from api.db.models import RowCount

PAGE_INFO_FIELDS = ("hasNextPage", "hasPreviousPage", "startCursor", "endCursor")
NODE_INTERFACE = "Node"


class UnservableDescription(Exception):
    """A description the API cannot serve; the message names the entity and the field."""


class Role(Enum):
    SCALAR = "scalar"  # a column, an id, a cursor, a count, a PageInfo flag
    CONNECTION = "connection"  # a page of `entity`: a root connection or a to-many relation
    OBJECT = "object"  # one `entity`: a lookup, a to-one relation, an edge's node, a payload's
    ANY_NODE = "any node"  # `node(id:)`: any entity
    EDGES = "edges"  # a connection's edges
    PAGE_INFO = "page info"
    CREATED = "created"  # `createX`: its payload
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

    def target(self, entity: Entity, relation: Relation) -> Entity:
        target = self.entities.get(relation.target)
        if target is None:
            raise UnservableDescription(
                f"{entity.name}.{relation.name}: relation to {relation.target}, "
                "which no entity describes"
            )
        return target


def _check_field(entity: Entity, described: Field, entities: Mapping[str, Entity]) -> None:
    where = f"{entity.name}.{described.name}"
    if described.column.class_ is not entity.model:
        raise UnservableDescription(f"{where}: its column is not on {entity.table.name}")
    if described.kind is Kind.REFERENCE:
        if described.references not in entities:
            raise UnservableDescription(
                f"{where}: references {described.references}, which no entity describes"
            )
        if described.readable:
            raise UnservableDescription(
                f"{where}: a reference is read through its relation; make it readable=False"
            )
    nullable = bool(described.column.expression.nullable)
    if described.required == nullable and described.column.expression.server_default is None:
        wanted = "required=False" if nullable else "required=True"
        raise UnservableDescription(f"{where}: the column's nullability wants {wanted}")
    index = described.unique_index
    if index is not None and not any(i.name == index and i.unique for i in entity.table.indexes):
        raise UnservableDescription(
            f"{where}: unique_ignoring_case needs the model's unique index {index} "
            f"on lower({described.column.expression.name})"
        )


def _check_relation(entity: Entity, relation: Relation, target: Entity) -> None:
    where = f"{entity.name}.{relation.name}"
    if relation.local.class_ is not entity.model or relation.remote.class_ is not target.model:
        raise UnservableDescription(
            f"{where}: local must be on {entity.name}, remote on {target.name}"
        )
    if relation.cardinality is Cardinality.ONE:
        nullable = bool(relation.local.expression.nullable)
        if nullable != relation.optional:
            wanted = "optional=True" if nullable else "optional=False"
            raise UnservableDescription(
                f"{where}: {entity.table.name}.{relation.local.expression.name} "
                f"{'may' if nullable else 'may not'} be null; describe it {wanted}"
            )
    elif relation.optional:
        raise UnservableDescription(f"{where}: only a to-one relation is optional")


def _check_entity(entity: Entity, counted: frozenset[str]) -> None:
    if entity.table.name not in counted:
        raise UnservableDescription(
            f"{entity.name}.totalCount: table {entity.table.name} has no row count; add its "
            "column to RowCount and install counting (api.db.counting.install_counting)"
        )
    for key in entity.order_keys:
        if key.field.kind not in (Kind.TEXT, Kind.INT, Kind.TIMESTAMP):
            raise UnservableDescription(f"{entity.name}.{key.name}: cannot order by a reference")


def build_surface(entities: Mapping[str, Entity], counted: frozenset[str] | None = None) -> Surface:
    """The field table for `entities`; `UnservableDescription` for one it cannot serve.

    `counted` is the tables whose rows are counted (`row_counts`' columns by default).
    """
    if counted is None:
        counted = frozenset(c.name for c in RowCount.__table__.columns) - {"slot"}
    table = _Table(entities)
    for entity in entities.values():
        name = entity.name
        _check_entity(entity, counted)
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
            _check_field(entity, described, entities)
            if described.readable:
                scalar = GraphField(Role.SCALAR, entity, column=described)
                table.add(name, described.name, scalar, owner=name)
        for relation in entity.relations:
            target = table.target(entity, relation)
            _check_relation(entity, relation, target)
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


SURFACE = build_surface(ENTITIES)
