"""An embedded Postgres (from the `pgserver` wheel) for laptops with no database configured."""

import warnings
from pathlib import Path
from typing import Any

_servers: list[Any] = []  # keep handles alive: pgserver stops the server when they are collected


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) a Postgres whose data lives in `data_dir`; returns its URL.

    The server listens on a Unix socket only and stops when this process exits.
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
    _servers.append(server)
    return str(server.get_uri())
