"""Stand-in for the Event Manager API and worker, with fault injection.

Run: ``python -m sandbox.standin --port 0 --log-file api.log [--state-file s.json]``. SIGHUP, or
``POST /_control/reopen-logs``, reopens the log file (after a rotation renamed it).
With ``--tls-port PORT --tls-dir DIR`` it also serves HTTPS on PORT, the certificate chosen by SNI from
``DIR/<server_name>.pem`` + ``.key`` (``DIR/default.pem`` for any other name); ``POST /_control/reload-tls``
re-reads them (after a renewal), all or nothing.

It also serves what the documentation and support checks read: ``/openapi.json`` (the API description),
``/CHANGELOG.md``, ``/docs/<name>`` and ``/support/tickets`` (standing in for the helpdesk's API). ``/health``
answers the version (``--version``; ``POST /_control/version`` is a deploy), the uptime and the RSS, to which
``POST /_control/leak`` adds a simulated leak.
"""

import argparse
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from sandbox.httpserve import check_loopback, serve

STARTED = time.monotonic()  # the process' start, near enough: /health's uptime counts from it
VERSION = "1.4.2"


def default_tickets(started: datetime) -> list[dict[str, Any]]:
    """The helpdesk's queue at start, as Zendesk answers it: an urgent (critical) ticket open for 6 h before the
    start, a high one open for 1 h, and a solved urgent one."""
    def at(hours: float) -> str:
        return (started - timedelta(hours=hours)).isoformat(timespec="seconds").replace("+00:00", "Z")

    return [
        {"id": 812, "subject": "Cannot publish event", "priority": "urgent", "status": "open", "created_at": at(6)},
        {"id": 815, "subject": "Ticket export shows wrong seat count", "priority": "high", "status": "open",
         "created_at": at(1)},
        {"id": 790, "subject": "Login page down", "priority": "urgent", "status": "solved", "created_at": at(30)},
    ]


DEFAULT_STATE: dict[str, Any] = {
    "latency_ms": 0, "api_unhealthy": False, "worker_crashed": False,
    "restarts": 0, "last_restart": None, "cache_clears": 0, "requests": 0,
    "stopped": [], "restart_broken": False, "failing": {}, "broken_versions": {}, "log_reopens": 0,
    "tls_reloads": 0, "leak_bytes_per_min": 0, "version": VERSION, "tickets": default_tickets(datetime.now(UTC)),
    "docs": ["getting-started", "api"],
}
EVENTS = [
    {"id": 1, "name": "Spring Gala", "date": "2025-04-12", "seats": 120},
    {"id": 2, "name": "Tech Meetup", "date": "2025-05-03", "seats": 60},
    {"id": 3, "name": "Charity Run", "date": "2025-06-21", "seats": 500},
]
COMPONENTS = ("api", "worker", "all")
_EVENT = re.compile(r"/api/events/([^/]+)")
#: The API description /openapi.json serves: the events routes, and one route the stand-in does not serve.
OPENAPI_PATHS: dict[str, Any] = {
    "/api/events": {"get": {"summary": "List the events", "responses": {"200": {"description": "The events"}}}},
    "/api/events/{id}": {"get": {
        "summary": "One event",
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "The event"}, "404": {"description": "No such event"}}}},
    "/api/events/{id}/attendees": {"get": {  # documented, not served: what the documentation check reports
        "summary": "The attendees of an event", "responses": {"200": {"description": "The attendees"}}}},
}
CHANGELOG = """# Changelog

All notable changes to the Event Manager are documented in this file (Keep a Changelog, Semantic Versioning).

## [Unreleased]

## [1.4.2] - 2026-11-30

### Fixed
- Seat counts of recurring events.

## [1.4.1] - 2026-11-12

### Fixed
- Event dates shown in the visitor's time zone.
"""
#: A path segment that names one record: a number, or a hex id (ObjectId, UUID, digest) with at least one digit.
_ID_SEGMENT = re.compile(r"\d+|(?=[0-9a-fA-F-]*\d)[0-9a-fA-F]{8}[0-9a-fA-F-]*")


