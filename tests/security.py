"""Shared by the security tests: apps built with chosen settings, and what no response may show."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager

from api.app import create_app
from api.settings import Settings
from tests.graphql_client import INTERNALS

# Markers matched as written: SQL keywords and Python's traceback lines.
EXACT_MARKERS = (*INTERNALS, "SELECT ", "INSERT ", "Traceback", 'File "', "/work/")
# Markers matched ignoring case: library names that only a leaked exception would carry.
FOLDED_MARKERS = ("sqlalchemy", "asyncpg", "psycopg", "site-packages", "traceback")

# Strong enough for production: 24+ characters, 8+ of them different.
WRITE_TOKEN_A = "tok-a7Kq9XvR2mWz4TbN8cLp3sYd"
WRITE_TOKEN_B = "tok-b5Hj2QwE9rUt6YiO1pAs4DfG"


def leaked_internals(text: str) -> list[str]:
    """The markers of server internals found in a response body."""
    folded = text.lower()
    return [m for m in EXACT_MARKERS if m in text] + [m for m in FOLDED_MARKERS if m in folded]


def assert_safe(response: httpx.Response) -> None:
    """What every response must be, whatever was sent: not a 5xx, and nothing internal shown."""
    assert response.status_code < 500, response.text[:2000]
    leaked = leaked_internals(response.text)
    assert leaked == [], (leaked, response.text[:2000])


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app built from `settings`, its lifespan running, behind an in-process HTTP client.

    Exceptions that escape the app become the 500 a real server would send, so a test sees the
    status instead of the exception.
    """
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
