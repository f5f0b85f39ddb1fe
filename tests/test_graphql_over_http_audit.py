"""graphql-http's GraphQL-over-HTTP audit (the spec's own conformance list) against a real
server: every MUST and every SHOULD passes (and, today, every MAY).

Node and npm come with the machine; the audit's packages are installed from the npm registry
into .venv/npm-tools the first time, as `make check-graphiql-offline` does for its tools.
"""

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.served import served

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".venv" / "npm-tools"
PACKAGES = ("graphql-http@1.23.1", "graphql@16.11.0")
SCRIPT = ROOT / "scripts" / "audit_graphql_http.mjs"


def audit_tools() -> Path:
    """The audit script beside its node_modules (ES modules resolve packages from there)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed for the GraphQL-over-HTTP audit")
        pytest.skip("node and npm are needed for the GraphQL-over-HTTP audit")
    if not (TOOLS / "node_modules" / "graphql-http").is_dir():
        subprocess.run(
            ["npm", "install", "--silent", "--no-save", "--no-audit", "--no-fund",
             "--prefix", str(TOOLS), *PACKAGES],
            check=True,
            timeout=300,
        )  # fmt: skip
    runnable = TOOLS / SCRIPT.name
    runnable.write_bytes(SCRIPT.read_bytes())
    return runnable


async def test_the_graphql_over_http_audit_passes_every_must_and_should(database_url: str) -> None:
    script = audit_tools()
    async with served(DATABASE_URL=database_url) as server:
        url = str(server.http.base_url.join("/graphql"))
        audit = await asyncio.create_subprocess_exec(
            "node", str(script), url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(audit.communicate(), timeout=120)
    report = output.decode()
    assert audit.returncode == 0, report
    assert "MUST 13/13" in report, report
    assert "SHOULD 23/23" in report, report
