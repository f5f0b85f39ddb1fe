"""GraphiQL is served by the service itself: same-origin assets, integrity hashes, a strict CSP."""

import base64
import glob
import hashlib
import re
import secrets
import tomllib
from html.parser import HTMLParser
from pathlib import Path

from api.graphiql import ASSETS_DIR
from tests.conftest import make_settings, serving
from tests.graphql_client import GraphQLClient

HTML = {"accept": "text/html"}
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


class Page(HTMLParser):
    """Every URL the page loads, each tag's integrity, and its inline scripts and styles."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.loads: list[tuple[str, str | None]] = []
        self.inline: dict[str, list[str]] = {"script": [], "style": []}
        self._open: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = found.get("src") or found.get("href")
        if url is not None:
            self.loads.append((url, found.get("integrity")))
        elif tag in self.inline:
            self._open = tag

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.inline[self._open].append(data)
            self._open = None


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def sha(algorithm: str, data: bytes) -> str:
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


async def test_page_loads_only_same_origin_assets_whose_bytes_match_their_hashes(
    client: GraphQLClient,
) -> None:
    response = await client.http.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = Page(response.text)

    assert len(page.loads) >= 4  # React, ReactDOM, GraphiQL's script and stylesheet at least
    for url, integrity in page.loads:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        assert integrity is not None, url
        assert integrity.startswith("sha384-"), url
        asset = await client.http.get(url)
        assert asset.status_code == 200, url
        assert sha("sha384", asset.content) == integrity, url
        assert "immutable" in asset.headers["cache-control"]
        assert "max-age=31536000" in asset.headers["cache-control"]
    assert "unpkg" not in response.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text)


async def test_page_has_a_csp_that_allows_no_other_origin(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", headers=HTML)
    header = response.headers["content-security-policy"]
    directives = csp_directives(header)
    page = Page(response.text)

    assert directives["default-src"] == ["'none'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    for values in directives.values():
        for value in values:  # keywords, hashes and data: only; no host, scheme or wildcard
            assert value.startswith("'") or value == "data:", (value, header)
    assert "'unsafe-inline'" not in header
    assert "'unsafe-eval'" not in header
    # The inline script and style run because their hashes are listed, and only them.
    for kind, directive in (("script", "script-src"), ("style", "style-src")):
        assert len(page.inline[kind]) == 1, page.inline
        expected = f"'{sha('sha256', page.inline[kind][0].encode())}'"
        hashes = [v for v in directives[directive] if v.startswith("'sha")]
        assert hashes == [expected], (directive, header)


async def test_an_unknown_asset_is_not_found(client: GraphQLClient) -> None:
    assert (await client.http.get("/graphiql/nothing-here.js")).status_code == 404
    assert (await client.http.get("/graphiql/../api/settings.py")).status_code == 404


async def test_production_serves_neither_the_page_nor_its_assets(database_url: str) -> None:
    settings = make_settings(
        database_url, api_env="production", api_token=secrets.token_urlsafe(32)
    )
    async with serving(settings) as production:
        page = await production.http.get("/graphql", headers=HTML)
        assert "graphiql" not in page.text.lower()
        assert page.status_code >= 400
        for path in ASSETS_DIR.rglob("*.js"):
            url = f"/graphiql/{path.relative_to(ASSETS_DIR)}"
            assert (await production.http.get(url)).status_code == 404, url


def test_every_asset_is_package_data() -> None:
    """pyproject's package-data globs, expanded as setuptools does (recursive glob from the
    package directory), cover every vendored file: a wheel ships them, not only a checkout."""
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["api"]
    package_dir = ASSETS_DIR.parents[1]
    shipped = {
        Path(found)
        for pattern in patterns
        for found in glob.glob(str(package_dir / pattern), recursive=True)
    }
    files = {p for p in ASSETS_DIR.rglob("*") if p.is_file()}

    assert ASSETS_DIR / "manifest.json" in files
    assert files <= shipped, sorted(map(str, files - shipped))
