"""The persisted-document store on the real Postgres: lookup, registration and its bounds."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.db.models import DOCUMENT_BODY_MAX_BYTES
from api.db.statements import statement_counter
from api.documents import (
    ConflictingDocument,
    DocumentLimits,
    DocumentRefused,
    DocumentTooLarge,
    HashMismatch,
    PersistedDocuments,
    StoreFull,
    UnstorableText,
    sha256_id,
)
from api.documents.cache import DocumentCache, entry_size
from api.documents.store import Document, count, lookup, register, register_all
from api.settings import Settings
from tests.documents import AUTHORS, BOOKS, NAMED

LIMITS = DocumentLimits()


@pytest.fixture
async def documents_engine(engine: AsyncEngine) -> AsyncEngine:
    """The test database's engine, with no document stored."""
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE persisted_documents"))
    return engine


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as connection:
        yield connection


async def stored(engine: AsyncEngine) -> dict[str, tuple[str, str]]:
    """id -> (source, body) for every stored document."""
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT id, source, body FROM persisted_documents"))
        return {row.id: (row.source, row.body) for row in rows}


async def test_registered_text_is_found_by_its_id(documents_engine: AsyncEngine) -> None:
    async with transaction(documents_engine) as connection:
        assert await register(connection, sha256_id(NAMED), NAMED, source="apq", limits=LIMITS)

    async with documents_engine.connect() as connection:
        assert await lookup(connection, sha256_id(NAMED)) == NAMED
        assert await lookup(connection, sha256_id(BOOKS)) is None
    assert await stored(documents_engine) == {sha256_id(NAMED): ("apq", NAMED)}


async def test_registering_again_changes_nothing(documents_engine: AsyncEngine) -> None:
    async with transaction(documents_engine) as connection:
        assert await register(connection, sha256_id(BOOKS), BOOKS, source="apq", limits=LIMITS)
    async with transaction(documents_engine) as connection:
        again = await register(
            connection, sha256_id(BOOKS), BOOKS, source="manifest", limits=LIMITS
        )

    assert again is False
    assert await stored(documents_engine) == {sha256_id(BOOKS): ("apq", BOOKS)}


async def test_an_id_never_changes_its_text(documents_engine: AsyncEngine) -> None:
    async with transaction(documents_engine) as connection:
        await register(connection, "relay:abc", BOOKS, source="manifest", limits=LIMITS)

    with pytest.raises(ConflictingDocument, match="relay:abc is stored already"):
        async with transaction(documents_engine) as connection:
            await register(connection, "relay:abc", AUTHORS, source="manifest", limits=LIMITS)
    assert await stored(documents_engine) == {"relay:abc": ("manifest", BOOKS)}


def test_every_refusal_reason_names_a_code_of_its_own() -> None:
    reasons: list[type[DocumentRefused]] = [DocumentRefused, *DocumentRefused.__subclasses__()]
    assert len({reason.code for reason in reasons}) == len(reasons) > 1
    with pytest.raises(TypeError, match="code"):
        type("Unnamed", (DocumentRefused,), {})


async def test_a_hash_that_is_not_the_texts_is_refused(documents_engine: AsyncEngine) -> None:
    with pytest.raises(HashMismatch, match="not the text's sha256") as refused:
        async with transaction(documents_engine) as connection:
            await register(connection, sha256_id(BOOKS), AUTHORS, source="apq", limits=LIMITS)

    assert refused.value.code == "PERSISTED_QUERY_HASH_MISMATCH"
    assert await stored(documents_engine) == {}


async def test_a_document_over_the_byte_limit_is_refused(documents_engine: AsyncEngine) -> None:
    limits = DocumentLimits(max_bytes=len(BOOKS.encode()) - 1)

    with pytest.raises(DocumentTooLarge, match=r"over the limit of \d+ \(PERSISTED_DOCUMENTS"):
        async with transaction(documents_engine) as connection:
            await register(connection, sha256_id(BOOKS), BOOKS, source="apq", limits=limits)
    async with transaction(documents_engine) as connection:
        fits = DocumentLimits(max_bytes=len(BOOKS.encode()))
        assert await register(connection, sha256_id(BOOKS), BOOKS, source="apq", limits=fits)


