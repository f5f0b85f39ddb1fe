"""Checks that every description can be served, run once when the catalogue is imported.

A relation to an entity nobody describes, a nullable key on a relation not described as
optional, a reference shown as a field, a table `row_counts` does not count, a case-insensitive
unique field without its index: each stops start-up with `UnservableDescription`, in one
line naming the entity and the field, instead of a KeyError on some later request.
"""

from collections.abc import Mapping

from api.catalog.describe import Cardinality, Entity, Field, Kind, Relation
from api.db.models import RowCount


class UnservableDescription(Exception):
    """A description the API cannot serve; the message names the entity and the field."""


def counted_tables() -> frozenset[str]:
    """The tables whose rows `row_counts` counts: one column each."""
    return frozenset(c.name for c in RowCount.__table__.columns if not c.primary_key)


def check_entities(entities: Mapping[str, Entity], counted: frozenset[str] | None = None) -> None:
    """`UnservableDescription` for the first description in `entities` that cannot be served."""
    counted = counted_tables() if counted is None else counted
    for entity in entities.values():
        _check_entity(entity, counted)
        names = ["id", "databaseId", *(f.name for f in entity.fields if f.readable)]
        names += [r.name for r in entity.relations]
        for name in names:
            if names.count(name) > 1:
                raise UnservableDescription(f"{entity.name}.{name}: named twice")
        for described in entity.fields:
            _check_field(entity, described, entities)
        for relation in entity.relations:
            target = entities.get(relation.target)
            if target is None:
                raise UnservableDescription(
                    f"{entity.name}.{relation.name}: relation to {relation.target}, "
                    "which no entity describes"
                )
            _check_relation(entity, relation, target)


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
