"""Per-request DataLoaders: each edge of a page costs one batched statement, not one per row.

One loader of rows by id per entity, and one of pages and one of counts per to-many relation.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from api.catalog import records
from api.catalog.describe import Entity, Relation
from api.catalog.entities import ENTITIES
from api.catalog.pagination import Page, Window
from api.catalog.rows import AnyRow
from api.graphql.sessions import RequestSession

PageKey = tuple[int, Window]
RelationKey = tuple[str, str]
"""(entity name, relation name)"""


@dataclass(frozen=True)
class Loaders:
    by_id: dict[str, DataLoader[int, AnyRow | None]]
    pages: dict[RelationKey, DataLoader[PageKey, Page]]
    counts: dict[RelationKey, DataLoader[int, int]]


def create_loaders(db: RequestSession) -> Loaders:
    def rows_by_id(entity: Entity) -> DataLoader[int, AnyRow | None]:
        async def load(ids: list[int]) -> list[AnyRow | None]:
            async with db.read() as session:
                rows = await records.by_id(session, entity, ids=ids)
            return [rows.get(key) for key in ids]

        return DataLoader(load_fn=load)

    def pages(relation: Relation) -> DataLoader[PageKey, Page]:
        async def load(keys: list[PageKey]) -> list[Page]:
            """One statement per distinct window: a page of N authors asks with one window."""
            by_window: dict[Window, list[int]] = defaultdict(list)
            for parent_id, window in keys:
                by_window[window].append(parent_id)
            found: dict[PageKey, Page] = {}
            async with db.read() as session:
                for window, parent_ids in by_window.items():
                    pages = await records.pages_by_parent(
                        session, relation, window=window, parent_ids=sorted(set(parent_ids))
                    )
                    found.update({(parent, window): page for parent, page in pages.items()})
            return [found[key] for key in keys]

        return DataLoader(load_fn=load)

    def counts(relation: Relation) -> DataLoader[int, int]:
        async def load(parent_ids: list[int]) -> Sequence[int]:
            async with db.read() as session:
                found = await records.counts_by_parent(session, relation, parent_ids=parent_ids)
            return [found[parent_id] for parent_id in parent_ids]

        return DataLoader(load_fn=load)

    to_many = [
        ((entity.name, relation.name), relation)
        for entity in ENTITIES.values()
        for relation in entity.to_many
    ]
    return Loaders(
        by_id={name: rows_by_id(entity) for name, entity in ENTITIES.items()},
        pages={key: pages(relation) for key, relation in to_many},
        counts={key: counts(relation) for key, relation in to_many},
    )