def utc_ts() -> str:
    """Current UTC time as ISO-8601 with milliseconds and a ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def route_of(path: str) -> str:
    """The path with its id segments masked, e.g. ``/api/events/42`` -> ``/api/events/:id``."""
    return "/".join(":id" if _ID_SEGMENT.fullmatch(part) else part for part in path.split("/"))

class Text(NamedTuple):
    """A response body that is not JSON."""

    content_type: str
    text: str


def rss_bytes() -> int:
    """This process' resident set size, from /proc/self/statm (pages × page size); 0 where there is none."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def health(service: str, state: dict[str, Any]) -> dict[str, Any]:
    """A healthy answer like a Node app's: version, `process.uptime()` and `process.memoryUsage().rss` (plus the
    simulated leak: `leak_bytes_per_min` for every minute of uptime)."""
    uptime = time.monotonic() - STARTED
    rss = rss_bytes() + int(state["leak_bytes_per_min"] * uptime / 60)
    return {"status": "ok", "service": service, "version": state["version"], "uptime": round(uptime, 3),
            "memory": {"rss": rss}}


class Store:
    """Thread-safe state with optional JSON persistence and a JSON-lines log."""

    def __init__(self, log_file: Path, state_file: Path | None, defaults: dict[str, Any] | None = None) -> None:
        self.lock = threading.Lock()
        self.state_file = state_file
        self.defaults = dict(defaults if defaults is not None else DEFAULT_STATE)
        self.state: dict[str, Any] = dict(self.defaults)
        if state_file is not None and state_file.exists():  # its version (a deploy) wins over --version
            loaded = json.loads(state_file.read_text(encoding="utf-8") or "{}")
            self.state.update({k: v for k, v in loaded.items() if k in self.defaults})
        self.log_file = log_file
        self.log = log_file.open("a", encoding="utf-8")

    def update(self, bump: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
        """Set ``changes``, add 1 to each counter in ``bump``, persist; return the new state."""
        with self.lock:
            self.state.update(changes)
            for key in bump:
                self.state[key] += 1
            if self.state_file is not None:
                tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
                tmp.write_text(json.dumps(self.state), encoding="utf-8")
                os.replace(tmp, self.state_file)
            return dict(self.state)

    def write_log(self, entry: dict[str, Any]) -> None:
        """Append one JSON line to the log and flush."""
        with self.lock:
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()

    def reopen_log(self) -> dict[str, Any]:
        """Close the log and open its path again (a rotation renamed it); count it; return the new state.

        Under the lock that every log write takes: each line lands in the old file or the new one."""
        with self.lock:
            self.log.flush()
            self.log.close()
            self.log = self.log_file.open("a", encoding="utf-8")
        return self.update(bump=("log_reopens",))

    def close_log(self) -> None:
        """Close the log for good (at exit)."""
        with self.lock:
            self.log.close()


class Database:
    """Optional MongoDB behind the stand-in: /health pings it, /api/events reads from it."""

    def __init__(self, uri: str, name: str) -> None:
        import pymongo  # only when the stand-in is given a database

        self.client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000,
                                                                                connectTimeoutMS=2000)
        self.db = self.client[name]

    def healthy(self) -> bool:
        from pymongo.errors import PyMongoError

        try:
            self.db.command("ping")
            return True
        except PyMongoError:
            return False

    def events(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in doc.items() if k != "_id"} for doc in self.db["events"].find({}, limit=20)]


class TlsLoadError(Exception):
    """A certificate or key file of the TLS directory cannot be served (the message names the file)."""


