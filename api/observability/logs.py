"""Logging set-up: JSON lines for machines, plain text on a terminal, request ids on both.

Log lines carry what clients send (paths, operation names, client names). JSON escapes
control characters itself; text does not, so there a percent-decoded `%0a` in a path would
start a forged line, and ANSI escapes would repaint the operator's terminal. The text
formatter escapes them, and indents tracebacks, so every line that starts at column 0 is a
record the service wrote.
"""

import logging
import sys
import textwrap
from types import TracebackType
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict
from pythonjsonlogger.json import JsonFormatter

from api.observability.request_ids import request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class LogSettings(BaseSettings):
    """Read apart from the main settings: logging must work even when those are invalid."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def _escape(code: int) -> str:
    named = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
    if code in named:
        return named[code]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional
# overrides and isolates that make text read differently from what it holds.
CONTROL_CHARACTERS = [
    *range(0x20),
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
ESCAPES = str.maketrans({code: _escape(code) for code in CONTROL_CHARACTERS})
# Only the newline survives in a traceback; its lines are indented under their record.
TRACEBACK_ESCAPES = str.maketrans(
    {code: _escape(code) for code in CONTROL_CHARACTERS if code != 0x0A}
)


def escape_controls(text: str) -> str:
    """`text` on one line, every control character written as its escape (`\\n`, `\\x1b`)."""
    return text.translate(ESCAPES)


class TextFormatter(logging.Formatter):
    """Plain text in which no client-supplied character can start or repaint a line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        return textwrap.indent(super().formatException(ei).translate(TRACEBACK_ESCAPES), "  ")

    def formatStack(self, stack_info: str) -> str:
        return textwrap.indent(stack_info.translate(TRACEBACK_ESCAPES), "  ")


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the X-Request-ID of the request being served) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


def configure_logging(settings: LogSettings | None = None) -> None:
    settings = settings or LogSettings()
    log_format = settings.log_format
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if use_json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # uvicorn's own access log repeats what api.request logs, without the GraphQL details.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
