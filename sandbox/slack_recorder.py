"""Fake Slack Web API that records every call, for ``WebClient(base_url=...)``; and Slack's side of Socket Mode.

Run: ``python -m sandbox.slack_recorder --port 0 --record-file calls.jsonl``.
Tokens are never stored: only whether one was sent and its last 4 characters.

Socket Mode (sandbox/slack_socket.py): `apps.connections.open` (with an app-level token, `xapp-…`) answers the URL of
a websocket on this same port (`/link/`); ``POST /_click {"ts", "action_id", "user", "username"}`` plays a person
clicking a button of a recorded message: the `block_actions` envelope goes to the connected app, and the answer says
whether the app acknowledged it. What the app sends back is recorded as method `socket.ack`.
"""

import argparse
import email.parser
import email.policy
import itertools
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from sandbox import slack_socket
from sandbox.httpserve import check_loopback, serve


def parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    """Decode a JSON, form-encoded or multipart body into a flat dict."""
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(raw)
        return data if isinstance(data, dict) else {"_body": data}
    if content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + raw)
        out: dict[str, Any] = {}
        for part in msg.iter_parts():
            payload = cast("bytes | None", part.get_payload(decode=True)) or b""  # a form field: its decoded bytes
            name = part.get_param("name", header="content-disposition") or "_part"
            out[str(name)] = (f"<{len(payload)} bytes>" if part.get_filename()
                              else payload.decode("utf-8", "replace"))
        return out
    form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] if len(v) == 1 else v for k, v in form.items()}


class Recorder:
    """In-memory list of calls mirrored to a JSON-lines file."""

    def __init__(self, record_file: Path) -> None:
        self.lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []
        self.file = record_file.open("a", encoding="utf-8")
        self.seq = itertools.count(1)
        self.sockets: list[slack_socket.Connection] = []  # the apps connected over Socket Mode, newest last

    def add(self, call: dict[str, Any]) -> None:
        """Record one call (memory + file, flushed; not once the file is closed, at shutdown)."""
        with self.lock:
            self.calls.append(call)
            if not self.file.closed:
                self.file.write(json.dumps(call) + "\n")
                self.file.flush()

    def posted(self, ts: str) -> tuple[str, dict[str, Any]] | None:
        """The channel and message a chat.postMessage answered with `ts` (its blocks as the app sent them)."""
        with self.lock:
            for c in self.calls:
                if c["method"] == "chat.postMessage" and c["response"].get("ts") == ts:
                    return c["response"]["channel"], c["response"]["message"]
        return None

    def next_ts(self) -> str:
        """A unique Slack-style message timestamp ``seconds.micro``."""
        with self.lock:
            return f"{int(time.time())}.{next(self.seq):06d}"


