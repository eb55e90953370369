"""A local npm registry on loopback: packuments and tarballs of small fixture packages, built in memory.

    python -m sandbox.npmregistry --host 127.0.0.1 --port 4873

It answers what npm asks a registry for an install, `npm outdated` and `npm ci`: `GET /<name>` (a
scoped name as `/@scope%2fname`) → the packument (every version with its tarball's address, sha1
`shasum` and sha512 `integrity`, `dist-tags.latest`), `GET /<name>/-/<file>.tgz` → the tarball.
`POST /-/npm/v1/security/advisories/bulk` (what `npm audit` sends: installed versions by name) → the
`ADVISORIES` of the asked packages. Nothing else (no publish, no search: 404). The tarballs are deterministic (fixed mtimes,
gzip without a timestamp), so lockfiles written against one run of the registry match the next.

`PACKAGES` is the fixture: each package in several versions, so a project pinned to the first ones has a
patch, a minor and a major waiting (`FIXTURE_DEPENDENCIES`; the demo's application leaves out the major).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from sandbox.httpserve import check_loopback, serve

PACKAGES: dict[str, tuple[str, ...]] = {  # name → versions, oldest first (the last is `latest`)
    "em-format": ("1.0.0", "1.0.1", "1.1.0"),      # pinned at 1.0.0: a minor waits (automatic)
    "em-client": ("1.0.0", "1.0.1", "2.0.0"),      # ^1.0.0 at 1.0.0: a patch (automatic) and a major (approval)
    "@em/logfmt": ("2.3.0", "2.3.1"),              # pinned at 2.3.0: a patch (automatic)
}
# what `npm audit` learns from this registry (GitHub advisory shape): em-client below 1.0.1 is vulnerable (high),
# fixed by its patch; @em/logfmt has a low one that no release fixes yet
ADVISORIES: dict[str, list[dict[str, Any]]] = {
    "em-client": [{"id": 1099001, "url": "https://github.com/advisories/GHSA-em00-c11e-0001",
                   "title": "em-client forwards credentials on cross-host redirects", "severity": "high",
                   "vulnerable_versions": "<1.0.1", "cwe": ["CWE-200"], "cvss": {"score": 7.5, "vectorString": None}}],
    "@em/logfmt": [{"id": 1099002, "url": "https://github.com/advisories/GHSA-em00-10f0-0002",
                    "title": "@em/logfmt log injection through newline characters", "severity": "low",
                    "vulnerable_versions": "<=2.3.1", "cwe": ["CWE-117"], "cvss": {"score": 3.1, "vectorString": None}}],
}
FIXTURE_DEPENDENCIES = {"em-format": "1.0.0", "em-client": "^1.0.0", "@em/logfmt": "2.3.0"}  # pinned to old versions
DEMO_DEPENDENCIES = {"em-format": "1.0.0", "@em/logfmt": "2.3.0"}  # no major waiting: a demo run needs no one's approval
FIXTURE_INSTALLED = {name: PACKAGES[name][0] for name in FIXTURE_DEPENDENCIES}  # what the lockfile installs
_MTIME = 1_767_225_600  # 2026-01-01: every file and tarball alike


@dataclass(frozen=True)
class Tarball:
    filename: str
    data: bytes

    @property
    def shasum(self) -> str:
        return hashlib.sha1(self.data, usedforsecurity=False).hexdigest()

    @property
    def integrity(self) -> str:
        return "sha512-" + base64.b64encode(hashlib.sha512(self.data).digest()).decode()


def _tar_entry(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(f"package/{name}")
    info.size, info.mtime, info.mode = len(data), _MTIME, 0o644
    tar.addfile(info, io.BytesIO(data))


@cache
def tarball(name: str, version: str) -> Tarball:
    """The package's tarball: `package/package.json` and `package/index.js` (exports its version)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _tar_entry(tar, "package.json", json.dumps({"name": name, "version": version, "main": "index.js",
                                                    "license": "MIT"}, indent=2) + "\n")
        _tar_entry(tar, "index.js", f"module.exports = {{ name: {json.dumps(name)}, version: {json.dumps(version)} }};\n")
    packed = gzip.compress(raw.getvalue(), mtime=0)
    return Tarball(f"{name.rsplit('/', 1)[-1]}-{version}.tgz", packed)


