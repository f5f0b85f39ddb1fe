"""Change subscriptions, through the live service (the transports have tests of their own):
events for every write path, filters, resume by cursor, commit order, two processes."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.app import create_app
from api.catalog.ids import decode_id
from api.db.counting import SLOTS
from api.live import service as live_service
from api.live.contract import Ended
from api.live.listen import APPLICATION
from api.live.log import WINDOW, current, purge
from api.live.service import LiveService
from api.pipeline.refusals import Refused
from api.settings import Settings
from tests.conftest import make_settings
from tests.graphql_client import GraphQLClient

BOOKS = """
subscription Books($filter: BookFilter, $after: String) {
  bookChanged(filter: $filter, after: $after) { cursor kind id node { title author { name } } }
}
"""
CREATE_AUTHOR = "mutation($name: String!) { createAuthor(input: {name: $name}) { author { id } } }"
CREATE_BOOK = """
mutation($title: String!, $author: ID!, $year: Int) {
  createBook(input: {title: $title, authorId: $author, publishedYear: $year}) { book { id } }
}
"""
UPDATE_BOOK = """
mutation($id: ID!, $title: String, $year: Int) {
  updateBook(input: {id: $id, title: $title, publishedYear: $year}) { book { id } }
}
"""
AUTH = {"api_token": "a-service-token-long-enough-for-the-rules-0123456789"}
DELETE_BOOK = "mutation($id: ID!) { deleteBook(input: {id: $id}) { book { id } } }"


class Served:
    def __init__(self, client: GraphQLClient, live: LiveService) -> None:
        self.client = client
        self.live = live

    async def author(self, name: str) -> str:
        data = await self.client.execute(CREATE_AUTHOR, {"name": name})
        return str(data["createAuthor"]["author"]["id"])

    async def book(self, title: str, author: str, year: int | None = None) -> str:
        data = await self.client.execute(
            CREATE_BOOK, {"title": title, "author": author, "year": year}
        )
        return str(data["createBook"]["book"]["id"])

    async def subscribe(self, **variables: Any) -> Any:
        return await self.live.open({"query": BOOKS, "variables": variables}, None)


async def serve(settings: Settings) -> AsyncIterator[Served]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Served(GraphQLClient(http), app.state.live)


@pytest.fixture
async def served(settings: Settings, empty_catalog: None) -> AsyncIterator[Served]:
    async for served in serve(settings):
        yield served


async def event(subscription: Any, patience: float = 10) -> dict[str, Any]:
    body = await asyncio.wait_for(subscription.next(), patience)
    assert body is not None, subscription.ended
    payload: dict[str, Any] = orjson.loads(body)
    assert "errors" not in payload, payload
    change: dict[str, Any] = payload["data"]["bookChanged"]
    return change


async def nothing_more(subscription: Any, wait: float = 0.5) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(subscription.next(), wait)


async def test_created_updated_deleted_in_order(served: Served) -> None:
    subscription = await served.subscribe()
    author = await served.author("Ursula K. Le Guin")
    book = await served.book("The Dispossessed", author)
    created = await event(subscription)
    await served.client.execute(UPDATE_BOOK, {"id": book, "title": "The Dispossessed!"})
    updated = await event(subscription)
    await served.client.execute(DELETE_BOOK, {"id": book})
    deleted = await event(subscription)
    assert (created["kind"], created["id"]) == ("CREATED", book)
    assert created["node"] == {"title": "The Dispossessed", "author": {"name": "Ursula K. Le Guin"}}
    assert (updated["kind"], updated["node"]["title"]) == ("UPDATED", "The Dispossessed!")
    assert deleted == {**deleted, "kind": "DELETED", "id": book, "node": None}
    assert len({created["cursor"], updated["cursor"], deleted["cursor"]}) == 3
    await nothing_more(subscription)


async def test_a_filter_sees_rows_move_in_and_out(served: Served) -> None:
    author = await served.author("Octavia E. Butler")
    other = await served.author("Someone Else")
    subscription = await served.subscribe(filter={"authorId": author, "publishedYearFrom": 1990})
    early = await served.book("Kindred", author, 1979)
    await served.book("Not hers", other, 1995)
    # Each write waits for its event: `node` is the row as it is when the event is sent.
    await served.client.execute(UPDATE_BOOK, {"id": early, "year": 1993})  # moves in
    moved_in = await event(subscription)
    await served.client.execute(UPDATE_BOOK, {"id": early, "title": "Parable"})  # stays in
    stayed = await event(subscription)
    await served.client.execute(UPDATE_BOOK, {"id": early, "year": 1980})  # moves out
    moved_out = await event(subscription)
    assert (moved_in["kind"], moved_in["id"], moved_in["node"]["title"]) == (
        "CREATED",
        early,
        "Kindred",
    )
    assert (stayed["kind"], stayed["node"]["title"]) == ("UPDATED", "Parable")
    assert (moved_out["kind"], moved_out["node"]) == ("DELETED", None)
    await nothing_more(subscription)


async def test_a_contains_filter_means_what_the_list_means(served: Served) -> None:
    author = await served.author("Iain M. Banks")
    subscription = await served.subscribe(filter={"titleContains": "PHLEBAS"})
    await served.book("Consider Phlebas", author)
    await served.book("Use of Weapons", author)
    listed = await served.client.execute(
        '{ books(filter: {titleContains: "PHLEBAS"}) { edges { node { id } } } }'
    )
    (only,) = listed["books"]["edges"]
    change = await event(subscription)
    assert change["id"] == only["node"]["id"]
    await nothing_more(subscription)


async def test_resuming_after_a_cursor_delivers_what_was_missed_once(served: Served) -> None:
    author = await served.author("N. K. Jemisin")
    first = await served.subscribe()
    await served.book("The Fifth Season", author)
    seen = await event(first)
    await first.close()
    missed = [await served.book(f"Missed {n}", author) for n in range(3)]
    resumed = await served.subscribe(after=seen["cursor"])
    live = await served.book("Live one", author)
    ids = [(await event(resumed))["id"] for _ in range(4)]
    assert ids == [*missed, live]
    await nothing_more(resumed)


async def test_resuming_from_each_cursor_continues_exactly_after_it(served: Served) -> None:
    author = await served.author("Ted Chiang")
    subscription = await served.subscribe()
    books = [await served.book(f"Story {n}", author) for n in range(4)]
    events = [await event(subscription) for _ in books]
    for index, seen in enumerate(events):
        resumed = await served.subscribe(after=seen["cursor"])
        rest = [(await event(resumed))["id"] for _ in books[index + 1 :]]
        assert rest == books[index + 1 :]
        await nothing_more(resumed, 0.2)
        await resumed.close()


async def test_a_bad_cursor_and_a_short_pattern_are_refused_when_opening(served: Served) -> None:
    with pytest.raises(Refused) as bad:
        await served.subscribe(after="not-a-cursor")
    assert bad.value.code.value == "BAD_USER_INPUT"
    with pytest.raises(Refused) as short:
        await served.subscribe(filter={"titleContains": "ab"})
    (error,) = short.value.errors
    assert error["extensions"] == {"code": "PATTERN_TOO_SHORT"}


async def test_a_query_is_not_a_subscription(served: Served) -> None:
    with pytest.raises(Refused) as refused:
        await served.live.open({"query": "{ books { totalCount } }"}, None)
    assert "only subscriptions" in refused.value.message


async def slot(connection: AsyncConnection) -> int:
    """The row_counts slot the connection's writes add to (api.db.counting)."""
    result = await connection.execute(text(f"SELECT pg_backend_pid() % {SLOTS}"))
    await connection.rollback()
    return int(result.scalar_one())


