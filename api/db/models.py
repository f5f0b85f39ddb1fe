"""ORM models: the shape of the tables, which Alembic's migrations must match."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import UserDefinedType

NAME_MAX = 100
COUNTRY_MAX = 100
TITLE_MAX = 200

# Stable constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def trigram_index(name: str, column: str) -> Index:
    """A GIN trigram index, which serves `ILIKE '%fragment%'` (the `…Contains` filters)."""
    return Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})


class Author(Base):
    """Every ordering has an index in its own order (key, then id), walked either way."""

    __tablename__ = "authors"
    __table_args__ = (
        Index("ix_authors_name_id", "name", "id"),
        Index("ix_authors_created_at_id", "created_at", "id"),
        # `country` is compared ignoring case; the id serves the default order of its matches.
        Index("ix_authors_lower_country_id", text("lower(country)"), "id"),
        trigram_index("ix_authors_name_trgm", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    bio: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(String(COUNTRY_MAX))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # lazy="raise": under asyncio a lazy load is an error; the API loads edges via DataLoaders.
    books: Mapped[list["Book"]] = relationship(back_populates="author", lazy="raise")


class Publisher(Base):
    """A publisher's name is unique ignoring case: the unique index on lower(name) says so."""

    __tablename__ = "publishers"
    __table_args__ = (
        Index("ix_publishers_name_id", "name", "id"),
        Index("uq_publishers_lower_name", text("lower(name)"), unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    country: Mapped[str | None] = mapped_column(String(COUNTRY_MAX))


class Book(Base):
    __tablename__ = "books"
    __table_args__ = (
        Index("ix_books_title_id", "title", "id"),
        Index("ix_books_created_at_id", "created_at", "id"),
        # An author's books in the default order; also what the foreign key's checks use.
        Index("ix_books_author_id_id", "author_id", "id"),
        trigram_index("ix_books_title_trgm", "title"),
        # PUBLISHED_YEAR sorts a missing year last (api.catalog.entities): that key, then the id.
        Index("ix_books_published_year_order", text("coalesce(published_year, 2147483647)"), "id"),
        Index("ix_books_published_year", "published_year"),
        # A publisher's books in the default order, the publisherId filter, the foreign key.
        Index("ix_books_publisher_id_id", "publisher_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    published_year: Mapped[int | None] = mapped_column(Integer)
    publisher_id: Mapped[int | None] = mapped_column(ForeignKey("publishers.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    author: Mapped[Author] = relationship(back_populates="books", lazy="raise")


class RowCount(Base):
    """Exact row counts of the big tables, kept by statement-level triggers (see counts.py).

    One row per slot, one column per counted table: a writing transaction adds to the slot of
    its backend, so concurrent writers rarely share a row, and a transaction that writes both
    tables still locks a single row (no lock-order deadlock between the two counts).
    """

    __tablename__ = "row_counts"

    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    authors: Mapped[int] = mapped_column(BigInteger, server_default="0")
    books: Mapped[int] = mapped_column(BigInteger, server_default="0")
    publishers: Mapped[int] = mapped_column(BigInteger, server_default="0")


# The hard ceiling on one persisted document, kept by the table itself; the service's own limit
# (PERSISTED_DOCUMENTS_MAX_BYTES) may only be lower.
DOCUMENT_ID_MAX = 200
DOCUMENT_BODY_MAX_BYTES = 1024 * 1024
DOCUMENT_SOURCES = ("manifest", "apq")


class PersistedDocument(Base):
    """A GraphQL document stored under its id, shared by every replica (api/documents).

    Ids are canonical (`sha256:<hex>` for content hashes, `relay:<id>` for Relay's own ids):
    a stored id never changes its text, so any replica may cache it forever.
    """

    __tablename__ = "persisted_documents"
    __table_args__ = (
        CheckConstraint(f"octet_length(body) <= {DOCUMENT_BODY_MAX_BYTES}", name="body_size"),
        CheckConstraint(
            "source IN (" + ", ".join(f"'{source}'" for source in DOCUMENT_SOURCES) + ")",
            name="source",
        ),
    )

    id: Mapped[str] = mapped_column(String(DOCUMENT_ID_MAX), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


IDEMPOTENCY_CALLER_MAX = 255
IDEMPOTENCY_KEY_MAX = 255


class IdempotencyKey(Base):
    """A keyed write's response, stored in the write's own transaction (api/pipeline/idempotency).

    The caller is part of the key: two callers' keys never meet. Rows older than
    IDEMPOTENCY_RETENTION are deleted in small batches.
    """

    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(IDEMPOTENCY_CALLER_MAX), primary_key=True)
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


CHANGE_ENTITY_MAX = 40
CHANGE_KIND_MAX = 10


class Xid8(UserDefinedType[int]):
    """Postgres' 64-bit transaction id: which transaction wrote a change-log row."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


# Reflection (Alembic's comparison of models with migrations) reads the type back by name.
ischema_names["xid8"] = Xid8


class ChangeLog(Base):
    """Every committed change to a catalogue row, written by statement-level triggers in the
    writer's own transaction (api/db/change_log.py), read by the live service (api/live).

    `xid` orders delivery by commit, not by `id`: a change is new to a reader when its
    transaction is visible in the reader's snapshot and was not in the previous one. The
    filterable columns before and after the change decide which subscriptions see it.
    """

    __tablename__ = "change_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    xid: Mapped[int] = mapped_column(
        Xid8(), server_default=text("pg_current_xact_id()"), index=True
    )
    entity: Mapped[str] = mapped_column(String(CHANGE_ENTITY_MAX))
    row_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(CHANGE_KIND_MAX))
    old_values: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    new_values: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class ChangeLogHorizon(Base):
    """One row: the newest transaction id purged from the change log. A cursor that had not
    seen it may have missed a purged change, and is refused as CURSOR_EXPIRED."""

    __tablename__ = "change_log_horizon"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    purged: Mapped[int] = mapped_column(Xid8())
