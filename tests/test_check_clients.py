"""`make check-clients` stays runnable without running it here: it needs npm, its packages
and two servers, so `make check` does not run it (the protocol it exercises is tested in
Python, tests/test_persisted_doors.py). What can rot silently is checked instead: the target
exists and runs the script, every script parses, the packages are pinned exactly and locked,
and node_modules stays out of git.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "scripts" / "check_clients"
EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+")


def node() -> str:
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("node is needed to check the client scripts")
        pytest.skip("node is needed to check the client scripts")
    return found


def test_the_make_target_installs_the_locked_packages_and_runs_the_script() -> None:
    dry_run = subprocess.run(
        ["make", "--dry-run", "--always-make", "-C", str(ROOT), "check-clients"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "npm ci --silent --no-audit --no-fund --prefix scripts/check_clients" in dry_run.stdout
    assert "node scripts/check_clients/check_clients.mjs" in dry_run.stdout


@pytest.mark.parametrize("script", sorted(p.name for p in CLIENTS.glob("*.mjs")))
def test_each_script_parses(script: str) -> None:
    checked = subprocess.run(
        [node(), "--check", str(CLIENTS / script)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr


def test_every_client_has_a_module_and_a_check() -> None:
    main = (CLIENTS / "check_clients.mjs").read_text()
    for module in ("apollo", "urql", "relay", "codegen", "live"):
        assert (CLIENTS / f"{module}.mjs").is_file()
        assert f'from "./{module}.mjs"' in main


def test_packages_are_pinned_exactly_and_locked_at_those_versions() -> None:
    wanted = json.loads((CLIENTS / "package.json").read_text())["dependencies"]
    lock = json.loads((CLIENTS / "package-lock.json").read_text())["packages"]
    assert {"@apollo/client", "@urql/core", "relay-runtime", "relay-compiler"} <= wanted.keys()
    assert {"@graphql-codegen/cli", "@graphql-codegen/client-preset"} <= wanted.keys()
    assert {"graphql-ws", "graphql-sse", "ws"} <= wanted.keys()
    for name, version in wanted.items():
        assert EXACT_VERSION.fullmatch(version), f"{name} is not pinned exactly: {version}"
        assert lock[f"node_modules/{name}"]["version"] == version, name
    assert lock[""]["dependencies"] == wanted


def test_node_modules_is_not_committed() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q",
         "scripts/check_clients/node_modules/@apollo/client/package.json"],
        timeout=60,
    )  # fmt: skip
    assert ignored.returncode == 0
