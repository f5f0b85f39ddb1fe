"""`python -m api …`: serve, migrate, seed, export the schema, or do all of it for development."""

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import ValidationError

from api.catalog.checks import UnservableDescription
from api.cli_errors import NOT_MIGRATED, CommandFailed, explained
from api.db.migrations import PROJECT_ROOT
from api.observability.logs import configure_logging
from api.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from api.documents.manifests import Manifest
    from api.documents.store import Stored

SCHEMA_FILE = PROJECT_ROOT / "schema.graphql"
EMBEDDED_DATA_DIR = PROJECT_ROOT / ".pgdata"
STARTUP_FAILURE = 3  # uvicorn's own exit status when the server could not start

log = logging.getLogger("api")


class SettingsError(SystemExit):
    pass


def load_settings() -> Settings:
    """The settings, or exit with one line per problem that says what to fix."""
    try:
        return Settings()
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            name = str(problem["loc"][0]).upper() if problem["loc"] else "settings"
            if problem["type"] == "missing":
                lines.append(f"{name} is not set: export {name}=postgresql://user:pass@host/dbname")
            else:
                message = str(problem["msg"]).removeprefix("Value error, ")
                # Checks across settings (loc is empty) name the settings in their message.
                named = not problem["loc"] or message.startswith(name)
                lines.append(message if named else f"{name}: {message}")
        raise SettingsError("error: " + "\nerror: ".join(lines)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    with _listener(args) as listener:
        if settings.migrate_on_start:
            cmd_migrate(args)
        _serve(settings, listener, stop_on_hangup=False)
    return 0


def _listener(args: argparse.Namespace) -> socket.socket:
    """The port, bound first: a taken one is one line and status 1, before anything starts."""
    from api.serving.listen import bind_listener

    return bind_listener(args.host, args.port)


def _serve(settings: Settings, listener: socket.socket, *, stop_on_hangup: bool) -> None:
    """uvicorn until SIGINT or SIGTERM (and SIGHUP when asked), each a graceful shutdown."""
    import uvicorn

    from api.app import create_app
    from api.serving.listen import Server
    from api.serving.protocol import BoundedHttpToolsProtocol, HttpLimits

    limits = settings.options(HttpLimits)
    server = Server(
        uvicorn.Config(
            create_app(settings),
            # The protocol enforces every HTTP limit itself, the concurrency limit included:
            # uvicorn's own answers them in plain text, and has no deadline for a head.
            http=BoundedHttpToolsProtocol.with_limits(limits),
            timeout_graceful_shutdown=30,
            # A WebSocket message is a request too: no larger than a request body may be.
            ws_max_size=settings.max_body_bytes,
            # Compression holds a zlib state per socket each way, about half of what an idle
            # subscriber's socket costs (83 KB with it, 43 KB without); change events are small.
            ws_per_message_deflate=False,
            proxy_headers=True,
            log_config=None,
        )
    )
    # uvicorn shuts down gracefully on SIGINT and SIGTERM only; a closed terminal sends SIGHUP.
    hung_up = False

    def on_hangup(signum: int, frame: FrameType | None) -> None:
        nonlocal hung_up
        hung_up = True
        server.handle_exit(signum, frame)

    previous = signal.getsignal(signal.SIGHUP)
    if stop_on_hangup:
        signal.signal(signal.SIGHUP, on_hangup)
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down gracefully, as uvicorn.run does
        pass
    finally:
        signal.signal(signal.SIGHUP, previous or signal.SIG_DFL)
    if not server.started:  # the app's lifespan failed: uvicorn has said why
        raise SystemExit(STARTUP_FAILURE)
    if hung_up:
        raise SystemExit(128 + signal.SIGHUP)


def cmd_migrate(_: argparse.Namespace) -> int:
    """Print one line: what was applied, or that there was nothing to do."""
    from sqlalchemy.exc import DBAPIError

    from api.db.migration_lock import MigrationBlocked, MigrationPolicy
    from api.db.migrations import upgrade_to_head
    from api.settings import PooledMigrationTarget

    settings = load_settings()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the summary says it all
    try:
        target = settings.migration_database
        log.debug("migrating %s", target.render())
        with explained(target):
            journal = upgrade_to_head(target, quiet=True, policy=settings.options(MigrationPolicy))
    except (PooledMigrationTarget, MigrationBlocked) as error:
        raise SystemExit(f"error: {error}") from None
    except DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0]
        raise SystemExit(f"error: migration failed: {reason}") from None
    print(journal.summary(), flush=True)
    return 0