@pytest.mark.parametrize("body", ["", "  \n", "{ a }\x00", '{ a(b: "\ud800") }'])
async def test_text_postgres_cannot_store_is_refused(
    documents_engine: AsyncEngine, body: str
) -> None:
    with pytest.raises(UnstorableText):
        async with transaction(documents_engine) as connection:
            await register(connection, "relay:x", body, source="manifest", limits=LIMITS)
    assert await stored(documents_engine) == {}


async def test_apq_registers_at_most_the_configured_count(documents_engine: AsyncEngine) -> None:
    limits = DocumentLimits(max_count=2)
    async with transaction(documents_engine) as connection:
        await register_all(connection, [Document(sha256_id(NAMED), NAMED)], limits=limits)
        for body in (BOOKS, AUTHORS):
            assert await register(connection, sha256_id(body), body, source="apq", limits=limits)

    third = "{ authors(first: 3) { totalCount } }"
    with pytest.raises(StoreFull, match=r"2 documents are registered already") as refused:
        async with transaction(documents_engine) as connection:
            await register(connection, sha256_id(third), third, source="apq", limits=limits)
    assert refused.value.code == "PERSISTED_DOCUMENTS_FULL"

    async with transaction(documents_engine) as connection:  # known documents still pass
        assert not await register(connection, sha256_id(BOOKS), BOOKS, source="apq", limits=limits)
        # A manifest is the operator's: the count bounds only what APQ registers.
        loaded = await register_all(connection, [Document(sha256_id(third), third)], limits=limits)
        assert loaded.new == 1
        assert await count(connection, source="apq") == 2
        assert await count(connection) == 4


async def test_a_count_of_zero_turns_apq_registration_off(documents_engine: AsyncEngine) -> None:
    with pytest.raises(StoreFull, match=r"at run time is off \(PERSISTED_DOCUMENTS_MAX_COUNT=0\)"):
        async with transaction(documents_engine) as connection:
            await register(
                connection,
                sha256_id(BOOKS),
                BOOKS,
                source="apq",
                limits=DocumentLimits(max_count=0),
            )
    assert await stored(documents_engine) == {}


async def test_a_manifest_stores_what_is_new_and_counts_the_rest(
    documents_engine: AsyncEngine,
) -> None:
    first = [Document(sha256_id(BOOKS), BOOKS), Document("relay:a1", AUTHORS)]
    async with transaction(documents_engine) as connection:
        loaded = await register_all(connection, first, limits=LIMITS)
    assert (loaded.new, loaded.existing) == (2, 0)

    again = [*first, Document(sha256_id(NAMED), NAMED), Document(sha256_id(NAMED), NAMED)]
    async with transaction(documents_engine) as connection:
        loaded = await register_all(connection, again, limits=LIMITS)

    assert (loaded.new, loaded.existing) == (1, 2)
    assert {key: source for key, (source, _) in (await stored(documents_engine)).items()} == {
        sha256_id(BOOKS): "manifest",
        "relay:a1": "manifest",
        sha256_id(NAMED): "manifest",
    }


async def test_a_manifest_with_one_conflict_stores_nothing(documents_engine: AsyncEngine) -> None:
    async with transaction(documents_engine) as connection:
        await register_all(connection, [Document("relay:a1", AUTHORS)], limits=LIMITS)

    manifest = [Document(sha256_id(BOOKS), BOOKS), Document("relay:a1", NAMED)]
    with pytest.raises(ConflictingDocument, match="relay:a1 is stored already"):
        async with transaction(documents_engine) as connection:
            await register_all(connection, manifest, limits=LIMITS)

    assert set(await stored(documents_engine)) == {"relay:a1"}


async def test_a_manifest_naming_one_id_twice_is_refused(documents_engine: AsyncEngine) -> None:
    manifest = [Document("relay:a1", AUTHORS), Document("relay:a1", BOOKS)]
    with pytest.raises(ConflictingDocument, match="appears twice"):
        async with transaction(documents_engine) as connection:
            await register_all(connection, manifest, limits=LIMITS)
    assert await stored(documents_engine) == {}


async def test_a_large_manifest_is_stored_in_batches(documents_engine: AsyncEngine) -> None:
    texts = [f"query Q{n} {{ authors(first: {n % 50 + 1}) {{ totalCount }} }}" for n in range(2500)]
    manifest = [Document(sha256_id(body), body) for body in texts]
    async with transaction(documents_engine) as connection:
        with statement_counter() as statements:
            loaded = await register_all(connection, manifest, limits=LIMITS)

    assert (loaded.new, loaded.existing) == (2500, 0)
    assert statements.count == 6  # three reads of what is stored, three inserts of 1000 or less
    assert len(await stored(documents_engine)) == 2500


