"""Idempotency-Key: a retried write is answered from the first one's stored response.

As Stripe and the IETF draft use it: the first request with a key runs, and its response is
stored with the key, the caller and a fingerprint of the request, in the same transaction as
the write (both commit, or neither). A retry with the same key and request gets that
response and writes nothing; the same key with another request is IDEMPOTENCY_KEY_REUSED
(422); a retry while the first still runs waits for it (the row's lock), up to a bound, then
gets IDEMPOTENCY_KEY_IN_PROGRESS (409). Keys of different callers never meet.
"""

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.db.models import IDEMPOTENCY_KEY_MAX
from api.pipeline.refusals import Refused, RequestCode

log = logging.getLogger(__name__)
HEADER = b"idempotency-key"
LOCK_NOT_AVAILABLE = "55P03"
REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class IdempotencyKey:
    caller: str
    key: str
    fingerprint: str


def key_value(header: str | None) -> str | None:
    """The key a client sent, checked: 1-255 visible ASCII characters."""
    if header is None:
        return None
    value = header.strip()
    if (
        not value
        or len(value) > IDEMPOTENCY_KEY_MAX
        or not value.isascii()
        or not value.isprintable()
    ):
        raise Refused(
            RequestCode.BAD_REQUEST,
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters",
        )
    return value


def fingerprint(document: str, operation_name: str | None, variables: dict[str, Any]) -> str:
    """What makes two requests the same request: the document, the operation, the values."""
    digest = hashlib.sha256(document.encode())
    digest.update(b"\0" + (operation_name or "").encode() + b"\0")
    digest.update(orjson.dumps(variables, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


@dataclass(frozen=True)
class Replay:
    """The stored response of the request that first used the key."""

    body: bytes


async def claim(
    connection: AsyncConnection, key: IdempotencyKey, *, wait_seconds: float, retention_hours: float
) -> Replay | None:
    """Within the write's transaction: take the key (None), or the first request's Replay.

    A key whose first request is still running is locked by its transaction: the INSERT
    waits for it, up to `wait_seconds`.
    """
    previous = await connection.scalar(text("SELECT current_setting('lock_timeout')"))
    await connection.execute(
        text("SELECT set_config('lock_timeout', :wait, true)"),
        {"wait": str(max(1, round(wait_seconds * 1000)))},
    )
    await connection.execute(
        text(
            "DELETE FROM idempotency_keys WHERE caller = :caller AND key = :key"
            " AND created_at < now() - make_interval(hours => :hours)"
        ),
        {"caller": key.caller, "key": key.key, "hours": retention_hours},
    )
    try:
        taken = await connection.scalar(
            text(
                "INSERT INTO idempotency_keys (caller, key, fingerprint, response)"
                " VALUES (:caller, :key, :fingerprint, '')"
                " ON CONFLICT DO NOTHING RETURNING true"
            ),
            {"caller": key.caller, "key": key.key, "fingerprint": key.fingerprint},
        )
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise in_progress() from None
        raise
    # The bound was for waiting on the key; the write itself keeps the session's own.
    await connection.execute(
        text("SELECT set_config('lock_timeout', :previous, true)"), {"previous": previous}
    )
    if taken:
        return None
    row = (
        await connection.execute(
            text(
                "SELECT fingerprint, response FROM idempotency_keys"
                " WHERE caller = :caller AND key = :key"
            ),
            {"caller": key.caller, "key": key.key},
        )
    ).one()
    if row.fingerprint != key.fingerprint:
        raise Refused(
            RequestCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used for a different request; use a new key",
        )
    return Replay(bytes(row.response))


async def store(connection: AsyncConnection, key: IdempotencyKey, body: bytes) -> None:
    """The response, beside the key, in the transaction that wrote."""
    await connection.execute(
        text("UPDATE idempotency_keys SET response = :body WHERE caller = :caller AND key = :key"),
        {"body": body, "caller": key.caller, "key": key.key},
    )


def in_progress() -> Refused:
    return Refused(
        RequestCode.IDEMPOTENCY_KEY_IN_PROGRESS,
        "A request with this Idempotency-Key is still running; retry shortly with the same key",
        headers={"Retry-After": "1"},
    )


async def delete_expired(connection: AsyncConnection, retention_hours: float, batch: int) -> int:
    """One small batch of expired keys: short transactions, no long lock on the table."""
    result = await connection.execute(
        text(
            "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys"
            " WHERE created_at < now() - make_interval(hours => :hours) LIMIT :batch)"
        ),
        {"hours": retention_hours, "batch": batch},
    )
    return int(result.rowcount or 0)


async def expire_periodically(
    engine: AsyncEngine, retention_hours: float, every_seconds: float = 600, batch: int = 1000
) -> None:
    """Delete expired keys now and then, a small batch per transaction, until cancelled."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            while True:
                async with engine.begin() as connection:
                    deleted = await delete_expired(connection, retention_hours, batch)
                if deleted < batch:
                    break
        except Exception as error:  # the database away, say: the next round tries again
            log.info("expiring idempotency keys failed: %r", error)