def cmd_lint_migrations(args: argparse.Namespace) -> int:
    """`file: rule: message` per problem in the revisions' rendered SQL; exit 1 if any."""
    from alembic.util import CommandError

    from api.db.migration_lint import LintUnavailable, lint_revisions
    from api.db.migrations import alembic_config
    from api.db.models import Base

    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        problems = lint_revisions(alembic_config(quiet=True), Base.metadata, args.revisions)
    except (LintUnavailable, CommandError) as error:
        raise SystemExit(f"error: {error}") from None
    for problem in problems:
        print(problem)
    if not problems:
        print("lint-migrations: no problems found")
    return 1 if problems else 0


def cmd_schema_diff(args: argparse.Namespace) -> int:
    """Each change against schema.graphql at --against; exit 1 on an unaccepted breaking one."""
    from api.graphql.schema import schema
    from api.graphql.schema_diff import ACCEPTED_FILE, SchemaDiffError, diff_against

    ref = args.against
    try:
        diff = diff_against(ref, schema.as_str(), Path.cwd())
    except SchemaDiffError as error:
        raise SystemExit(f"error: {error}") from None
    if diff is None:
        print(f"note: {ref} has no {SCHEMA_FILE.name}; nothing to compare")
        return 0
    for line in diff.lines():
        print(line)
    if diff.refused:
        print(
            f"schema-diff: {len(diff.refused)} breaking change(s) against {ref}; if deployed"
            f" clients survive one, accept it in {ACCEPTED_FILE} with the reason",
            file=sys.stderr,
        )
        return 1
    print(f"schema-diff: no unaccepted breaking change against {ref}")
    return 0


@asynccontextmanager
async def migrated_engine(settings: Settings) -> AsyncIterator["AsyncEngine"]:
    """A one-connection engine on DATABASE_URL, once the database is known to be at head."""
    from api.db.engine import EngineOptions, create_engine
    from api.db.migrations import current_revisions, head_revisions

    options = settings.options(EngineOptions, pool_size=1, max_overflow=0)
    engine = create_engine(settings.database, options)
    try:
        with explained(settings.database):
            async with engine.connect() as connection:
                if await current_revisions(connection) != head_revisions():
                    raise CommandFailed(NOT_MIGRATED)
            yield engine  # what the caller does is explained too: a lost host is one line
    finally:
        await engine.dispose()


async def _seed(settings: Settings, *, only_if_empty: bool) -> list[str]:
    from sqlalchemy import func, select

    from api.db.models import Author
    from api.demo import seed_demo_catalog

    async with migrated_engine(settings) as engine:
        if only_if_empty:
            async with engine.connect() as connection:
                if await connection.scalar(select(func.count()).select_from(Author)):
                    return []
        return await seed_demo_catalog(settings, engine)


def cmd_seed(_: argparse.Namespace) -> int:
    names = asyncio.run(_seed(load_settings(), only_if_empty=False))
    print(f"seeded {len(names)} author(s)" + (f": {', '.join(names)}" if names else ""))
    return 0


async def _store_documents(settings: Settings, manifest: "Manifest") -> "Stored":
    """The manifest's documents, stored in one transaction over DATABASE_URL, as `seed` writes."""
    from api.documents.limits import DocumentLimits
    from api.documents.store import register_all

    async with migrated_engine(settings) as engine, engine.begin() as connection:
        return await register_all(
            connection, manifest.documents, limits=settings.options(DocumentLimits)
        )


def cmd_documents_load(args: argparse.Namespace) -> int:
    """One line: how many documents were new, how many were stored already, from which format."""
    from api.documents.errors import DocumentRefused
    from api.documents.limits import DocumentLimits
    from api.documents.manifests import ManifestError, read_manifest

    settings = load_settings()
    try:
        manifest = read_manifest(Path(args.file), settings.options(DocumentLimits))
        stored = asyncio.run(_store_documents(settings, manifest))
    except (ManifestError, DocumentRefused) as error:
        raise CommandFailed(str(error)) from None
    print(
        f"documents: {stored.new} loaded, {stored.existing} already stored, from {args.file}"
        f" ({manifest.format})",
        flush=True,
    )
    return 0


def cmd_export_schema(args: argparse.Namespace) -> int:
    from api.graphql.schema import schema

    text = schema.as_str() + "\n"
    target = Path(args.output)
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is out of date: run python -m api export-schema", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


