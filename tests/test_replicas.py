"""Read replicas: queries read from a replica, writes and their payloads from the primary, and a
writer's consistency token keeps it from reading a replica that has not replayed its write.

The slow tests run against a real streaming replica (`tests.streaming_replica`) that replays
each commit APPLY_DELAY late, so "not replayed yet" lasts long enough to be seen.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.pool import QueuePool
from starlette.applications import Starlette

from api.app import create_app
from api.db.migrations import upgrade_to_head
from api.db.positions import PrimaryPositions, format_lsn, parse_lsn
from api.db.replicas import ReadRouter, Replica
from api.pipeline.consistency import Consistency
from api.settings import Settings
from tests.conftest import make_settings
from tests.graphql_client import GraphQLClient
from tests.streaming_replica import Cluster, primary_and_replica

APPLY_DELAY_SECONDS = 4
CATCH_UP_ATTEMPTS = 300  # readings, 0.1 s apart, before a replica counts as stuck
CREATE = (
    "mutation Create($input: CreateAuthorInput!) { createAuthor(input: $input) "
    "{ author { id name } userErrors { message } } }"
)
UPDATE = (
    "mutation Update($input: UpdateAuthorInput!) { updateAuthor(input: $input) "
    "{ author { id name } userErrors { message } } }"
)
AUTHOR = "query One($id: ID!) { author(id: $id) { name } }"


# What needs no database: positions, tokens, settings.


def test_lsn_text_round_trips() -> None:
    assert parse_lsn("16/B374D848") == 0x16_B374D848
    assert format_lsn(0x16_B374D848) == "16/B374D848"
    assert parse_lsn(format_lsn(2**64 - 1)) == 2**64 - 1
    for garbage in ("", "0", "/1", "1/", "x/1", "123456789/0", "1/2/3", "-1/0", "+1/0", "1_0/0"):
        assert parse_lsn(garbage) is None, garbage


def test_token_is_read_from_the_header_before_the_cookie() -> None:
    both = {b"x-consistency-token": b"0/20", b"cookie": b"a=b; X-Consistency-Token=0/10"}
    assert Consistency.of_request(both).after == 0x20
    cookie_only = {b"cookie": b"a=b; X-Consistency-Token=0/10"}
    assert Consistency.of_request(cookie_only).after == 0x10
    assert Consistency.of_request({b"x-consistency-token": b"not a position"}).after is None
    assert Consistency.of_request({}).after is None


def test_a_write_sets_the_token_header_and_a_server_only_cookie() -> None:
    consistency = Consistency(after=0x50)
    assert consistency.response_headers() == {}  # reads alone hand out no token
    consistency.wrote(0x40)
    consistency.wrote(0x30)  # a later statement of the batch never moves the token back
    headers = consistency.response_headers()
    assert headers["X-Consistency-Token"] == "0/40"
    attributes = [a.strip() for a in headers["Set-Cookie"].split(";")]
    assert attributes[0] == "X-Consistency-Token=0/40"
    assert {"HttpOnly", "SameSite=Lax", "Path=/graphql"} <= set(attributes)
    assert consistency.after == 0x50  # what reads must see: the newer of the two


def test_lag_is_the_age_of_the_oldest_primary_position_not_replayed() -> None:
    positions = PrimaryPositions()
    assert positions.lag(100, now=5.0) is None  # the primary not read yet: unknown
    positions.note(1.0, 100)
    positions.note(2.0, 150)
    positions.note(3.0, 150)
    assert positions.lag(100, now=4.0) == (2.0, 50)  # missing what was there at 2.0
    assert positions.lag(150, now=4.0) == (0.0, 0)  # caught up, however old the writes
    positions.forget_before(150)
    assert positions.lag(100, now=4.0) == (1.0, 50)  # an underestimate once forgotten


def test_read_urls_are_comma_separated_and_each_parsed() -> None:
    settings = Settings(
        _env_file=None,
        database_url="postgresql://u:p@primary/db",
        database_read_urls=(
            " postgresql://u:p@ep-cool-1-pooler.us-east-2.aws.neon.tech/db?sslmode=require,"
            "postgresql://u:p@replica-2:6000/db "
        ),
    )
    first, second = settings.read_databases
    assert first.pooled
    assert first.connect_args["ssl"] == "require"
    assert not second.pooled
    assert second.url.port == 6000
    with pytest.raises(ValueError, match=r"DATABASE_READ_URLS \(URL 2\) is not a postgres URL"):
        Settings(
            _env_file=None,
            database_url="postgresql://u:p@primary/db",
            database_read_urls="postgresql://u:p@r/db,mysql://r/db",
        )


@pytest.mark.parametrize("planned", [True, False], ids=["planned", "resolved"])
async def test_without_replicas_a_write_hands_out_no_token(
    client: GraphQLClient, resolver_client: GraphQLClient, planned: bool
) -> None:
    response = await (client if planned else resolver_client).post(
        CREATE, {"input": {"name": f"Ursula {uuid4().hex[:8]}"}}
    )
    assert response.json()["data"]["createAuthor"]["userErrors"] == []
    assert "x-consistency-token" not in response.headers
    assert "set-cookie" not in response.headers


# A real streaming replica, APPLY_DELAY late.


@dataclass
class Served:
    """The app over a primary and its replica, with clients that keep cookies or not."""

    app: Starlette
    manager: LifespanManager
    planned: bool

    @property
    def router(self) -> ReadRouter:
        router: ReadRouter = self.app.state.reads
        return router

    @property
    def replica(self) -> Replica:
        (replica,) = self.router.replicas
        return replica

    def client(self) -> GraphQLClient:
        """A new client: a browser of its own, with an empty cookie jar."""
        transport = httpx.ASGITransport(app=self.manager.app)
        return GraphQLClient(httpx.AsyncClient(transport=transport, base_url="http://testserver"))

    async def until(self, ready: Any) -> None:
        """Read positions until `ready(replica)` holds (bounded by readings, not by time)."""
        for _ in range(CATCH_UP_ATTEMPTS):
            await self.router.refresh()
            if ready(self.replica):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the replica never got there: {vars(self.replica)}")

    async def usable(self) -> None:
        await self.until(lambda r: r.usable(time.monotonic()))

    def replica_connections(self) -> tuple[int, int]:
        """Connections the replica's planner pool and its ORM pool have opened."""
        orm = self.replica.engine.sync_engine.pool
        assert isinstance(orm, QueuePool)
        return self.replica.endpoint.pool.pool.get_size(), orm.checkedin()


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    with primary_and_replica(f"{APPLY_DELAY_SECONDS}s") as servers:
        yield servers


