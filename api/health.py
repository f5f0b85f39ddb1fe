"""Liveness and readiness: is the process up, and can it serve (database reachable, at head)?"""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.db.migrations import current_revisions, head_revisions

READINESS_TIMEOUT_SECONDS = 3.0
log = logging.getLogger(__name__)


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readiness_problem(engine: AsyncEngine) -> str | None:
    """Why the service cannot serve yet, or None when it can."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS), engine.connect() as connection:
            current = await current_revisions(connection)
    except Exception as error:
        log.warning("readiness check failed: %r", error)
        return "database unreachable"
    heads = head_revisions()
    if current != heads:
        have = ", ".join(sorted(current)) or "none"
        want = ", ".join(sorted(heads))
        return f"database schema at revision {have}, expected {want}: run migrations"
    return None


async def readyz(request: Request) -> JSONResponse:
    problem = await readiness_problem(request.state.engine)
    if problem is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