def _tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context presenting the chain in `cert` with the key in `key`; TlsLoadError naming the bad file."""
    from cryptography import x509  # only when the stand-in serves TLS
    from cryptography.hazmat.primitives import serialization

    for path in (cert, key):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TlsLoadError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
        try:
            if path is cert:
                x509.load_pem_x509_certificates(data)
            else:
                serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            what = "a PEM certificate" if path is cert else "an unencrypted PEM private key"
            raise TlsLoadError(f"{path}: not {what} ({exc})") from exc
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # security level 0: the sandbox must be able to serve the weak certificates (RSA 1024) the check reports
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise TlsLoadError(f"{key}: does not match the certificate in {cert} ({exc.reason or exc})") from exc
    return ctx


class TlsCertificates:
    """The contexts served by SNI: `DIR/<server_name>.pem` + `.key`, `DIR/default.pem` + `.key` for any other name
    (or no SNI). Loaded all at once; a load that fails on any file keeps the previous set."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        self.by_name: dict[str, ssl.SSLContext] = {}
        self.load()

    def load(self) -> list[str]:
        """Read every certificate of the directory; swap them in only when all load (else TlsLoadError naming each
        bad file). The names served."""
        contexts, broken = {}, []
        for cert in sorted(p for p in self.directory.glob("*.pem") if not p.name.startswith(".")):
            try:
                contexts[cert.stem.lower()] = _tls_context(cert, cert.with_suffix(".key"))
            except TlsLoadError as exc:
                broken.append(str(exc))
        if "default" not in contexts and not (self.directory / "default.pem").exists():
            broken.append(f"{self.directory / 'default.pem'}: missing (served when the name asked for has no "
                          "certificate of its own)")
        if broken:
            raise TlsLoadError("; ".join(broken))
        for ctx in contexts.values():
            ctx.sni_callback = self._pick
        with self.lock:
            self.by_name = contexts
        return sorted(contexts)

    def _pick(self, sock: ssl.SSLSocket | ssl.SSLObject, server_name: str | None, _initial: ssl.SSLContext) -> None:
        if server_name and (ctx := self.by_name.get(server_name.lower().rstrip("."))) is not None:
            sock.context = ctx

    def wrap(self, conn: socket.socket) -> ssl.SSLSocket:
        """The accepted connection with the contexts current now; its handshake is left to its handler's thread."""
        with self.lock:
            default = self.by_name["default"]
        return default.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)