async def test_out_of_order_commits_are_not_skipped(served: Served, engine: AsyncEngine) -> None:
    """T1 takes its log id first and commits last; T2 commits in between. A client that
    resumes from T2's event must still get T1's."""
    author_id = decode_id(
        await served.author("Kim Stanley Robinson"), type_name="Author", field=("id",)
    )
    subscription = await served.subscribe()
    async with AsyncExitStack() as connections:
        first = await connections.enter_async_context(engine.connect())
        taken = await slot(first)
        while True:  # a connection on another count slot: on the same, T2 would wait for T1
            second = await connections.enter_async_context(engine.connect())
            if await slot(second) != taken:
                break
        one = await first.begin()
        await first.execute(
            text("INSERT INTO books (title, author_id) VALUES ('Taken first', :a)"),
            {"a": author_id},
        )
        async with second.begin():
            await second.execute(
                text("INSERT INTO books (title, author_id) VALUES ('Committed first', :a)"),
                {"a": author_id},
            )
        early = await event(subscription)
        assert early["node"]["title"] == "Committed first"
        await one.commit()
    late = await event(subscription)
    assert late["node"]["title"] == "Taken first"
    async with engine.connect() as connection:
        order = await connection.execute(
            text(
                "SELECT b.title FROM change_log c JOIN books b ON b.id = c.row_id "
                "WHERE c.entity = 'Book' ORDER BY c.id"
            )
        )
    assert order.scalars().all() == ["Taken first", "Committed first"]  # the log's own order
    # Resuming from the event of the transaction that committed first still gets the other.
    resumed = await served.subscribe(after=early["cursor"])
    again = await event(resumed)
    assert again["id"] == late["id"]
    await nothing_more(resumed)


