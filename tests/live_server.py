"""The app served by the project's own server class on a real socket, for the live tests:
with its own live service, a fake one (tests/fake_live.py) or none."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn

from api.app import create_app
from api.serving.listen import Server, address, bind_listener
from api.serving.protocol import BoundedHttpToolsProtocol, HttpLimits
from tests.conftest import make_settings
from tests.fake_live import PATIENCE, FakeLive, with_live

OWN: Literal["own"] = "own"  # the app's own live service


@dataclass
class Running:
    server: Server
    base: str  # host:port

    @property
    def ws_url(self) -> str:
        return f"ws://{self.base}/graphql"

    @property
    def http_url(self) -> str:
        return f"http://{self.base}/graphql"


@asynccontextmanager
async def served_app(
    database_url: str, live: FakeLive | Literal["own"] | None = OWN, **overrides: Any
) -> AsyncIterator[Running]:
    settings = make_settings(
        database_url,
        **{"live_heartbeat_seconds": 60.0, "live_init_timeout_seconds": 60.0, **overrides},
    )
    app = create_app(settings)
    server = Server(
        uvicorn.Config(
            app if isinstance(live, str) else with_live(app, live),
            http=BoundedHttpToolsProtocol.with_limits(settings.options(HttpLimits)),
            log_config=None,
            lifespan="on",
        )
    )
    listener = bind_listener("127.0.0.1", 0)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            assert not serving.done(), "the server did not start"
            await asyncio.sleep(0.01)
        yield Running(server, address(listener))
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, PATIENCE * 3)