class TlsServer(ThreadingHTTPServer):
    """The same routes over HTTPS: each accepted connection wrapped with the current certificates."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], certs: TlsCertificates) -> None:
        self.certs = certs
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        return self.certs.wrap(conn), addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)  # in the connection's own thread: a client that never says hello holds only it
        request.do_handshake()
        request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError | TimeoutError):
            return  # a client that refused the certificate (what a chain check does) or hung up: not our error
        super().handle_error(request, client_address)


def dpkg_installed(status: str) -> dict[str, str]:
    """name → version of the installed packages of a dpkg status file."""
    out = {}
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields and "Version" in fields:
            out[fields["Package"]] = fields["Version"]
    return out


def npm_installed(lockfile: str) -> dict[str, str]:
    """name → version of the top-level dependencies of a package-lock.json (v2/v3)."""
    packages = json.loads(lockfile or "{}").get("packages", {})
    return {key.removeprefix("node_modules/"): str(entry["version"]) for key, entry in packages.items()
            if key.startswith("node_modules/") and "/node_modules/" not in key and "version" in entry}


class Handler(BaseHTTPRequestHandler):
    """Routes API, worker and control requests."""

    server_version = "EventManagerStandin/1.0"
    store: Store
    database: "Database | None" = None
    packages_file: Path | None = None
    dpkg_status: Path | None = None
    npm_lock: Path | None = None
    tls: TlsCertificates | None = None

    def _broken_by(self, state: dict[str, Any]) -> str | None:
        """A package version the application does not work with, when it is installed (in the sandbox
        package driver's installed.json, the dpkg database of the host's apt root, or its application's lockfile)."""
        if not state["broken_versions"]:
            return None
        installed: dict[str, str] = {}
        if self.packages_file is not None and self.packages_file.exists():
            installed.update(json.loads(self.packages_file.read_text() or "{}"))
        if self.dpkg_status is not None and self.dpkg_status.exists():
            installed.update(dpkg_installed(self.dpkg_status.read_text()))
        if self.npm_lock is not None and self.npm_lock.exists():
            installed.update(npm_installed(self.npm_lock.read_text()))
        for name, version in state["broken_versions"].items():
            if installed.get(name) == version:
                return f"{name} {version}"
        return None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the name BaseHTTPRequestHandler gives it
        """Silence the default stderr access log (we write JSON lines instead)."""

    def do_GET(self) -> None:
        """Handle GET requests."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Handle POST requests."""
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        path = urlsplit(self.path).path
        state = self.store.update(bump=("requests",))
        try:
            status, body, msg = self._route(method, path, state)
        except (ValueError, TypeError, KeyError) as exc:
            status, msg = 400, f"bad request: {exc}"
            body = {"error": "bad_request", "detail": str(exc)}
        level = "error" if status >= 500 else "warn" if status >= 400 else "info"
        self.store.write_log({  # logged before replying so readers never race the line
            "ts": utc_ts(), "level": level, "service": "worker" if path == "/worker-health" else "api",
            "method": method, "path": path, "route": route_of(path), "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000, 2),
            "ip": self.client_address[0], "user": self.headers.get("X-User") or None, "msg": msg,
        })
        text = isinstance(body, Text)
        raw = body.text.encode() if text else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", body.content_type if text else "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        data = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if not isinstance(data, dict):
            raise ValueError("JSON body must be an object")
        return data

    def _route(self, method: str, path: str, state: dict[str, Any]) -> tuple[int, Any, str]:
        if method == "GET" and (path in ("/health", "/api/events") or _EVENT.fullmatch(path)):
            time.sleep(state["latency_ms"] / 1000)
            if "api" in state["stopped"]:
                return 503, {"status": "stopped", "service": "api"}, "api stopped"
            if state["api_unhealthy"]:
                return 503, {"status": "unhealthy", "service": "api"}, "api unhealthy"
            if broken := self._broken_by(state):
                return 500, {"status": "error", "service": "api", "broken_by": broken}, f"api broken by {broken}"
            if self.database is not None and not self.database.healthy():
                return 503, {"status": "unhealthy", "service": "api", "database": "unreachable"}, "database unreachable"
            if path == "/health":
                return 200, health("api", state), "api healthy"
            events = self.database.events() if self.database is not None else EVENTS
            if match := _EVENT.fullmatch(path):
                found = [e for e in events if str(e.get("id")) == match.group(1)]
                if not found:
                    return 404, {"error": "not_found", "event": match.group(1)}, "no such event"
                return 200, found[0], f"event {match.group(1)}"
            return 200, events, f"listed {len(events)} events"
        if method == "GET" and path == "/worker-health":
            if "worker" in state["stopped"]:
                return 503, {"status": "stopped", "service": "worker"}, "worker stopped"
            if state["worker_crashed"]:
                return 503, {"status": "crashed", "service": "worker"}, "worker crashed"
            return 200, health("worker", state), "worker healthy"
        if method == "GET" and path == "/_control/state":
            return 200, state, "state read"
        if method == "GET" and (path in ("/openapi.json", "/CHANGELOG.md", "/support/tickets") or path.startswith("/docs/")):
            return self._documents(path, state)
        if method == "POST" and path.startswith("/_control/"):
            return self._control(path.removeprefix("/_control/"), self._body())
        return 404, {"error": "not_found", "path": path}, "no such route"

    def _documents(self, path: str, state: dict[str, Any]) -> tuple[int, Any, str]:
        """What the documentation and support checks read: the API description, the changelog, the documentation
        pages and the helpdesk's tickets."""
        if path == "/openapi.json":
            return 200, {"openapi": "3.0.3", "info": {"title": "Event Manager API", "version": state["version"]},
                         "paths": OPENAPI_PATHS}, "API description"
        if path == "/CHANGELOG.md":
            return 200, Text("text/markdown; charset=utf-8", CHANGELOG), "changelog"
        if path == "/support/tickets":
            return 200, {"tickets": state["tickets"]}, f"listed {len(state['tickets'])} tickets"
        name = path.removeprefix("/docs/")
        if name not in state["docs"]:
            return 404, {"error": "not_found", "path": path}, "no such document"
        title = name.replace("-", " ").capitalize()
        page = f"<!doctype html><html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n"
        return 200, Text("text/html; charset=utf-8", page), f"document {name}"

    def _control(self, action: str, body: dict[str, Any]) -> tuple[int, Any, str]:
        left = self.store.state["failing"].get(action, 0)
        if left > 0:
            self.store.update(failing={**self.store.state["failing"], action: left - 1})
            return 500, {"error": "injected_fault", "action": action}, f"injected failure of {action}"
        if action == "latency":
            ms = int(body["ms"])
            if ms < 0:
                raise ValueError("ms must be >= 0")
            new = self.store.update(latency_ms=ms)
        elif action == "unhealthy":
            new = self.store.update(api_unhealthy=bool(body.get("api", True)))
        elif action == "crash-worker":
            new = self.store.update(worker_crashed=True)
        elif action in ("stop", "start"):
            comp = body.get("component", "all")
            if comp not in COMPONENTS:
                raise ValueError(f"component must be one of {COMPONENTS}")
            names = {"api", "worker"} if comp == "all" else {comp}
            stopped = set(self.store.state["stopped"])
            stopped = stopped | names if action == "stop" else stopped - names
            new = self.store.update(stopped=sorted(stopped))
        elif action == "fail":  # fault injection: the next `times` calls of a control action answer 500
            failing = dict(self.store.state["failing"])
            failing[str(body["action"])] = int(body.get("times", 1))
            new = self.store.update(failing=failing)
        elif action == "break-version":  # fault injection: this installed package version breaks the API
            versions = dict(self.store.state["broken_versions"])
            versions[str(body["package"])] = str(body["version"])
            new = self.store.update(broken_versions=versions)
        elif action == "break-restart":
            new = self.store.update(restart_broken=bool(body.get("on", True)))
        elif action == "restart":
            comp = body.get("component", "all")
            if comp not in COMPONENTS:
                raise ValueError(f"component must be one of {COMPONENTS}")
            if self.store.state["restart_broken"]:  # fault injection: the restart "succeeds" but fixes nothing
                return 200, self.store.update(bump=("restarts",), last_restart=comp), "restart (broken)"
            names = {"api", "worker"} if comp == "all" else {comp}
            changes: dict[str, Any] = {"last_restart": comp, "stopped": sorted(set(self.store.state["stopped"]) - names)}
            if comp in ("api", "all"):
                changes["api_unhealthy"] = False
            if comp in ("worker", "all"):
                changes["worker_crashed"] = False
            new = self.store.update(bump=("restarts",), **changes)
        elif action == "reopen-logs":  # what a rotation's reopen command asks for (SIGHUP does the same)
            new = self.store.reopen_log()
        elif action == "reload-tls":  # what a certificate renewal's reload command asks for
            if self.tls is None:
                return 409, {"error": "no_tls", "action": action}, "no TLS to reload (started without --tls-port)"
            try:
                served = self.tls.load()
            except TlsLoadError as exc:  # the previous certificates are still served
                return 500, {"error": "tls_reload_failed", "detail": str(exc)}, f"reload-tls failed: {exc}"
            return 200, {**self.store.update(bump=("tls_reloads",)), "tls_names": served}, f"control {action}"
        elif action == "clear-cache":
            new = self.store.update(bump=("cache_clears",))
        elif action == "leak":  # fault injection: the RSS /health reports grows by this much per minute of uptime
            per_min = int(body["bytes_per_min"])
            if per_min < 0:
                raise ValueError("bytes_per_min must be >= 0")
            new = self.store.update(leak_bytes_per_min=per_min)
        elif action == "version":  # a deploy
            version = body["version"]
            if not isinstance(version, str) or not version.strip():
                raise ValueError("version must be a non-empty string such as '1.5.0'")
            new = self.store.update(version=version.strip())
        elif action in ("tickets", "docs"):  # the helpdesk's queue, the documentation pages served
            items = body[action]
            if not isinstance(items, list) or (action == "docs" and not all(isinstance(d, str) for d in items)):
                raise ValueError(f"{action} must be a list" + (" of page names" if action == "docs" else ""))
            new = self.store.update(tickets=items) if action == "tickets" else self.store.update(docs=items)
        elif action == "reset":
            # counters of the process and the deployed version: not injected faults
            kept = ("requests", "log_reopens", "tls_reloads", "version")
            new = self.store.update(**{k: v for k, v in self.store.defaults.items() if k not in kept})
        else:
            return 404, {"error": "unknown_control", "action": action}, "unknown control"
        return 200, new, f"control {action}"


def main(argv: list[str] | None = None) -> None:
    """Parse the CLI, serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log-file", type=Path, required=True)
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--mongo-uri", default=None, help="serve events from this MongoDB (and check it in /health)")
    parser.add_argument("--database", default="eventmanager")
    parser.add_argument("--version", default=VERSION, help="the application version /health answers (until a deploy)")
    parser.add_argument("--packages-file", type=Path, default=None, help="the sandbox package driver's installed.json")
    parser.add_argument("--npm-lock", type=Path, default=None, help="the package-lock.json of the host's application")
    parser.add_argument("--dpkg-status", type=Path, default=None, help="the dpkg status file of the host's apt root")
    parser.add_argument("--tls-port", type=int, default=None, help="also serve HTTPS on this port (0: a free one)")
    parser.add_argument("--tls-dir", type=Path, default=None,
                        help="the HTTPS certificates: <server_name>.pem and .key, default.pem and .key for other names")
    args = parser.parse_args(argv)
    if (args.tls_port is None) != (args.tls_dir is None):
        parser.error("--tls-port and --tls-dir go together")
    try:
        check_loopback(args.host)
    except ValueError as exc:
        parser.error(str(exc))
    Handler.store = Store(args.log_file, args.state_file, {**DEFAULT_STATE, "version": args.version})
    if args.mongo_uri:
        Handler.database = Database(args.mongo_uri, args.database)
    Handler.packages_file = args.packages_file
    Handler.dpkg_status = args.dpkg_status
    Handler.npm_lock = args.npm_lock
    store = Handler.store
    tls_server = None
    if args.tls_port is not None:
        try:
            Handler.tls = TlsCertificates(args.tls_dir)
        except TlsLoadError as exc:
            parser.error(f"--tls-dir: {exc}")
        # bound before the READY line: whoever waits for it may dial the TLS port at once
        tls_server = TlsServer((args.host, args.tls_port), Handler, Handler.tls)
        threading.Thread(target=tls_server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        print(f"TLS https://{args.host}:{tls_server.server_address[1]} from {args.tls_dir}", file=sys.stderr, flush=True)

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        # in a thread: the handler interrupts the main thread, which must not wait for the store's lock
        threading.Thread(target=store.reopen_log, daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)
    def close() -> None:
        if tls_server is not None:
            tls_server.shutdown()
            tls_server.server_close()
        store.close_log()

    serve(ThreadingHTTPServer((args.host, args.port), Handler), close)


if __name__ == "__main__":
    main()