SEED = """
mutation($input: SeedCatalogInput!) { seedCatalog(input: $input) { authors { id } } }
"""
AUTHORS = """
subscription($filter: AuthorFilter) { authorChanged(filter: $filter) { kind id node { name } } }
"""


async def test_every_write_path_is_seen(served: Served) -> None:
    """The planner's create, the resolvers' update and delete, and seedCatalog's bulk path."""
    books = await served.subscribe()
    authors = await served.live.open({"query": AUTHORS}, None)
    seeded = await served.client.execute(
        SEED,
        {
            "input": {
                "authors": [
                    {"name": "Seeded One", "books": [{"title": "S1"}, {"title": "S2"}]},
                    {"name": "Seeded Two", "books": [{"title": "S3"}]},
                ]
            }
        },
    )
    author_ids = [a["id"] for a in seeded["seedCatalog"]["authors"]]
    seen_authors = [orjson.loads(await authors.next() or b"") for _ in author_ids]
    assert [a["data"]["authorChanged"]["id"] for a in seen_authors] == author_ids
    titles = sorted([(await event(books))["node"]["title"] for _ in range(3)])
    assert titles == ["S1", "S2", "S3"]


async def test_fan_out_renders_once_per_batch_and_selection(served: Served) -> None:
    """Fifty subscribers, each on its own author: one write per author, read in one window,
    rendered by one query; no database connection per subscriber."""
    authors = [await served.author(f"Author {n}") for n in range(50)]
    subscriptions = [await served.subscribe(filter={"authorId": a}) for a in authors]
    renders, reads = served.live.renders, served.live.hub.reads
    await served.client.execute(
        SEED,
        {"input": {"authors": [{"name": f"Other {n}"} for n in range(3)]}},
    )  # a write no subscriber wants: read, not rendered
    async with served.live.hub.lock:  # the next wake-up reads both writes together
        for index, author in enumerate(authors):
            await served.book(f"Book {index}", author)
    for index, subscription in enumerate(subscriptions):
        change = await event(subscription)
        assert change["node"] == {"title": f"Book {index}", "author": {"name": f"Author {index}"}}
    assert served.live.renders - renders == 1
    assert served.live.hub.reads - reads <= 5  # a few wake-ups, not one per subscriber


async def test_connections_do_not_grow_with_subscribers(
    served: Served, engine: AsyncEngine
) -> None:
    count = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
    async with engine.connect() as connection:
        await served.subscribe()
        before = (await connection.execute(count)).scalar_one()
        many = [await served.subscribe() for _ in range(200)]
        after = (await connection.execute(count)).scalar_one()
    assert after <= before
    assert len(served.live.hub) >= 201
    for subscription in many:
        await subscription.close()
    assert len(served.live.hub) == 1


