"""Liveness and readiness: is the process up, and can it serve this database's schema?"""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.db.compatibility import Compatibility

READINESS_TIMEOUT_SECONDS = 3.0
log = logging.getLogger(__name__)


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readiness_problem(engine: AsyncEngine, compatibility: Compatibility) -> str | None:
    """Why the service cannot serve yet, or None when it can."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS), engine.connect() as connection:
            return await compatibility.problem(connection)
    except Exception as error:
        log.warning("readiness check failed: %r", error)
        return "database unreachable"


async def readyz(request: Request) -> JSONResponse:
    problem = await readiness_problem(request.state.engine, request.state.compatibility)
    if problem is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
