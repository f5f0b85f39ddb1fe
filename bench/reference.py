"""The reference: the least work a server can do to answer W1-W3 and W6, for comparison.

A Starlette app on one uvicorn worker (uvloop and httptools when uvicorn picks them, as for the
API) with an asyncpg pool. It takes the same request bodies as the API at POST /graphql, picks
the workload by `operationName`, runs ONE SQL statement that builds the whole response with
json_build_object/json_agg, and sends Postgres's text unchanged inside {"data": ...}.

    python -m bench.reference --port 8001 --database-url postgresql://postgres@127.0.0.1/db
"""

import argparse
import base64
import binascii
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

POOL_SIZE = 10  # the API's default DB_POOL_SIZE

# One author's first ten books, as W1-W3 select them: {"edges": [{"node": {id, title}}]}.
_BOOKS = """
json_build_object('edges', (
    SELECT coalesce(json_agg(json_build_object('node', json_build_object(
               'id', encode(convert_to('Book:' || bk.id, 'UTF8'), 'base64'),
               'title', bk.title)) ORDER BY bk.id), '[]'::json)
    FROM (SELECT id, title FROM books WHERE author_id = a.id ORDER BY id LIMIT 10) AS bk))
"""

_AUTHOR_FIELDS = f"""
    'id', encode(convert_to('Author:' || a.id, 'UTF8'), 'base64'),
    'name', a.name,
    'country', a.country,
    'books', {_BOOKS}
"""

# W1 and W3: $1 authors by id, each with its books.
AUTHORS_SQL = f"""
SELECT json_build_object('authors', json_build_object('edges', coalesce(
    json_agg(json_build_object('node', json_build_object({_AUTHOR_FIELDS})) ORDER BY a.id),
    '[]'::json)))::text
FROM (SELECT id, name, country FROM authors ORDER BY id LIMIT $1) AS a
"""  # noqa: S608 - constant fragments only; values are bind parameters

# W2: the author with id $1 (null when there is none).
AUTHOR_SQL = f"""
SELECT json_build_object('author', (
    SELECT json_build_object({_AUTHOR_FIELDS}) FROM authors AS a WHERE a.id = $1))::text
"""  # noqa: S608 - constant fragments only; values are bind parameters

# W6: the author with id $1 and $2 of their books after book id $3 (0: from the start).
AUTHOR_BOOKS_PAGE_SQL = """
SELECT json_build_object('author', (
    SELECT json_build_object(
        'id', encode(convert_to('Author:' || a.id, 'UTF8'), 'base64'),
        'name', a.name,
        'country', a.country,
        'books', json_build_object('edges', (
            SELECT coalesce(json_agg(json_build_object('node', json_build_object(
                       'id', encode(convert_to('Book:' || bk.id, 'UTF8'), 'base64'),
                       'title', bk.title)) ORDER BY bk.id), '[]'::json)
            FROM (SELECT id, title FROM books WHERE author_id = a.id AND id > $3
                  ORDER BY id LIMIT $2) AS bk)))
    FROM authors AS a WHERE a.id = $1))::text
"""

AUTHORS_PAGE = {"W1": 100, "W3": 1000}


class BadRequest(Exception):
    pass


def author_key(variables: object) -> int:
    """The integer key inside W2's `id` variable ("Author:<id>" in base64)."""
    value = variables.get("id") if isinstance(variables, dict) else None
    if not isinstance(value, str):
        raise BadRequest("W2 and W6 need variables.id")
    try:
        type_name, _, key = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("variables.id is not a global id") from None
    if type_name != "Author" or not key.isdigit():
        raise BadRequest("variables.id is not an author's id")
    return int(key)


def after_book(cursor: object) -> int:
    """The book id in W6's `after` cursor (base64url of "ID_ASC:<id>:<id>"); 0 for none."""
    if cursor is None:
        return 0
    if not isinstance(cursor, str):
        raise BadRequest("variables.after is not a cursor")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("variables.after is not a cursor") from None
    ordering, _, key = text.partition(":")
    book_id = key.partition(":")[0]
    if ordering != "ID_ASC" or not book_id.isdigit():
        raise BadRequest("variables.after is not a cursor of books by id")
    return int(book_id)


def page_size(variables: object) -> int:
    value = variables.get("first") if isinstance(variables, dict) else None
    if not isinstance(value, int) or not 0 <= value <= 100:
        raise BadRequest("W6 needs variables.first from 0 to 100")
    return value


def create_app(database_url: str, pool_size: int = POOL_SIZE) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Any]]:
        pool = await asyncpg.create_pool(database_url, min_size=pool_size, max_size=pool_size)
        try:
            yield {"pool": pool}
        finally:
            await pool.close()

    async def graphql(request: Request) -> Response:
        pool: asyncpg.Pool = request.state.pool
        try:
            payload = json.loads(await request.body())
            operation = payload.get("operationName") if isinstance(payload, dict) else None
            if operation in AUTHORS_PAGE:
                text = await pool.fetchval(AUTHORS_SQL, AUTHORS_PAGE[operation])
            elif operation == "W2":
                text = await pool.fetchval(AUTHOR_SQL, author_key(payload.get("variables")))
            elif operation == "W6":
                variables = payload.get("variables")
                after = after_book(variables.get("after") if isinstance(variables, dict) else None)
                text = await pool.fetchval(
                    AUTHOR_BOOKS_PAGE_SQL, author_key(variables), page_size(variables), after
                )
            else:
                raise BadRequest(f"the reference answers W1, W2, W3 and W6, not {operation!r}")
        except (BadRequest, ValueError) as error:
            return JSONResponse({"errors": [{"message": str(error)}]}, status_code=400)
        return Response(b'{"data":' + str(text).encode() + b"}", media_type="application/json")

    async def healthz(request: Request) -> Response:
        pool: asyncpg.Pool = request.state.pool
        await pool.fetchval("SELECT 1")
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reference", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pool-size", type=int, default=POOL_SIZE)
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.database_url, args.pool_size),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
