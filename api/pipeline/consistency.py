"""Read-your-writes: the consistency token a write hands out and a later read brings back.

After a mutation the response carries the primary's WAL position, read once the write had
committed, in an `X-Consistency-Token` header and a cookie of the same name. A read that
sends either back is served only by a replica that has replayed that far, else by the
primary (`api.db.replicas`). The token is a position, not a secret: a forged one can only
send its own reads to the primary. The cookie is HttpOnly (only this server reads it), sent
to /graphql alone, and lives a few minutes: by then every replica within the lag limit has
long replayed the write.
"""

from dataclasses import dataclass

from starlette.requests import cookie_parser

from api.db.positions import format_lsn, parse_lsn
from api.db.replicas import ReadRouter
from api.graphql.planner.fastpath import Answer, Prepared, serve_planned

TOKEN_NAME = "X-Consistency-Token"  # noqa: S105 (a header's name, and no secret)
TOKEN_HEADER = TOKEN_NAME.lower().encode()
COOKIE_MAX_AGE = 300
COOKIE_PATH = "/graphql"


@dataclass
class Consistency:
    """One HTTP request's view: what its reads must see, and what its writes wrote."""

    after: int | None = None  # a read must see this position (the token, then own writes)
    written: int | None = None

    @classmethod
    def of_request(cls, headers: dict[bytes, bytes]) -> "Consistency":
        """The token from the header, else from the cookie; one that does not parse is none."""
        raw = headers.get(TOKEN_HEADER)
        text = raw.decode("latin-1") if raw is not None else None
        if text is None and b"cookie" in headers:
            text = cookie_parser(headers[b"cookie"].decode("latin-1")).get(TOKEN_NAME)
        return cls(after=parse_lsn(text) if text else None)

    def wrote(self, position: int | None) -> None:
        """A write of this request committed at or before `position`: later reads see it."""
        if position is None:
            return
        self.written = max(self.written or 0, position)
        self.after = max(self.after or 0, position)

    def response_headers(self) -> dict[str, str]:
        if self.written is None:
            return {}
        token = format_lsn(self.written)
        cookie = (
            f"{TOKEN_NAME}={token}; Max-Age={COOKIE_MAX_AGE}; Path={COOKIE_PATH}; "
            "HttpOnly; SameSite=Lax"
        )
        return {TOKEN_NAME: token, "Set-Cookie": cookie}


async def serve_routed(
    router: ReadRouter, prepared: Prepared, consistency: Consistency
) -> Answer | None:
    """`serve_planned` on the endpoint the operation needs: a write on the primary (its
    position noted), a read on a replica the token allows, or on the primary. A read a
    replica failed (gone, or a query cancelled by its replay) is asked of the primary once."""
    if prepared.writes:
        answer = await serve_planned(router.primary.pool, prepared)
        if answer is not None:
            consistency.wrote(await router.write_position())
        return answer
    endpoint = await router.for_read(consistency.after)
    answer = await serve_planned(endpoint.pool, prepared)
    if answer is None and endpoint.replica:
        answer = await serve_planned(router.primary.pool, prepared)
    return answer
