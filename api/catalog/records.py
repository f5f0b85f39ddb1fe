"""Reading and writing any entity of the catalogue, from its description.

One set of functions serves every entity: what differs between authors and books (columns,
filters, orderings, relations) is in `api.catalog.entities`, not in code.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.catalog.counts import exact_row_count
from api.catalog.describe import Entity, Kind, Relation
from api.catalog.entities import ENTITIES
from api.catalog.pagination import Page, Window, fetch_pages
from api.catalog.problems import InvalidInput, Problem, ProblemCode
from api.catalog.rows import AnyRow


async def page(
    session: AsyncSession,
    entity: Entity,
    *,
    window: Window,
    where: Sequence[ColumnElement[bool]] = (),
) -> Page:
    pages = await fetch_pages(session, columns=entity.columns, window=window, filters=where)
    return pages[0]


async def pages_by_parent(
    session: AsyncSession, relation: Relation, *, window: Window, parent_ids: Sequence[int]
) -> dict[int, Page]:
    """One page of a to-many relation per parent, in one statement."""
    return await fetch_pages(
        session,
        columns=ENTITIES[relation.target].columns,
        window=window,
        parent=relation.remote,
        parent_ids=parent_ids,
    )


async def count(
    session: AsyncSession, entity: Entity, *, where: Sequence[ColumnElement[bool]] = ()
) -> int:
    """Rows matching `where`; the whole table's count comes from its row counts, not a scan."""
    if not where:
        return await session.scalar(select(exact_row_count(entity.model))) or 0
    total = await session.scalar(select(func.count()).select_from(entity.table).where(*where))
    return total or 0


async def counts_by_parent(
    session: AsyncSession, relation: Relation, *, parent_ids: Sequence[int]
) -> dict[int, int]:
    rows = await session.execute(
        select(relation.remote, func.count())
        .where(relation.remote.in_(parent_ids))
        .group_by(relation.remote)
    )
    counts = dict.fromkeys(parent_ids, 0)
    counts.update(dict(rows.all()))
    return counts


async def by_id(session: AsyncSession, entity: Entity, *, ids: Sequence[int]) -> dict[int, AnyRow]:
    rows = await session.execute(select(*entity.columns).where(entity.id_column.in_(ids)))
    return {row.id: row for row in rows}


def constraint_of(error: IntegrityError) -> str | None:
    """The name of the constraint (or unique index) whose violation `error` is."""
    cause = error.orig.__cause__ if error.orig is not None else None
    name = getattr(cause, "constraint_name", None)
    return name if isinstance(name, str) else None


def refused(entity: Entity, error: IntegrityError) -> Exception:
    """The problem a client can fix, named by the constraint that failed; else the error.

    A foreign key names the one reference that points nowhere; a unique index on
    `lower(column)` names the field whose value is taken.
    """
    constraint = constraint_of(error)
    for described in entity.fields:
        if described.unique_index is not None and described.unique_index == constraint:
            message = f"another {entity.label} has this {described.name}"
            return InvalidInput([Problem((described.name,), message, ProblemCode.TAKEN)])
    for foreign_key in entity.table.foreign_key_constraints:
        if foreign_key.name != constraint:
            continue
        for described in entity.fields:
            if described.kind is Kind.REFERENCE and described.key in foreign_key.column_keys:
                target = ENTITIES[described.references or ""].label
                message = f"no {target} has this id"
                return InvalidInput([Problem((described.name,), message, ProblemCode.NOT_FOUND)])
    return error


async def create_rows(
    session: AsyncSession, entity: Entity, *, values: Sequence[Mapping[str, Any]]
) -> Sequence[AnyRow]:
    """Insert rows (column key to value); a reference to a row that does not exist is NOT_FOUND.

    The foreign key is the existence check, so the common case costs one statement; a
    violation aborts the caller's transaction, which is rolled back as a whole.
    """
    statement = insert(entity.model).returning(*entity.columns, sort_by_parameter_order=True)
    try:
        return (await session.execute(statement, [dict(v) for v in values])).all()
    except IntegrityError as error:
        raise refused(entity, error) from None


async def update_row(
    session: AsyncSession, entity: Entity, *, key: int, changes: Mapping[str, Any]
) -> AnyRow | None:
    """Apply `changes` (column key to value); None when there is no such row."""
    if not changes:
        return (await by_id(session, entity, ids=[key])).get(key)
    statement = (
        update(entity.model)
        .where(entity.id_column == key)
        .values(dict(changes))
        .returning(*entity.columns)
    )
    try:
        return (await session.execute(statement)).one_or_none()
    except IntegrityError as error:
        raise refused(entity, error) from None


@dataclass(frozen=True)
class Deleted:
    row: AnyRow
    dependents: dict[str, list[int]] = field(default_factory=dict)
    """Ids deleted with the row, by the name of the to-many relation they were in."""


async def delete_row(
    session: AsyncSession, entity: Entity, *, key: int, cascade: Collection[str] = ()
) -> Deleted | None:
    """Delete a row, and its rows in the owned relations named in `cascade`; None when absent.

    Only relations the entity owns cascade (an author's books, never a publisher's: those
    belong to their authors). Rows left in any to-many relation keep the row: the foreign
    key decides, so a row added concurrently can be neither orphaned nor silently deleted.
    """
    dependents: dict[str, list[int]] = {}
    for relation in entity.owned:
        if relation.name in cascade:
            target = ENTITIES[relation.target]
            deleted = await session.scalars(
                delete(target.model).where(relation.remote == key).returning(target.id_column)
            )
            dependents[relation.name] = sorted(deleted)
    statement = delete(entity.model).where(entity.id_column == key).returning(*entity.columns)
    try:
        async with session.begin_nested():
            row = (await session.execute(statement)).one_or_none()
    except IntegrityError as error:
        problems = await _blocking_dependents(session, entity, key)
        raise (InvalidInput(problems) if problems else error) from None
    return None if row is None else Deleted(row, dependents)


async def _blocking_dependents(session: AsyncSession, entity: Entity, key: int) -> list[Problem]:
    problems = []
    for relation in entity.to_many:
        found = await session.scalar(select(func.count()).where(relation.remote == key))
        if found:
            remedy = f" or pass {relation.cascade_argument}: true" if relation.owns else ""
            problems.append(
                Problem(
                    ("id",),
                    f"the {entity.label} has {found} {ENTITIES[relation.target].label}(s); "
                    f"delete them first{remedy}",
                    relation.has_rows_code,
                )
            )
    return problems
