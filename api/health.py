"""Liveness and readiness: is the process up, and can it serve this database's schema?

Readiness asks the database over a connection of its own (`probe_engine`, a pool of one
that no request uses): a pool saturated by requests is a busy instance, not a broken one,
and must not take it out of rotation. A probe connection the server dropped (a pooler or
backend restart) is retried once on a new connection before the instance is called
unready, and the whole check, retry included, stays within its budget.
"""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.db.compatibility import Compatibility

READINESS_TIMEOUT_SECONDS = 3.0
PROBE_ATTEMPTS = 2
log = logging.getLogger(__name__)


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _ask(engine: AsyncEngine, compatibility: Compatibility) -> str | None:
    async with engine.connect() as connection:
        return await compatibility.problem(connection)


async def readiness_problem(engine: AsyncEngine, compatibility: Compatibility) -> str | None:
    """Why the service cannot serve yet, or None when it can."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            for attempt in range(1, PROBE_ATTEMPTS + 1):
                try:
                    return await _ask(engine, compatibility)
                except TimeoutError:
                    raise
                except Exception as error:
                    if attempt == PROBE_ATTEMPTS:
                        raise
                    log.info("readiness probe failed (%r); retrying on a new connection", error)
                    await engine.dispose()  # the dead connection goes; the next is new
    except Exception as error:
        log.warning("readiness check failed: %r", error)
        return "database unreachable"
    return "database unreachable"  # not reached: the loop returns or raises


async def readyz(request: Request) -> JSONResponse:
    problem = await readiness_problem(request.state.probe_engine, request.state.compatibility)
    if problem is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
