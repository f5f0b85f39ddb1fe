"""README's examples run top to bottom, twice, against the demo catalogue, without an error.

Conventions the README follows (and states): every ```graphql block is run in order; a
```json block right after it holds its variables; a string "<FIELD from ROOT>" in those
variables stands for the first FIELD found in the latest answer of the example whose root
field is ROOT; a comment "# Expected answer: userErrors with code CODE" marks the one
refusal an example is meant to show. Anything else must answer without `errors` and with
empty `userErrors`. A subscription is opened through the live service (its events are
tests/test_live.py's to check) and must be accepted.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.demo import seed_demo_catalog
from api.live.service import LiveService
from api.settings import Settings
from tests.graphql_client import GraphQLClient

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```\n", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"^<(?P<field>\w+) from (?P<root>\w+)>$")
EXPECTED = re.compile(r"#\s*Expected answer: userErrors with code (?P<code>[A-Z_]+)")
RUNS = 2


@dataclass(frozen=True)
class Example:
    document: str
    variables: Any
    expected_codes: frozenset[str]
    line: int


def examples(markdown: str) -> list[Example]:
    fences = list(FENCE.finditer(markdown))
    found = []
    for index, fence in enumerate(fences):
        if fence.group("lang") != "graphql":
            continue
        variables = None
        following = fences[index + 1] if index + 1 < len(fences) else None
        if (
            following is not None
            and following.group("lang") == "json"
            and not markdown[fence.end() : following.start()].strip()
        ):
            variables = json.loads(following.group("body"))
        document = fence.group("body")
        found.append(
            Example(
                document,
                variables,
                frozenset(EXPECTED.findall(document)),
                markdown.count("\n", 0, fence.start()) + 1,
            )
        )
    return found


def first(value: Any, field: str) -> Any:
    """The first `field` in `value`, depth first; KeyError if there is none."""
    if isinstance(value, dict):
        if field in value:
            return value[field]
        children: list[Any] = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        children = []
    for child in children:
        try:
            return first(child, field)
        except KeyError:
            continue
    raise KeyError(field)


def resolve(value: Any, answers: dict[str, Any]) -> Any:
    """`value` with every "<FIELD from ROOT>" replaced from the answers so far."""
    if isinstance(value, dict):
        return {key: resolve(item, answers) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, answers) for item in value]
    if isinstance(value, str) and (placeholder := PLACEHOLDER.match(value)):
        root, field = placeholder.group("root"), placeholder.group("field")
        assert root in answers, f"{value}: no earlier example answered {root}"
        found = first(answers[root], field)
        assert found is not None, f"{value}: {root} answered null"
        return found
    return value


def user_error_codes(data: dict[str, Any]) -> set[str]:
    return {
        error["code"]
        for payload in data.values()
        if isinstance(payload, dict)
        for error in payload.get("userErrors") or []
    }


def test_the_readme_holds_examples_in_both_conventions() -> None:
    found = examples(README.read_text())

    assert len(found) >= 5
    assert any(example.variables is not None for example in found)
    placeholders = re.findall(r'"<\w+ from \w+>"', README.read_text())
    assert placeholders, "no example reuses an id from an earlier answer"


@pytest.fixture(params=["planner", "resolvers"])
def either_path(
    request: pytest.FixtureRequest, client: GraphQLClient, resolver_client: GraphQLClient
) -> GraphQLClient:
    """The app with the query planner, then the same app answering through resolvers only."""
    return client if request.param == "planner" else resolver_client


async def opens(example: Example, live: LiveService) -> None:
    subscription = await live.open(
        {"query": example.document, "variables": example.variables}, None
    )
    assert subscription.ended is None
    await subscription.close()


async def test_readme_examples_run_in_order_twice(
    either_path: GraphQLClient, settings: Settings, engine: AsyncEngine
) -> None:
    # The client's app: the session's, whose lifespan state holds its live service.
    live: LiveService = either_path.app.state.live
    client = either_path
    await seed_demo_catalog(settings, engine)  # what `make run` does on an empty database
    answers: dict[str, Any] = {}

    for run in range(1, RUNS + 1):
        for example in examples(README.read_text()):
            where = f"README.md line {example.line}, run {run}"
            if example.document.lstrip().startswith("subscription"):
                await opens(example, live)
                continue
            response = await client.post(example.document, resolve(example.variables, answers))
            payload = response.json()
            assert response.status_code == 200, (where, payload)
            assert "errors" not in payload, (where, payload["errors"])
            data: dict[str, Any] = payload["data"]
            assert user_error_codes(data) == example.expected_codes, (where, data)
            answers.update(data)