async def test_a_slow_consumer_is_ended_and_resumes_by_cursor(database_url: str) -> None:
    async for served in serve(make_settings(database_url, live_queue_size=2)):
        author = await served.author("Gene Wolfe")
        subscription = await served.subscribe()
        await served.book("First", author)
        seen = await event(subscription)
        books = [await served.book(f"Book {n}", author) for n in range(4)]
        for _ in range(50):  # until the hub has offered it more than its queue holds
            if subscription.ended is not None:
                break
            await asyncio.sleep(0.05)
        assert subscription.ended is Ended.SLOW_CONSUMER
        assert await subscription.next() is None
        resumed = await served.subscribe(after=seen["cursor"])
        assert [(await event(resumed))["id"] for _ in books] == books


async def test_shutdown_ends_every_subscription(served: Served) -> None:
    subscriptions = [await served.subscribe() for _ in range(3)]
    await served.live.shutdown()
    for subscription in subscriptions:
        assert await subscription.next() is None
        assert subscription.ended is Ended.SHUTDOWN
    assert len(served.live.hub) == 0


async def test_a_lost_listen_connection_polls_then_listens_again(
    served: Served, engine: AsyncEngine
) -> None:
    hub = served.live.hub
    for _ in range(100):
        if hub.listening:
            break
        await asyncio.sleep(0.05)
    assert hub.listening
    subscription = await served.subscribe()
    author = await served.author("Connie Willis")
    async with engine.connect() as connection:
        killed = await connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid = :pid AND application_name = :name"
            ),
            {"pid": hub.listen_pid, "name": APPLICATION},
        )
        assert killed.scalars().all() == [True]
    await served.book("Written while it was down", author)
    assert (await event(subscription))["node"]["title"] == "Written while it was down"
    for _ in range(100):
        if hub.listening:
            break
        await asyncio.sleep(0.05)
    assert hub.listening  # back, after its backoff
    await served.book("Written after", author)
    assert (await event(subscription))["node"]["title"] == "Written after"


async def test_a_write_on_one_process_reaches_subscribers_on_another(
    settings: Settings, empty_catalog: None
) -> None:
    async for reader in serve(settings):
        async for writer in serve(settings):
            subscription = await reader.subscribe()
            author = await writer.author("Becky Chambers")
            book = await writer.book("A Psalm for the Wild-Built", author)
            assert (await event(subscription))["id"] == book


async def test_a_cursor_older_than_retention_is_refused(
    served: Served, engine: AsyncEngine
) -> None:
    author = await served.author("Jo Walton")
    subscription = await served.subscribe()
    await served.book("Among Others", author)
    old = await event(subscription)
    await served.book("Lifelode", author)
    await event(subscription)
    async with served.live._borrow() as connection:
        assert await purge(connection, 0, 1000) == 3
    with pytest.raises(Refused) as refused:
        await served.subscribe(after=old["cursor"])
    assert refused.value.code.value == "CURSOR_EXPIRED"
    await served.book("After the purge", author)
    latest = await event(subscription)
    resumed = await served.subscribe(after=latest["cursor"])  # newer than what was purged
    await served.book("Still followed", author)
    assert (await event(resumed))["node"]["title"] == "Still followed"


async def test_subscriptions_pass_the_same_cost_and_auth_checks(
    database_url: str, served: Served
) -> None:
    costly = """subscription { bookChanged { node { author { books(first: 100) {
        edges { node { author { books(first: 100) { edges { node { title } } } } } } } } } } }"""
    with pytest.raises(Refused) as refused:
        await served.live.open({"query": costly}, None)
    assert refused.value.code.value == "QUERY_TOO_COSTLY"
    async for private in serve(make_settings(database_url, reads_require_auth=True, **AUTH)):
        with pytest.raises(Refused) as anonymous:
            await private.live.open({"query": BOOKS}, None)
        assert anonymous.value.code.value == "UNAUTHENTICATED"