def packument(name: str, base_url: str) -> dict[str, Any]:
    """The registry document of `name`, its tarballs addressed under `base_url` (`http://127.0.0.1:4873`)."""
    versions = PACKAGES[name]
    out: dict[str, Any] = {"name": name, "dist-tags": {"latest": versions[-1]}, "versions": {}, "time": {}}
    for i, v in enumerate(versions):
        tb = tarball(name, v)
        out["versions"][v] = {"name": name, "version": v, "main": "index.js", "license": "MIT",
                              "dist": {"tarball": f"{base_url}/{name}/-/{tb.filename}", "shasum": tb.shasum,
                                       "integrity": tb.integrity}}
        out["time"][v] = f"2026-0{i + 1}-01T00:00:00.000Z"
    out["time"]["modified"] = out["time"][versions[-1]]
    return out


def project(dependencies: dict[str, str]) -> dict[str, Any]:
    """The application's package.json."""
    return {"name": "event-manager-app", "version": "1.0.0", "private": True, "dependencies": dict(dependencies)}


def lockfile(dependencies: dict[str, str] = FIXTURE_DEPENDENCIES) -> dict[str, Any]:
    """`package-lock.json` (v3) of `project(dependencies)`, each at its first version.

    Without `resolved` addresses (npm takes the tarballs from the configured registry), so one lockfile
    serves whatever port the registry runs on."""
    manifest = project(dependencies)
    packages: dict[str, Any] = {"": {k: manifest[k] for k in ("name", "version", "dependencies")}}
    for name in sorted(dependencies):
        v = PACKAGES[name][0]
        packages[f"node_modules/{name}"] = {"version": v, "integrity": tarball(name, v).integrity, "license": "MIT"}
    return {"name": manifest["name"], "version": manifest["version"], "lockfileVersion": 3, "requires": True,
            "packages": packages}


def npmrc(registry_url: str, cache_dir: str) -> str:
    """The project's `.npmrc`: this registry only, its own cache, no audit / fund / update notices."""
    return (f"registry={registry_url}/\ncache={cache_dir}\naudit=false\nfund=false\nupdate-notifier=false\n")


def make_app(app: Path, registry_url: str, owner: tuple[int, int] | None = None,
             dependencies: dict[str, str] = FIXTURE_DEPENDENCIES) -> Path:
    """The application at `app` (reset): package.json with `dependencies` and its lockfile at their first versions,
    `.npmrc` on this registry (cache beside it: `<app>/../npm-cache`), node_modules from `npm ci`;
    every file owned by `owner` (uid, gid) when given."""
    if app.exists():
        shutil.rmtree(app)
    app.mkdir(parents=True)
    cache_dir = app.parent / "npm-cache"
    (app / "package.json").write_text(json.dumps(project(dependencies), indent=2) + "\n")
    (app / "package-lock.json").write_text(json.dumps(lockfile(dependencies), indent=2) + "\n")
    (app / ".npmrc").write_text(npmrc(registry_url, str(cache_dir)))
    proc = subprocess.run(["npm", "ci", "--prefix", str(app)], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"npm ci of the fixture application failed: {proc.stderr[-500:]}")
    if owner is not None:
        for path in (cache_dir, app):
            for p in (path, *path.rglob("*")):
                os.lchown(p, *owner)
    return app


def route(path: str, base_url: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET of `path` (as the request line has it, percent-encoded)."""
    parts = unquote(urlsplit(path).path).strip("/").split("/")
    scoped = parts[0].startswith("@") and len(parts) >= 2
    name = "/".join(parts[:2]) if scoped else parts[0]
    rest = parts[2:] if scoped else parts[1:]
    if name not in PACKAGES:
        return 404, "application/json", b'{"error":"not found"}'
    if not rest:
        return 200, "application/json", json.dumps(packument(name, base_url)).encode()
    if len(rest) == 2 and rest[0] == "-":
        for v in PACKAGES[name]:
            tb = tarball(name, v)
            if tb.filename == rest[1]:
                return 200, "application/octet-stream", tb.data
    return 404, "application/json", b'{"error":"not found"}'


class Handler(BaseHTTPRequestHandler):
    base_url = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the name BaseHTTPRequestHandler gives it
        """Silent."""

    def do_GET(self) -> None:
        status, ctype, body = route(self.path, self.base_url)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urlsplit(self.path).path.rstrip("/") != "/-/npm/v1/security/advisories/bulk":
            status, out = 404, b'{"error":"not found"}'
        else:
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            asked = json.loads(body or b"{}")
            status, out = 200, json.dumps({n: ADVISORIES[n] for n in asked if n in ADVISORIES}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def package_url(base_url: str, name: str) -> str:
    """The packument's address of `name` (a scoped name's slash encoded, as npm asks for it)."""
    return f"{base_url}/{quote(name, safe='@')}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4873)
    args = parser.parse_args(argv)
    check_loopback(args.host)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    Handler.base_url = f"http://{args.host}:{server.server_address[1]}"
    serve(server, lambda: None)


if __name__ == "__main__":
    main()
