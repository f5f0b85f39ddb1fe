"""The Dockerfile builds a reproducible, unprivileged image: the rules issue 20 sets for it.

No Docker engine runs here, so the file is read with BuildKit's own parser (the `dockerfile`
package) and its instructions are held to the rules: two stages, a base image pinned to an
exact release and digest that is the platform the lock is compiled for, every pip install from
the lock with hashes, the project not editable, a non-root user, and the migrations reachable
without the source tree.
"""

import fnmatch
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dockerfile
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
RUN_LOCK = "requirements/run.txt"
# The glibc of each Debian release the base image may be on, as uv names the platform.
MANYLINUX_OF_DEBIAN = {"bookworm": "x86_64-manylinux_2_36"}
ROOT_USERS = {"root", "0", "0:0", "root:root"}
SHELL_OPERATORS = {"&&", "||", ";", "|", "&"}


@dataclass(frozen=True)
class Instruction:
    command: str
    flags: tuple[str, ...]
    value: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.value)


@dataclass(frozen=True)
class Stage:
    base: str
    name: str
    instructions: tuple[Instruction, ...]

    def all(self, command: str) -> list[Instruction]:
        return [found for found in self.instructions if found.command == command]


def instructions() -> list[Instruction]:
    return [
        Instruction(str(parsed.cmd).upper(), tuple(parsed.flags), tuple(parsed.value))
        for parsed in dockerfile.parse_file(str(DOCKERFILE))
    ]


def global_args(parsed: list[Instruction]) -> dict[str, str]:
    """The ARG defaults declared before the first FROM: what FROM lines may refer to."""
    found: dict[str, str] = {}
    for instruction in parsed:
        if instruction.command == "FROM":
            break
        if instruction.command == "ARG":
            name, _, default = instruction.text.partition("=")
            found[name] = default
    return found


def stages() -> list[Stage]:
    parsed = instructions()
    args = global_args(parsed)
    found: list[Stage] = []
    for index, instruction in enumerate(parsed):
        if instruction.command != "FROM":
            continue
        words = list(instruction.value)
        base = re.sub(r"\$\{?(\w+)\}?", lambda match: args[match[1]], words[0])
        name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
        rest = []
        for following in parsed[index + 1 :]:
            if following.command == "FROM":
                break
            rest.append(following)
        found.append(Stage(base, name, tuple(rest)))
    return found