async def test_an_event_is_shaped_by_the_selection(served: Served) -> None:
    """Aliases, fragments, inline fragments, @include, __typename and two node selections:
    the event is what GraphQL's own execution of that selection would give."""
    document = """
    subscription Shaped($withAuthor: Boolean = true, $skipKind: Boolean!) {
      change: bookChanged {
        __typename
        what: kind @skip(if: $skipKind)
        ...Ids
        ... on BookChange { book: node { title ...Author @include(if: $withAuthor) } }
        plain: node { __typename t: title }
      }
    }
    fragment Ids on BookChange { id }
    fragment Author on Book { author { name } }
    """
    subscription = await served.live.open(
        {"query": document, "variables": {"skipKind": False}}, None
    )
    author = await served.author("Ann Leckie")
    book = await served.book("Ancillary Justice", author)
    body = await asyncio.wait_for(subscription.next(), 10)
    assert orjson.loads(body or b"") == {
        "data": {
            "change": {
                "__typename": "BookChange",
                "what": "CREATED",
                "id": book,
                "book": {"title": "Ancillary Justice", "author": {"name": "Ann Leckie"}},
                "plain": {"__typename": "Book", "t": "Ancillary Justice"},
            }
        }
    }


async def test_metrics_count_subscriptions_and_renders(served: Served) -> None:
    await served.subscribe()
    author = await served.author("Martha Wells")
    subscription = await served.subscribe()
    await served.book("All Systems Red", author)
    await event(subscription)
    metrics = (await served.client.http.get("/metrics")).text
    assert "\nlive_subscriptions 2.0" in metrics
    assert "\nlive_subscriptions_opened 2.0" in metrics
    assert "\nlive_renders 1.0" in metrics
    with pytest.raises(Refused):
        await served.subscribe(after="not-a-cursor")
    metrics = (await served.client.http.get("/metrics")).text
    assert 'live_subscriptions_refused_total{code="BAD_USER_INPUT"} 1.0' in metrics


async def test_subscriptions_differing_only_by_filter_share_their_shape(served: Served) -> None:
    first = await served.subscribe(filter={"titleContains": "abc"})
    second = await served.subscribe(filter={"titleContains": "xyz"})
    assert first.shape is second.shape


async def test_many_subscriptions_are_moved_out_of_the_collectors_way(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_service, "SETTLE_EVERY", 10)
    gc.unfreeze()
    frozen = gc.get_freeze_count()
    for _ in range(9):
        await served.subscribe()
    assert gc.get_freeze_count() == frozen
    await served.subscribe()
    assert gc.get_freeze_count() > frozen


async def test_a_wake_up_reads_only_what_is_new_however_long_the_log(
    served: Served, engine: AsyncEngine
) -> None:
    """Ordered by id with a LIMIT, the window would walk the primary key from the oldest
    change and filter all of them: it goes through the xid index instead."""
    author_id = decode_id(await served.author("Long Log"), type_name="Author", field=("id",))
    for _ in range(10):  # ten transactions: ten xids in the log's statistics
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO books (title, author_id) "
                    "SELECT 'old ' || g, :a FROM generate_series(1, 10000) g"
                ),
                {"a": author_id},
            )
    async with served.live._borrow() as connection:
        seen = await current(connection)
        await connection.execute(
            f"INSERT INTO books (title, author_id) VALUES ('new', {author_id})"
        )
        await connection.execute("SET plan_cache_mode = force_custom_plan")
        plan = await connection.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {WINDOW}", str(seen), None, 0, 1000, ["Book"]
        )
        await connection.execute("RESET plan_cache_mode")
    scans = list(scans_of(orjson.loads(plan)[0]["Plan"]))
    read = sum(s.get("Actual Rows", 0) + s.get("Rows Removed by Filter", 0) for s in scans)
    assert read < 100, scans


def scans_of(node: dict[str, Any]) -> Any:
    if node["Node Type"].endswith("Scan") and node.get("Relation Name") == "change_log":
        yield node
    for child in node.get("Plans", ()):
        yield from scans_of(child)
