"""The part every pure ASGI middleware of ours shares: it acts on HTTP requests alone.

Lifespan and WebSocket scopes pass through untouched, so a middleware only writes what it
does to a request, in `http`.
"""

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class DirectRoute(HttpMiddleware):
    """HTTP requests for `path` go straight to `endpoint`, the innermost step of the stack.

    Starlette's exception middleware and router cost about a tenth of a small request's CPU
    (a context per request, the routes matched in turn), and the front door needs neither: it
    answers every request it takes itself, errors included. Every other request, and a
    WebSocket on the same path, goes on to the router.
    """

    def __init__(self, app: ASGIApp, *, path: str, endpoint: ASGIApp) -> None:
        super().__init__(app)
        self.path = path
        self.endpoint = endpoint

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == self.path:
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)