def _exit_on_signal(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def database_url_configured() -> bool:
    """DATABASE_URL is set, in the environment or in `.env` (names in any case, as the
    settings read them). A `.env` holding only other settings, CORS_ORIGINS say, is the first
    thing a frontend developer writes: it must not switch the embedded database off."""
    if any(name.upper() == "DATABASE_URL" and value for name, value in os.environ.items()):
        return True
    env_file = Path(".env")
    if not env_file.is_file():
        return False
    from dotenv import dotenv_values

    return any(
        name.upper() == "DATABASE_URL" and value for name, value in dotenv_values(env_file).items()
    )


def cmd_dev(args: argparse.Namespace) -> int:
    """Everything a newcomer needs: a database, migrations, demo data, then the server.

    An embedded Postgres started (or adopted) here is stopped however this ends: Ctrl-C,
    SIGTERM, or SIGHUP from a closed terminal, which would otherwise kill the process without
    running its exit hooks and leave the server running.
    """
    for signum in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, _exit_on_signal)
    with ExitStack() as cleanup:
        listener = cleanup.enter_context(_listener(args))
        if not database_url_configured():
            from api.db.embedded import EmbeddedPostgresFailed, embedded_postgres

            data_dir = Path(os.environ.get("EMBEDDED_PGDATA") or EMBEDDED_DATA_DIR)
            try:
                server = cleanup.enter_context(embedded_postgres(data_dir))
            except EmbeddedPostgresFailed as error:
                raise CommandFailed(str(error)) from None
            os.environ["DATABASE_URL"] = server.url
            log.info(EMBEDDED_STATES[server.how], data_dir, server.pid)
        cmd_migrate(args)
        settings = load_settings()
        seeded = asyncio.run(_seed(settings, only_if_empty=True))
        if seeded:
            log.info("seeded the demo catalogue: %s", ", ".join(seeded))
        from api.serving.listen import address

        log.info("GraphiQL at http://%s/graphql", address(listener))
        _serve(settings, listener, stop_on_hangup=True)
    return 0


EMBEDDED_STATES = {
    "started": "started the embedded Postgres in %s (pid %d)",
    "adopted": "reusing the embedded Postgres already running in %s (pid %d), left by a run "
    "that was killed; it stops when this one exits",
    "shared": "sharing the embedded Postgres running in %s (pid %d) with another live run; "
    "the last one to exit stops it",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler, helptext in (
        ("serve", cmd_serve, "serve the API (DATABASE_URL must be set)"),
        ("dev", cmd_dev, "embedded database if none is set, migrate, seed if empty, serve"),
    ):
        command = commands.add_parser(name, help=helptext, description=helptext)
        command.add_argument(
            "--host",
            default="127.0.0.1",
            help="address to listen on (default: %(default)s, this machine only; "
            "0.0.0.0 for every interface)",
        )
        command.add_argument(
            "--port", type=int, default=8000, help="TCP port to listen on (default: %(default)s)"
        )
        command.set_defaults(handler=handler)
    commands.add_parser("migrate", help="apply migrations over the direct connection").set_defaults(
        handler=cmd_migrate
    )
    commands.add_parser("seed", help="load the demo catalogue (idempotent)").set_defaults(
        handler=cmd_seed
    )
    lint = commands.add_parser(
        "lint-migrations", help="lint the revisions' SQL with Squawk and this project's rules"
    )
    lint.add_argument("revisions", nargs="*", metavar="REV", help="revisions (default: all)")
    lint.set_defaults(handler=cmd_lint_migrations)
    diff = commands.add_parser(
        "schema-diff", help="compare the GraphQL schema with schema.graphql at a git ref"
    )
    diff.add_argument("--against", required=True, metavar="REF", help="e.g. HEAD~1, origin/main")
    diff.set_defaults(handler=cmd_schema_diff)
    documents = commands.add_parser("documents", help="persisted documents (trusted documents)")
    documents_actions = documents.add_subparsers(dest="action", required=True)
    load = documents_actions.add_parser(
        "load",
        help="store a manifest's documents: graphql-codegen persisted-documents.json,"
        " Relay's persisted queries or Apollo's persisted-query manifest",
    )
    load.add_argument("file", metavar="FILE", help="the manifest (JSON)")
    load.set_defaults(handler=cmd_documents_load)
    export = commands.add_parser("export-schema", help="write schema.graphql from the code")
    export.add_argument("--output", default=str(SCHEMA_FILE))
    export.add_argument("--check", action="store_true", help="fail if the file is out of date")
    export.set_defaults(handler=cmd_export_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:  # Ctrl-C before serving started: no traceback
        return 128 + signal.SIGINT
    except UnservableDescription as error:  # raised as the catalogue is imported
        raise CommandFailed(f"the catalogue cannot be served: {error}") from None
