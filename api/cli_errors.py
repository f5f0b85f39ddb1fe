"""One line instead of a traceback when a command cannot do its work for a known reason."""

from collections.abc import Iterator
from contextlib import contextmanager

from api.db.unreachable import connect_failure, host_of
from api.db.urls import DatabaseTarget

NOT_MIGRATED = "the database is not migrated: run python -m api migrate"


class CommandFailed(SystemExit):
    """Exit status 1, with one line on stderr that says what went wrong and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(f"error: {message}")


def server_name(target: DatabaseTarget) -> str:
    host = target.url.host or target.connect_args.get("host")
    return host_of(host, target.url.port or target.connect_args.get("port"))


@contextmanager
def explained(target: DatabaseTarget) -> Iterator[None]:
    """A failure to reach `target` becomes one line naming it and the cause."""
    try:
        yield
    except Exception as error:
        message = connect_failure(error, server_name(target))
        if message is None:
            raise
        raise CommandFailed(message) from None
