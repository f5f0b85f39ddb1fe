"""The LISTEN connection's target: the database's direct URL, never the pooler's."""

import logging
from collections.abc import Awaitable, Callable

import asyncpg

from api.settings import PooledMigrationTarget, Settings

log = logging.getLogger(__name__)
# How operators (and tests) tell the live service's connections apart in pg_stat_activity.
APPLICATION = "catalog-live-listen"
LOG_READER = "catalog-live-log"


def listener_for(settings: Settings) -> Callable[[], Awaitable[asyncpg.Connection]] | None:
    """How to open the LISTEN connection; None (poll only) when there is no direct URL."""
    try:
        target = settings.migration_database
    except PooledMigrationTarget:
        log.warning(
            "no direct database URL for LISTEN (set DATABASE_DIRECT_URL): live updates poll "
            "the change log every %s s instead",
            settings.live_poll_seconds,
        )
        return None
    url = target.url.set(drivername="postgresql").render_as_string(hide_password=False)
    args = {**target.connect_args, "timeout": settings.db_connect_timeout}
    args["server_settings"] = {**args.get("server_settings", {}), "application_name": APPLICATION}

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(url, **args)

    return connect
