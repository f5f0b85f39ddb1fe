"""The ASGI messages of a JSON reply, for the places that answer below Starlette's responses."""

from starlette.types import Message


def json_start(status: int, length: int) -> Message:
    """`http.response.start` for a JSON body of `length` bytes."""
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
        ],
    }
