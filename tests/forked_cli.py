"""`python -m api …` in processes forked from a server that imported the service once.

Starting Python and importing Alembic, SQLAlchemy and pydantic costs about a second of CPU
per process: a test that starts eighty migrators would spend most of its time there. Each
child here runs exactly what `python -m api` runs (`api.cli.main`), in its own process with
its own environment, database sessions, stdout and stderr; only the imports are shared.
"""

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path

from api.db.migrations import PROJECT_ROOT
from tests.test_cli import Finished

# This module is imported too: each child unpickles its target from here.
PRELOAD = [
    "tests.forked_cli",
    "api.cli",
    "api.settings",
    "api.db.migrations",
    "api.db.models",
    "alembic.command",
    "alembic.runtime.environment",
    "sqlalchemy.dialects.postgresql.asyncpg",
]


def _run(argv: Sequence[str], env: dict[str, str], stdout: str, stderr: str) -> None:
    os.environ.clear()
    os.environ.update(env)
    os.chdir(PROJECT_ROOT)
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    from api.cli import main

    raise SystemExit(main(list(argv)))


class ForkedCli:
    """Starts `python -m api` children; their output goes to files under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)
        self.started = 0

    def start(
        self, argv: Sequence[str], env: dict[str, str]
    ) -> tuple[multiprocessing.process.BaseProcess, Path, Path]:
        self.started += 1
        stdout = self.directory / f"{self.started}.out"
        stderr = self.directory / f"{self.started}.err"
        process = self.context.Process(target=_run, args=(argv, env, str(stdout), str(stderr)))
        process.start()
        return process, stdout, stderr

    @staticmethod
    async def finish(
        process: multiprocessing.process.BaseProcess, stdout: Path, stderr: Path, within: float
    ) -> Finished:
        await asyncio.to_thread(process.join, within)
        if process.exitcode is None:
            process.kill()
            await asyncio.to_thread(process.join)
        return Finished(
            -1 if process.exitcode is None else process.exitcode,
            await asyncio.to_thread(stdout.read_text),
            await asyncio.to_thread(stderr.read_text),
        )
