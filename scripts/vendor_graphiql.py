"""Fetch GraphiQL's assets from the npm registry into api/vendor/graphiql/, with their hashes.

The versions are the ones Strawberry's own GraphiQL page pins (read from the installed
strawberry package), so upgrading Strawberry and running this again keeps the two in step;
the bytes must match the integrity hashes Strawberry's page carries for them.

    python scripts/vendor_graphiql.py            # fetch, check, write files and manifest.json
    python scripts/vendor_graphiql.py --check    # fetch and compare with what is committed

Needs `npm` (only `npm pack`: nothing is installed). Every package must be MIT-licensed; its
licence file is kept next to its files.
"""

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import strawberry

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TARGET = PROJECT_ROOT / "api" / "vendor" / "graphiql"
STRAWBERRY_PAGE = Path(strawberry.__file__).parent / "static" / "graphiql.html"
ALLOWED_LICENCE = "MIT"
# Strawberry's page loads these from unpkg as https://unpkg.com/<package>@<version>/<path>.
UNPKG = re.compile(
    r'(?:src|href)="https://unpkg\.com/(?P<package>@?[^@"]+)@(?P<version>[^/"]+)/(?P<path>[^"]+)"'
    r'\s+integrity="(?P<integrity>sha384-[^"]+)"'
)
# js-cookie only reads Django's CSRF cookie in Strawberry's page; this service has none.
NOT_NEEDED = frozenset({"js-cookie"})
# Bundled inside @graphiql/plugin-explorer's UMD file; fetched for its licence only.
BUNDLED_LICENCES = {"@graphiql/plugin-explorer": "graphiql-explorer@0.9.0"}
# The plugin lives in GraphiQL's repository and its package ships no licence file of its own.
LICENCE_FROM = {"@graphiql/plugin-explorer": "graphiql"}


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    path: str
    integrity: str

    @property
    def directory(self) -> str:
        """`graphiql@3.8.3`; a scope becomes part of the name (`graphiql-plugin-explorer@1.0.2`)."""
        return f"{self.package.lstrip('@').replace('/', '-')}@{self.version}"

    @property
    def file(self) -> str:
        return f"{self.directory}/{Path(self.path).name}"


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def strawberry_pins() -> list[Pin]:
    text = STRAWBERRY_PAGE.read_text()
    pins = [Pin(**match.groupdict()) for match in UNPKG.finditer(text)]
    if not pins:
        raise SystemExit(f"no unpkg assets found in {STRAWBERRY_PAGE}: has its layout changed?")
    return [pin for pin in pins if pin.package not in NOT_NEEDED]


def npm_pack(spec: str, into: Path) -> tuple[dict[str, object], dict[str, bytes]]:
    """The package's package.json and its files (path -> bytes), fetched with `npm pack`."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed: apt-get install npm")
    done = subprocess.run(  # noqa: S603 (our own arguments: a pinned package spec)
        [npm, "pack", spec, "--json", "--pack-destination", str(into)],
        check=True,
        capture_output=True,
        text=True,
    )
    filename = Path(json.loads(done.stdout)[0]["filename"]).name
    with tarfile.open(into / filename) as tarball:
        contents = {
            member.name.removeprefix("package/"): extracted.read()
            for member in tarball.getmembers()
            if member.isfile() and (extracted := tarball.extractfile(member)) is not None
        }
    meta: dict[str, object] = json.loads(contents["package.json"])
    return meta, contents


def read(contents: dict[str, bytes], spec: str, path: str) -> bytes:
    if path not in contents:
        raise SystemExit(f"{spec} has no {path}")
    return contents[path]


def licence_text(meta: dict[str, object], contents: dict[str, bytes]) -> bytes | None:
    if meta.get("license") != ALLOWED_LICENCE:
        raise SystemExit(f"{meta['name']} is licensed {meta.get('license')!r}, not MIT")
    for name in ("LICENSE", "LICENSE.md", "LICENSE.txt", "license"):
        if name in contents:
            return contents[name]
    return None


def fetch(scratch: Path) -> dict[str, bytes]:
    """Relative path under api/vendor/graphiql/ -> bytes, manifest.json included."""
    files: dict[str, bytes] = {}
    licences: dict[str, bytes] = {}
    assets = []
    pins = strawberry_pins()
    for pin in pins:
        spec = f"{pin.package}@{pin.version}"
        meta, contents = npm_pack(spec, scratch)
        data = read(contents, spec, pin.path)
        if sri(data) != pin.integrity:
            raise SystemExit(f"{pin.package}@{pin.version}/{pin.path} differs from Strawberry's")
        files[pin.file] = data
        text = licence_text(meta, contents)
        if text is not None:
            licences[pin.package] = text
        assets.append({**pin.__dict__, "file": pin.file, "licence": ALLOWED_LICENCE})
    for pin in pins:
        text = licences.get(pin.package) or licences.get(LICENCE_FROM.get(pin.package, ""))
        if text is None:
            raise SystemExit(f"no licence file for {pin.package}")
        files[f"{pin.directory}/LICENSE"] = text
        bundled = BUNDLED_LICENCES.get(pin.package)
        if bundled:
            meta, contents = npm_pack(bundled, scratch)
            inner = licence_text(meta, contents)
            if inner is None:
                raise SystemExit(f"no licence file for {bundled}")
            files[f"{pin.directory}/LICENSE.{meta['name']}"] = inner
    manifest = {
        "source": "npm registry, versions pinned by Strawberry's GraphiQL page",
        "strawberry": strawberry_version(),
        "assets": assets,
    }
    files["manifest.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


def strawberry_version() -> str:
    from importlib.metadata import version

    return version("strawberry-graphql")


def committed() -> dict[str, bytes]:
    return {
        str(path.relative_to(TARGET)): path.read_bytes()
        for path in sorted(TARGET.rglob("*"))
        if path.is_file()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vendor-graphiql-") as name:
        fetched = fetch(Path(name))
    if args.check:
        have = committed()
        differing = sorted(
            set(have) ^ set(fetched) | {p for p in have if have.get(p) != fetched.get(p)}
        )
        for path in differing:
            print(f"differs: {path}", file=sys.stderr)
        return 1 if differing else 0
    shutil.rmtree(TARGET, ignore_errors=True)
    for path, data in fetched.items():
        (TARGET / path).parent.mkdir(parents=True, exist_ok=True)
        (TARGET / path).write_bytes(data)
        print(f"{len(data):>9} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
