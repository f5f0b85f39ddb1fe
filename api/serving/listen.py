"""The listening socket, made before anything else starts.

uvicorn binds only after the app's lifespan has started, then logs the failure and the
lifespan's shutdown on several lines and exits 3. Binding first makes a taken port one line
and status 1, before an embedded database is started or migrations run.
"""

import errno
import logging
import socket

import uvicorn

from api.cli_errors import CommandFailed
from api.live.streams import shut_down

log = logging.getLogger("uvicorn.error")


BACKLOG = 2048  # uvicorn's default
LIVE_GOODBYE_SECONDS = 5.0  # how long live connections get to close before uvicorn's shutdown


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket listening on `host:port` (port 0: one the kernel picks).

    It listens at once, though nothing accepts until the server starts: two sockets with
    SO_REUSEADDR may both bind one port while neither listens, so only listening makes the
    port ours. Connections made meanwhile wait in the backlog and are served once it starts.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        listener.bind((host, port))
        listener.listen(BACKLOG)
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise CommandFailed(
                f"port {port} on {host} is already in use; "
                "choose another with PORT=… (make run) or --port"
            ) from None
        raise CommandFailed(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return listener


def address(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Server(uvicorn.Server):
    """uvicorn's server on sockets bound beforehand, still saying where it listens.

    uvicorn stays quiet about sockets it was handed (a process manager bound them and said
    so); here nobody else has, and tests and people read the line to find the port.
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and sockets:
            log.info("Uvicorn running on http://%s (Press CTRL+C to quit)", address(sockets[0]))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Live subscriptions end first, each closed the way its client resumes from (1001,
        or an SSE stream's end): uvicorn's own shutdown would close WebSockets with 1012
        and wait out every open event stream."""
        for server in self.servers:
            server.close()  # no new connections meanwhile (uvicorn's shutdown does it too)
        state = getattr(self.lifespan, "state", None) or {}
        if not await shut_down(state, LIVE_GOODBYE_SECONDS):
            log.warning("Live connections still open after %s s", LIVE_GOODBYE_SECONDS)
        await super().shutdown(sockets)
