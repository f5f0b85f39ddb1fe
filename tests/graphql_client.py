"""A small GraphQL-over-HTTP client for the tests, with the checks every response needs."""

from dataclasses import dataclass
from typing import Any

import httpx

INTERNALS = ("Traceback", "sqlalchemy", "asyncpg", "SELECT ", "INSERT ", 'File "')


@dataclass
class GraphQLClient:
    http: httpx.AsyncClient
    app: Any = None  # the app it talks to in process, when the test needs its state

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        response = await self.http.post("/graphql", json=body)
        assert not any(marker in response.text for marker in INTERNALS), response.text
        return response

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a response that must succeed with no errors."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        payload = response.json()
        assert "errors" not in payload, payload["errors"]
        data: dict[str, Any] = payload["data"]
        return data

    async def errors(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The `errors` of a response that must fail."""
        response = await self.post(query, variables)
        payload = response.json()
        assert payload.get("errors"), payload
        errors: list[dict[str, Any]] = payload["errors"]
        return errors
