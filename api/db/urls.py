"""Turn connection strings as people paste them into what asyncpg understands.

Neon's console shows libpq URLs (`postgresql://…?sslmode=require&channel_binding=require`).
SQLAlchemy hands URL query parameters to `asyncpg.connect()` as keyword arguments, and asyncpg
rejects libpq names such as `sslmode`, so each libpq parameter is translated here or refused
with a message that says what to change.
"""

import re
import shlex
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from sqlalchemy.engine import URL, make_url

ACCEPTED_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq parameters that asyncpg has no use for and that change nothing for this service.
IGNORED_PARAMETERS = frozenset({"channel_binding", "gssencmode", "target_session_attrs"})
NEON_POOLER = re.compile(r"^(?P<endpoint>[^.]+)-pooler(?P<rest>\..*\.neon\.tech)$", re.IGNORECASE)


class InvalidDatabaseUrl(ValueError):
    """A connection string that cannot be used, with the reason in plain words."""


@dataclass(frozen=True)
class DatabaseTarget:
    """An asyncpg URL plus the keyword arguments `asyncpg.connect()` needs for it."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)
    pooled: bool = False

    @property
    def host(self) -> str:
        return str(self.url.host or self.connect_args.get("host", ""))

    def render(self) -> str:
        """The URL with its password hidden, for logs and error messages."""
        return self.url.render_as_string(hide_password=True)


def is_neon_pooler_host(host: str | None) -> bool:
    return bool(host and NEON_POOLER.match(host))


def parse_database_url(raw: str, *, pooled: bool | None = None) -> DatabaseTarget:
    """Parse and translate `raw`; `pooled` overrides the detection of a Neon pooler host."""
    text = raw.strip()
    scheme, _, _ = text.partition("://")
    if not _ or scheme.lower() not in ACCEPTED_SCHEMES:
        raise InvalidDatabaseUrl(
            f"is not a postgres URL (expected postgresql://user:pass@host/db, got {scheme!r})"
        )
    try:
        url = make_url(text)
    except Exception:
        raise InvalidDatabaseUrl("could not be parsed as a URL") from None
    if not url.database:
        raise InvalidDatabaseUrl("names no database (add /dbname after the host)")

    connect_args: dict[str, Any] = {}
    server_settings: dict[str, str] = {}
    for name, value in _query_items(text):
        _translate(name, value, connect_args, server_settings)
    if server_settings:
        connect_args["server_settings"] = server_settings
    if not url.host and "host" not in connect_args:
        raise InvalidDatabaseUrl("names no host (postgresql://user:pass@HOST/db)")

    detected = is_neon_pooler_host(url.host)
    return DatabaseTarget(
        url=url.set(drivername="postgresql+asyncpg", query={}),
        connect_args=connect_args,
        pooled=detected if pooled is None else pooled,
    )


def direct_url_for(raw: str) -> str:
    """The direct (unpooled) URL for a Neon pooled URL; any other URL unchanged."""
    parts = urlsplit(raw.strip())
    credentials, at, location = parts.netloc.rpartition("@")
    host, colon, port = location.partition(":")
    match = NEON_POOLER.match(host)
    if not match:
        return raw
    direct = match["endpoint"] + match["rest"] + colon + port
    return urlunsplit(parts._replace(netloc=credentials + at + direct))


def _query_items(text: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(text).query, keep_blank_values=True)


def _translate(
    name: str, value: str, connect_args: dict[str, Any], server_settings: dict[str, str]
) -> None:
    if name in IGNORED_PARAMETERS:
        return
    if name in ("sslmode", "ssl"):
        mode = "require" if value.lower() in ("true", "1") else value.lower()
        if mode not in SSL_MODES:
            raise InvalidDatabaseUrl(f"has sslmode={value!r}; use one of {', '.join(SSL_MODES)}")
        connect_args["ssl"] = mode
    elif name == "connect_timeout":
        try:
            connect_args["timeout"] = float(value)
        except ValueError:
            raise InvalidDatabaseUrl(f"has connect_timeout={value!r}; use seconds") from None
    elif name == "application_name":
        server_settings["application_name"] = value
    elif name == "options":
        server_settings.update(_parse_options(value))
    elif name == "host":
        connect_args["host"] = value
    elif name == "port":
        if not value.isascii() or not value.isdigit() or not 0 < int(value) < 65536:
            raise InvalidDatabaseUrl(f"has port={value!r}; use a number from 1 to 65535")
        connect_args["port"] = int(value)
    else:
        raise InvalidDatabaseUrl(
            f"has the parameter {name!r}, which this service does not support; remove it"
        )


def _parse_options(value: str) -> dict[str, str]:
    """libpq `options=-c key=value …` become asyncpg server settings.

    Neon's `endpoint=` option (for clients without SNI) is dropped: asyncpg sends SNI.
    """
    settings: dict[str, str] = {}
    words = shlex.split(value)
    for index, word in enumerate(words):
        if word.startswith("endpoint="):
            continue
        if word == "-c" and index + 1 < len(words):
            key, _, setting = words[index + 1].partition("=")
            settings[key] = setting
        elif word.startswith("-c") and len(word) > 2:
            key, _, setting = word[2:].partition("=")
            settings[key] = setting
    return settings