async def test_the_table_refuses_a_body_over_its_ceiling(documents_engine: AsyncEngine) -> None:
    body = "#" * DOCUMENT_BODY_MAX_BYTES + "\n{ __typename }"
    with pytest.raises(IntegrityError, match="ck_persisted_documents_body_size"):
        async with transaction(documents_engine) as connection:
            await connection.execute(
                text(
                    "INSERT INTO persisted_documents (id, body, source)"
                    " VALUES ('relay:x', :b, 'apq')"
                ),
                {"b": body},
            )


def test_the_setting_cannot_pass_the_tables_ceiling() -> None:
    limit = next(
        rule.le
        for rule in Settings.model_fields["persisted_documents_max_bytes"].metadata
        if hasattr(rule, "le")
    )
    assert limit == DOCUMENT_BODY_MAX_BYTES


# --- the cache in front of the store --------------------------------------------------------


async def test_a_cached_document_costs_no_statement(documents_engine: AsyncEngine) -> None:
    documents = PersistedDocuments(documents_engine, LIMITS)
    assert await documents.register(sha256_id(BOOKS), BOOKS)
    fresh = PersistedDocuments(documents_engine, LIMITS)  # another replica: empty cache

    with statement_counter() as statements:
        assert await fresh.lookup(sha256_id(BOOKS)) == BOOKS
        assert await fresh.lookup(sha256_id(BOOKS)) == BOOKS
        assert await documents.lookup(sha256_id(BOOKS)) == BOOKS  # cached when registered

    assert statements.count == 1


async def test_a_miss_is_asked_again(documents_engine: AsyncEngine) -> None:
    """Another replica may register the document meanwhile; a remembered miss would hide it."""
    documents = PersistedDocuments(documents_engine, LIMITS)
    other_replica = PersistedDocuments(documents_engine, LIMITS)

    with statement_counter() as statements:
        assert await documents.lookup(sha256_id(AUTHORS)) is None
        await other_replica.register(sha256_id(AUTHORS), AUTHORS)
        assert await documents.lookup(sha256_id(AUTHORS)) == AUTHORS

    assert statements.count == 3  # lookup, register (one insert), lookup


async def test_refused_registrations_are_not_cached(documents_engine: AsyncEngine) -> None:
    documents = PersistedDocuments(documents_engine, LIMITS)
    with pytest.raises(HashMismatch):
        await documents.register(sha256_id(BOOKS), AUTHORS)
    assert len(documents.cache) == 0
    assert await documents.lookup(sha256_id(BOOKS)) is None


def test_the_cache_stays_within_its_byte_budget() -> None:
    budget = 20_000
    cache = DocumentCache(budget)
    texts = [f"query Q{n} {{ a }}" + " " * (n * 37 % 3000) for n in range(200)]

    for n, body in enumerate(texts):
        cache.put(f"relay:{n}", body)
        assert cache.bytes_used <= budget

    kept = [n for n in range(200) if cache.get(f"relay:{n}") is not None]
    assert kept[-1:] == [199]  # the most recent stay
    assert 0 not in kept  # the oldest went first
    assert cache.bytes_used == sum(entry_size(texts[n]) for n in kept)
    assert cache.bytes_used > budget // 2  # the room is used, not given away


def test_a_document_larger_than_the_budget_is_not_cached() -> None:
    cache = DocumentCache(1_000)
    cache.put("relay:small", "{ a }")
    cache.put("relay:big", "{ a }" + " " * 2_000)
    assert cache.get("relay:big") is None
    assert cache.get("relay:small") == "{ a }"


def test_the_least_recently_used_leaves_first() -> None:
    body = "{ a }" + " " * 300
    cache = DocumentCache(entry_size(body) * 2)
    cache.put("relay:1", body)
    cache.put("relay:2", body)
    assert cache.get("relay:1") == body  # 1 is now the more recent
    cache.put("relay:3", body)
    assert cache.get("relay:2") is None
    assert cache.get("relay:1") == body
    assert cache.get("relay:3") == body
    assert len(cache) == 2