@pytest.fixture(scope="module")
async def urls(pair: tuple[Cluster, Cluster]) -> tuple[str, str]:
    """The catalogue migrated on the primary, and replayed by the replica."""
    primary, replica = pair
    connection = await asyncpg.connect(primary.url("postgres"))
    try:
        await connection.execute("CREATE DATABASE catalog")
    finally:
        await connection.close()
    primary_url, replica_url = primary.url("catalog"), replica.url("catalog")
    await asyncio.to_thread(
        upgrade_to_head, Settings(database_url=primary_url).migration_database, quiet=True
    )
    written = await position(primary_url, "pg_current_wal_insert_lsn()")
    for _ in range(CATCH_UP_ATTEMPTS):
        if await position(replica.url("postgres"), "pg_last_wal_replay_lsn()") >= written:
            return primary_url, replica_url
        await asyncio.sleep(0.1)
    raise AssertionError("the replica never replayed the migrations")


async def position(url: str, function: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        text = await connection.fetchval(f"SELECT {function}::text")
    finally:
        await connection.close()
    found = parse_lsn(text)
    assert found is not None, text
    return found


@asynccontextmanager
async def serve(urls: tuple[str, str], *, planned: bool, **overrides: Any) -> AsyncIterator[Served]:
    primary_url, replica_url = urls
    settings = make_settings(
        primary_url,
        **{
            "database_read_urls": replica_url,
            "database_read_max_lag": 60.0,  # it lags APPLY_DELAY on purpose: still used
            "query_planner": planned,
            "batch_max_operations": 2,
            **overrides,
        },
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        yield Served(app, manager, planned=planned)


@pytest.fixture(params=[True, False], ids=["planned", "resolved"])
async def served(request: pytest.FixtureRequest, urls: tuple[str, str]) -> AsyncIterator[Served]:
    async with serve(urls, planned=request.param) as served:
        yield served


def cookie_attributes(response: httpx.Response) -> set[str]:
    return {a.strip() for a in response.headers["set-cookie"].split(";")}


async def create_author(client: GraphQLClient, name: str) -> tuple[str, str]:
    """The new author's id and the consistency token its response carried."""
    response = await client.post(CREATE, {"input": {"name": name}})
    payload = response.json()["data"]["createAuthor"]
    assert payload == {"author": {"id": payload["author"]["id"], "name": name}, "userErrors": []}
    token = response.headers["x-consistency-token"]
    assert f"X-Consistency-Token={token}" in cookie_attributes(response)
    assert {"HttpOnly", "SameSite=Lax", "Path=/graphql"} <= cookie_attributes(response)
    return payload["author"]["id"], token


async def name_of(client: GraphQLClient, id: str, token: str | None = None) -> str | None:
    headers = {"X-Consistency-Token": token} if token else {}
    response = await client.http.post(
        "/graphql", json={"query": AUTHOR, "variables": {"id": id}}, headers=headers
    )
    payload = response.json()
    assert "errors" not in payload, payload
    author = payload["data"]["author"]
    return None if author is None else str(author["name"])


def metric(text: str, name: str, replica: str) -> float:
    prefix = f'{name}{{replica="{replica}"}} '
    (line,) = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


@pytest.mark.slow
async def test_a_writer_reads_its_write_at_once_and_others_once_replayed(served: Served) -> None:
    await served.usable()
    writer, anonymous = served.client(), served.client()
    name = f"Octavia {uuid4().hex[:8]}"
    author, token = await create_author(writer, name)

    # The payload of a write that reads it back comes from the primary: the replica has
    # not even replayed the author yet.
    response = await writer.post(UPDATE, {"input": {"id": author, "name": f"{name} E. Butler"}})
    payload = response.json()["data"]["updateAuthor"]
    assert payload == {"author": {"id": author, "name": f"{name} E. Butler"}, "userErrors": []}
    token = response.headers["x-consistency-token"]
    position = parse_lsn(token)
    assert position is not None

    # Nobody's token: the replica answers, and it replays commits APPLY_DELAY late.
    assert served.replica_connections() == (0, 0)
    assert await name_of(anonymous, author) is None
    assert not served.replica.has_replayed(position)
    planner, orm = served.replica_connections()  # the executor asked read from the replica
    assert (planner > 0, orm > 0) == (served.planned, not served.planned)

    # Reads woke the background polling: positions are read again with no one asking.
    last_reading = served.replica.read_at
    for _ in range(CATCH_UP_ATTEMPTS):
        if served.replica.read_at != last_reading:
            break
        await asyncio.sleep(0.05)
    assert served.replica.read_at != last_reading

    # The writer's cookie, or anyone's echoed header: one fresh reading, then the primary.
    readings = served.router.extra_readings
    assert writer.http.cookies.get("X-Consistency-Token") == token
    assert await name_of(writer, author) == f"{name} E. Butler"
    assert await name_of(anonymous, author, token=token) == f"{name} E. Butler"
    assert served.router.extra_readings == readings + 2
    assert await name_of(anonymous, author) is None  # the replica, still behind

    # A batch's read sees the write made earlier in the same batch.
    batch = [
        {"query": UPDATE, "variables": {"input": {"id": author, "name": name}}},
        {"query": AUTHOR, "variables": {"id": author}},
    ]
    response = await anonymous.http.post("/graphql", json=batch)
    assert response.json()[1] == {"data": {"author": {"name": name}}}
    token = response.headers["x-consistency-token"]
    position = parse_lsn(token)
    assert position is not None
    anonymous = served.client()  # without the batch's cookie

    metrics = (await anonymous.http.get("/metrics")).text
    assert metric(metrics, "db_replica_lag_bytes", served.replica.name) > 0
    assert metric(metrics, "db_replica_usable", served.replica.name) == 1

    # Once replayed, the replica serves everyone, the token with no fresh reading.
    await served.until(lambda r: r.has_replayed(position))
    readings = served.router.extra_readings
    assert await name_of(anonymous, author) == name
    assert await name_of(writer, author) == name
    assert served.router.extra_readings == readings


@pytest.mark.slow
async def test_a_replica_past_the_lag_limit_is_skipped_until_it_catches_up(
    urls: tuple[str, str],
) -> None:
    async with serve(urls, planned=True, database_read_max_lag=1.0) as served:
        await served.usable()
        anonymous = served.client()
        name = f"Ted {uuid4().hex[:8]}"
        author, token = await create_author(served.client(), name)
        position = parse_lsn(token)
        assert position is not None
        await served.until(lambda r: (r.lag_seconds or 0.0) > 1.0)
        assert not served.replica.has_replayed(position)
        assert await name_of(anonymous, author) == name  # the primary: the replica lags
        metrics = (await anonymous.http.get("/metrics")).text
        assert metric(metrics, "db_replica_usable", served.replica.name) == 0
        assert metric(metrics, "db_replica_lag_seconds", served.replica.name) > 1.0
        await served.until(lambda r: r.has_replayed(position))
        await served.usable()
        assert served.replica_connections()[0] == 0  # no read went to it while it lagged
        assert await name_of(anonymous, author) == name
        assert served.replica_connections()[0] > 0  # caught up, it serves reads again


@pytest.mark.slow
async def test_a_stopped_replica_sends_reads_to_the_primary(
    served: Served, pair: tuple[Cluster, Cluster]
) -> None:
    _, replica = pair
    await served.usable()
    writer, anonymous = served.client(), served.client()
    name = f"Samuel {uuid4().hex[:8]}"
    author, _ = await create_author(writer, name)
    assert await name_of(anonymous, author) is None  # served by the replica, behind
    replica.stop()
    try:
        # Its pooled connections are dead, and the router may not have noticed yet: the
        # read is answered by the primary all the same.
        assert await name_of(anonymous, author) == name
        await served.router.refresh()
        assert not served.replica.usable(time.monotonic())
        assert await name_of(anonymous, author) == name
        metrics = (await anonymous.http.get("/metrics")).text
        assert metric(metrics, "db_replica_usable", served.replica.name) == 0
        ready = await anonymous.http.get("/readyz")
        assert ready.status_code == 200, ready.text  # the primary alone decides readiness
    finally:
        replica.start()


@pytest.mark.slow
async def test_subscriptions_read_the_change_log_and_their_nodes_from_the_primary(
    served: Served,
) -> None:
    """The replica replays APPLY_DELAY_SECONDS late: an event that read it would come late,
    or with a null node."""
    live = served.app.state.live
    subscription = await live.open(
        {"query": "subscription { authorChanged { kind id node { name } } }"}, None
    )
    async with served.client().http as http:
        client = GraphQLClient(http)
        author_id, _ = await create_author(client, "Read from the primary")
        # Read from the replica, the change would not be there before its delay is over.
        body = await asyncio.wait_for(subscription.next(), APPLY_DELAY_SECONDS)
    change = orjson.loads(body or b"")["data"]["authorChanged"]
    assert change == {"kind": "CREATED", "id": author_id, "node": {"name": "Read from the primary"}}
    await subscription.close()
