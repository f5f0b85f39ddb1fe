"""A throwaway two-word entity, `BookSeries`, and its `Volume`s: described, never migrated.

Their models live on a metadata of their own, so Alembic's check and the app never see them;
a test creates their tables inside a transaction it rolls back.
"""

from dataclasses import replace

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.catalog.describe import (
    Cardinality,
    Entity,
    Field,
    Kind,
    OrderKey,
    Relation,
    contains,
)


class Scratch(DeclarativeBase):
    pass


class BookSeriesRow(Scratch):
    __tablename__ = "book_series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class VolumeRow(Scratch):
    __tablename__ = "volumes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    series_id: Mapped[int] = mapped_column(ForeignKey("book_series.id"))


SERIES_NAME = Field("name", BookSeriesRow.name, Kind.TEXT, "", required=True)
BOOK_SERIES = Entity(
    name="BookSeries",
    plural="allBookSeries",
    model=BookSeriesRow,
    description="Books published as one series.",
    fields=(SERIES_NAME,),
    filters=(contains(SERIES_NAME),),
    order_keys=(OrderKey("NAME", SERIES_NAME),),
    relations=(
        Relation(
            "volumes",
            "Volume",
            Cardinality.MANY,
            BookSeriesRow.id,
            VolumeRow.series_id,
            "The series' volumes.",
            owns=True,
        ),
    ),
)
VOLUME = Entity(
    name="Volume",
    plural="volumes",
    model=VolumeRow,
    description="One volume of a series.",
    fields=(
        Field(
            "seriesId",
            VolumeRow.series_id,
            Kind.REFERENCE,
            "The series' global id.",
            required=True,
            readable=False,
            references="BookSeries",
        ),
        Field("title", VolumeRow.title, Kind.TEXT, "", required=True),
    ),
    filters=(),
    order_keys=(),
    relations=(
        Relation(
            "series",
            "BookSeries",
            Cardinality.ONE,
            VolumeRow.series_id,
            BookSeriesRow.id,
            "The series.",
        ),
    ),
)
SCRATCH_ENTITIES = {entity.name: entity for entity in (BOOK_SERIES, VOLUME)}
SCRATCH_COUNTED = frozenset({"book_series", "volumes"})


def with_relation(entity: Entity, relation: Relation) -> dict[str, Entity]:
    """The scratch entities with `entity` given one relation more."""
    changed = replace(entity, relations=(*entity.relations, relation))
    return {**SCRATCH_ENTITIES, entity.name: changed}
