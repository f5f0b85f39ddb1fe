"""GraphiQL served from this service alone: no CDN, so it works offline and behind firewalls.

The assets are vendored under api/vendor/graphiql/ by scripts/vendor_graphiql.py (versions
pinned by Strawberry's own page, each with its SRI hash in manifest.json). The page carries
a Content-Security-Policy that allows nothing from another origin: scripts and styles from
this origin with a matching integrity hash, plus the page's own inline script and style
by their sha256, fonts inlined as data: URLs, and requests to this origin only.
"""

import base64
import hashlib
import json
from functools import cache
from html import escape
from pathlib import Path

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

ASSETS_DIR = Path(__file__).parent / "vendor" / "graphiql"
ASSETS_PATH = "/graphiql"
# The URLs carry the package version, so a file under one URL never changes.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"

STYLE = "body { margin: 0; } #graphiql { height: 100vh; }"

# Runs in the browser once the vendored scripts have defined React, ReactDOM, GraphiQL and
# GraphiQLPluginExplorer.
BOOT = """
const DEFAULT_QUERY = `# The catalogue API. Run with Ctrl-Enter or the play button.
# Schema and documentation: the book icon on the left.
{
  authors(first: 5, orderBy: NAME_ASC) {
    totalCount
    edges { node { id name country books(first: 3) { edges { node { title } } } } }
  }
}
`;
const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
const explorer = GraphiQLPluginExplorer.explorerPlugin();
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: DEFAULT_QUERY,
    plugins: [explorer],
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
  }),
);
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        f"script-src 'self' {_sha256(BOOT)}",
        f"style-src 'self' {_sha256(STYLE)}",
        "font-src 'self' data:",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@cache
def assets() -> list[dict[str, str]]:
    """The vendored files in load order, with their integrity hashes."""
    manifest = json.loads((ASSETS_DIR / "manifest.json").read_text())
    listed: list[dict[str, str]] = manifest["assets"]
    return listed


def _tag(asset: dict[str, str]) -> str:
    url = escape(f"{ASSETS_PATH}/{asset['file']}")
    integrity = escape(asset["integrity"])
    if asset["file"].endswith(".css"):
        return f'<link rel="stylesheet" href="{url}" integrity="{integrity}">'
    return f'<script src="{url}" integrity="{integrity}"></script>'


@cache
def page_html() -> str:
    tags = "\n    ".join(_tag(asset) for asset in assets())
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Catalogue API · GraphiQL</title>
    <style>{STYLE}</style>
    {tags}
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script>{BOOT}</script>
  </body>
</html>
"""


def graphiql_page() -> Response:
    return HTMLResponse(
        page_html(),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


class GraphiQLAssets:
    """The vendored files, cached for a year (their URLs hold their versions)."""

    def __init__(self) -> None:
        self.files = StaticFiles(directory=ASSETS_DIR)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (200, 304):
                message["headers"] = [
                    *message.get("headers", []),
                    (b"cache-control", ASSET_CACHE_CONTROL.encode()),
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        await self.files(scope, receive, send_with_headers)