def shell_commands(script: str) -> Iterator[list[str]]:
    """Each simple command of a RUN line, split at &&, ||, ;, | and &."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    for token in lexer:
        if token in SHELL_OPERATORS:
            if words:
                yield words
            words = []
        else:
            words.append(token)
    if words:
        yield words


def pip_arguments(words: list[str]) -> list[str] | None:
    """The arguments after `pip`, `pip3` or `python -m pip`; None for any other command."""
    if Path(words[0]).name in ("pip", "pip3"):
        return words[1:]
    if Path(words[0]).name.startswith("python") and words[1:3] == ["-m", "pip"]:
        return words[3:]
    return None


def pip_commands(stage: Stage) -> list[list[str]]:
    return [
        arguments
        for run in stage.all("RUN")
        for words in shell_commands(run.text)
        if (arguments := pip_arguments(words)) is not None
    ]


def image_reference(image: str) -> tuple[str, str, str]:
    rest, _, digest = image.partition("@")
    name, _, tag = rest.rpartition(":")
    return name, tag, digest


def makefile_lock_option(option: str) -> str:
    """The value `make lock` passes to uv for `option` (the lock's target platform)."""
    found = re.search(rf"{re.escape(option)}[ =](\S+)", (ROOT / "Makefile").read_text())
    assert found is not None, f"the Makefile's lock passes no {option}"
    return found[1]


@pytest.fixture(scope="module")
def built() -> list[Stage]:
    return stages()


@pytest.fixture(scope="module")
def runtime(built: list[Stage]) -> Stage:
    return built[-1]


def test_the_image_is_built_in_two_stages(built: list[Stage], runtime: Stage) -> None:
    names = [stage.name for stage in built]
    assert len(built) >= 2, names
    assert all(names), f"every stage is named: {names}"
    builder = built[0].name
    # The runtime stage takes what the builder made (wheels), not the builder's whole tree.
    taken = [flag for found in runtime.instructions for flag in found.flags if builder in flag]
    assert taken, f"the last stage takes nothing from {builder!r}"
    assert all(re.search(rf"from={re.escape(builder)}\b", flag) for flag in taken), taken


def test_every_base_image_is_pinned_to_an_exact_release_and_digest(built: list[Stage]) -> None:
    stage_names = {stage.name for stage in built}
    external = [stage.base for stage in built if stage.base not in stage_names]
    assert external
    for image in external:
        name, tag, digest = image_reference(image)
        assert name == "python", image
        assert re.match(r"\d+\.\d+\.\d+-", tag), f"{image}: not an exact release"
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{image}: no digest"


def test_the_base_image_is_the_platform_the_lock_is_compiled_for(built: list[Stage]) -> None:
    """The lock's wheels are chosen for one Python and one glibc: the image must be both."""
    for stage in built:
        _, tag, _ = image_reference(stage.base)
        if not tag:
            continue  # FROM an earlier stage
        version = re.match(r"(\d+\.\d+)\.\d+-", tag)
        assert version is not None, tag
        assert version[1] == makefile_lock_option("--python-version")
        debian = tag.rsplit("-", 1)[-1]
        assert MANYLINUX_OF_DEBIAN.get(debian) == makefile_lock_option("--python-platform")


def test_every_pip_install_is_from_the_lock_with_hashes(built: list[Stage]) -> None:
    commands = [arguments for stage in built for arguments in pip_commands(stage)]
    assert len(commands) >= 3, commands
    for arguments in commands:
        assert arguments[0] in ("install", "wheel"), arguments
        assert "-e" not in arguments, arguments
        assert "--editable" not in arguments, arguments
        if "-r" in arguments:
            assert "--require-hashes" in arguments, arguments
            continue
        # Without a lock: only the project itself, by path, and none of its dependencies.
        assert "--no-deps" in arguments, arguments
        targets = [word for word in arguments[1:] if not word.startswith("-")]
        targets = [word for word in targets if word not in option_values(arguments)]
        assert targets, arguments
        assert all(word == "." or word.endswith(".whl") for word in targets), arguments


def option_values(arguments: list[str]) -> set[str]:
    """The values of pip's options that take one (so they are not read as packages)."""
    takes_value = {"--wheel-dir", "-w", "--find-links", "-f", "-r", "-c", "--target", "-t"}
    return {
        arguments[index + 1] for index, word in enumerate(arguments[:-1]) if word in takes_value
    }


def test_the_runtime_stage_installs_the_run_lock_offline(runtime: Stage) -> None:
    copied = [found.value for found in runtime.all("COPY") if not found.flags]
    lock_copies = [value[-1] for value in copied if RUN_LOCK in value[:-1]]
    assert len(lock_copies) == 1, copied
    assert not any("dev.txt" in word for value in copied for word in value), copied
    installs = [arguments for arguments in pip_commands(runtime) if "-r" in arguments]
    assert len(installs) == 1, installs
    arguments = installs[0]
    assert arguments[arguments.index("-r") + 1] == lock_copies[0]
    # The builder's wheels only: nothing fetched (and so nothing unhashed) at this stage.
    assert "--no-index" in arguments
    for project_install in pip_commands(runtime):
        assert "--no-index" in project_install, project_install


def test_the_image_runs_as_an_unprivileged_user(runtime: Stage) -> None:
    users = runtime.all("USER")
    assert users, "the image runs as root"
    user = users[-1].text
    assert user not in ROOT_USERS, user
    assert runtime.instructions.index(users[-1]) > max(
        runtime.instructions.index(found) for found in runtime.all("RUN")
    ), "USER comes after the last RUN"
    created = [run.text for run in runtime.all("RUN") if re.search(r"\buseradd\b", run.text)]
    assert created, "the user is never created"
    assert re.search(rf"\b{re.escape(user.partition(':')[0])}\s*$", created[0].split("&&")[0])


def test_migrations_are_found_without_the_source_tree(runtime: Stage) -> None:
    """The wheel's api/ is in site-packages: ALEMBIC_CONFIG names the alembic.ini copied in."""
    env_words = [word for found in runtime.all("ENV") for word in found.value]
    env = dict(zip(env_words[::2], env_words[1::2], strict=True))
    config = Path(env["ALEMBIC_CONFIG"])
    workdirs = [found.text for found in runtime.all("WORKDIR")]
    assert workdirs, "no WORKDIR"
    copied = {found.value[0]: found.value[-1] for found in runtime.all("COPY") if not found.flags}
    assert config.parent == Path(workdirs[-1])
    assert copied.get("alembic.ini") in ("./", f"{config.parent}/", str(config))
    assert copied.get("alembic") in ("./alembic", f"{config.parent}/alembic")
    ini = (ROOT / "alembic.ini").read_text()
    assert re.search(r"^script_location\s*=\s*%\(here\)s/alembic\s*$", ini, re.MULTILINE)


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
        for pattern in patterns
        if not pattern.startswith("!")
        for prefix in prefixes
    )


def test_the_build_context_holds_what_is_copied_and_no_secrets(built: list[Stage]) -> None:
    patterns = dockerignore_patterns()
    for kept_out in (".git", ".venv", ".env", ".pgdata"):
        assert ignored(kept_out, patterns), f".dockerignore lets {kept_out} into the context"
    sources = [
        source
        for stage in built
        for found in stage.all("COPY")
        if not found.flags
        for source in found.value[:-1]
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source, patterns), f"COPY {source}: left out by .dockerignore"


def test_the_project_version_is_what_the_wheel_is_built_from() -> None:
    """The builder copies pyproject.toml and README.md (its readme): the wheel needs both."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    builder = stages()[0]
    copied = {word for found in builder.all("COPY") for word in found.value[:-1]}
    assert {"pyproject.toml", project["readme"]} <= copied
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for pattern in packages["packages"]["find"]["include"]:
        assert pattern.rstrip("*") in copied, pattern
