"""The app with a fake live service, served by the project's server class in a process of its
own, so a test can send it a real SIGTERM: `python -m tests.fake_live_server DATABASE_URL`.

It prints the line `python -m api serve` prints once it listens (tests.served reads it).
"""

import sys

import uvicorn

from api.app import create_app
from api.serving.listen import Server, address, bind_listener
from api.settings import Settings
from tests.fake_live import FakeLive, with_live


def main(database_url: str) -> None:
    settings = Settings(_env_file=None, database_url=database_url)
    listener = bind_listener("127.0.0.1", 0)
    server = Server(
        uvicorn.Config(
            with_live(create_app(settings), FakeLive()),
            timeout_graceful_shutdown=30,  # as `serve` has it
            log_config=None,
        )
    )
    # Connections made before the server starts wait in the listener's backlog.
    print(f"Uvicorn running on http://{address(listener)}", file=sys.stderr, flush=True)
    server.run(sockets=[listener])


if __name__ == "__main__":
    main(sys.argv[1])