class Handler(BaseHTTPRequestHandler):
    """Serves ``/api/<method>`` plus ``/_calls`` and ``/_reset``."""

    server_version = "SlackRecorder/1.0"
    recorder: Recorder

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the name BaseHTTPRequestHandler gives it
        """Silence the default stderr access log."""

    def _send(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        """``GET /_calls[?method=x]`` or a GET-style API call."""
        url = urlsplit(self.path)
        if url.path == "/link/" and self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
            return
        if url.path == "/_calls":
            want = parse_qs(url.query).get("method", [None])[0]
            with self.recorder.lock:
                calls = [c for c in self.recorder.calls if want in (None, c["method"])]
            self._send(200, calls)
        else:
            self._api(url.path, {})

    def do_POST(self) -> None:
        """``POST /_reset`` or ``POST /api/<method>``."""
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path == "/_reset":
            with self.recorder.lock:
                self.recorder.calls.clear()
            self._send(200, {"ok": True})
            return
        if url.path == "/_click":
            self._click(json.loads(raw or b"{}"))
            return
        error: str | None = None
        try:
            args = parse_body(self.headers.get("Content-Type", ""), raw)
        except ValueError:  # undecodable body: still recorded, answered like Slack
            args, error = {}, "invalid_arguments"
        self._api(url.path, args, error)

    def _api(self, path: str, args: dict[str, Any], error: str | None = None) -> None:
        if not path.startswith("/api/") or len(path) <= len("/api/"):
            self._send(404, {"ok": False, "error": "unknown_path"})
            return
        method = path.removeprefix("/api/")
        args.update({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else ""
        token = token or str(args.pop("token", "") or "")
        args.pop("token", None)
        self.token = token
        reply = {"ok": False, "error": error} if error else self._reply(method, args, bool(token))
        self.recorder.add({
            "recorded_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "method": method, "args": args, "content_type": self.headers.get("Content-Type"),
            "token_present": bool(token), "token_last4": token[-4:] if token else None,
            "response": reply,
        })
        self._send(200, reply)

    def _reply(self, method: str, args: dict[str, Any], authed: bool) -> dict[str, Any]:
        if not authed:
            return {"ok": False, "error": "not_authed"}
        if method == "auth.test":
            return {"ok": True, "user_id": "U0", "team": "sandbox", "team_id": "T0",
                    "url": "https://sandbox.slack.com/"}
        if method == "apps.connections.open":  # Socket Mode: the app-level token's websocket, on this very port
            if not self.token.startswith("xapp-"):
                return {"ok": False, "error": "invalid_auth"}  # as Slack answers a bot token here
            host, port = cast("tuple[str, int]", self.server.server_address)[:2]
            return {"ok": True, "url": f"ws://{host}:{port}/link/?ticket={next(self.recorder.seq)}"}
        if method == "chat.postMessage":
            if not args.get("channel"):
                return {"ok": False, "error": "channel_not_found"}
            ts = self.recorder.next_ts()
            message = {"type": "message", "text": args.get("text", ""), "ts": ts}
            if "blocks" in args:
                message["blocks"] = args["blocks"]
            return {"ok": True, "channel": args["channel"], "ts": ts, "message": message}
        return {"ok": True}


    token = ""

    def _websocket(self) -> None:
        """Accept the app's Socket Mode connection and serve it until it closes (this handler's thread)."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", slack_socket.accept_key(key))
        self.end_headers()
        self.wfile.flush()
        conn = slack_socket.Connection(self.connection)
        with self.recorder.lock:
            self.recorder.sockets.append(conn)
        try:
            conn.serve(lambda message: self.recorder.add({
                "recorded_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "method": "socket.ack",
                "args": message, "content_type": None, "token_present": False, "token_last4": None, "response": {}}))
        finally:
            with self.recorder.lock:
                self.recorder.sockets.remove(conn)
            self.close_connection = True

    def _click(self, body: dict[str, Any]) -> None:
        """A person clicks a button of a recorded message: its `block_actions` envelope to the newest connected app."""
        found = self.recorder.posted(str(body.get("ts", "")))
        with self.recorder.lock:
            conn = self.recorder.sockets[-1] if self.recorder.sockets else None
        if found is None or conn is None:
            self._send(409, {"ok": False, "error": "no such message" if found is None else "no app connected"})
            return
        channel, message = found
        try:
            payload = slack_socket.block_actions(message, channel, str(body["action_id"]), str(body["user"]),
                                                 str(body.get("username") or body["user"]))
        except LookupError as exc:
            self._send(409, {"ok": False, "error": str(exc)})
            return
        sent = slack_socket.envelope(payload)
        acked = conn.acks.setdefault(sent["envelope_id"], threading.Event())
        conn.send_text(sent)
        self._send(200, {"ok": True, "envelope_id": sent["envelope_id"], "acked": acked.wait(5)})


def main(argv: list[str] | None = None) -> None:
    """Parse the CLI, serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.slack_recorder", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record-file", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        check_loopback(args.host)
    except ValueError as exc:
        parser.error(str(exc))
    Handler.recorder = Recorder(args.record_file)
    serve(ThreadingHTTPServer((args.host, args.port), Handler), Handler.recorder.file.close)


if __name__ == "__main__":
    main()
