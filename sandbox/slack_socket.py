"""Slack's side of Socket Mode, for the Slack recorder: the websocket an app opens after `apps.connections.open`
(RFC 6455 over the recorder's own HTTP port: the handshake, unmasked single-frame text messages to the app, pings
answered), the `hello` Slack sends first, and interaction envelopes pushed to the app — a click on a button of a
message the app posted (`click`), acknowledged by the app with `{"envelope_id": …}`."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import uuid
from typing import Any

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """The `Sec-WebSocket-Accept` answer to a client's `Sec-WebSocket-Key`."""
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()  # noqa: S324 - RFC 6455 says SHA-1


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked final frame (server to client)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def _exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the app closed the socket")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One frame from the client (masked, as RFC 6455 requires of clients): its opcode and unmasked payload."""
    b1, b2 = _exact(sock, 2)
    n = b2 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _exact(sock, 8))[0]
    mask = _exact(sock, 4) if b2 & 0x80 else b"\0\0\0\0"
    data = _exact(sock, n)
    return b1 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


class Connection:
    """One app's live socket: what it was sent, its acks; sends are serialised."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.lock = sock, threading.Lock()
        self.acks: dict[str, threading.Event] = {}

    def send_text(self, message: dict[str, Any]) -> None:
        with self.lock:
            self.sock.sendall(frame(0x1, json.dumps(message).encode()))

    def serve(self, record: Any) -> None:
        """Answer pings, record the app's text messages (acks), until it closes."""
        self.send_text({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0SANDBOX"},
                        "debug_info": {"host": "sandbox-recorder", "approximate_connection_time": 18060}})
        while True:
            try:
                opcode, data = read_frame(self.sock)
            except (ConnectionError, OSError):
                return
            if opcode == 0x9:  # ping: pong with the same data, or the app reconnects after ~20 s
                with self.lock:
                    self.sock.sendall(frame(0xA, data))
            elif opcode == 0x1:
                message = json.loads(data)
                record(message)
                if (done := self.acks.get(str(message.get("envelope_id")))) is not None:
                    done.set()
            elif opcode == 0x8:
                with self.lock:
                    self.sock.sendall(frame(0x8, data[:2]))
                return


def block_actions(message: dict[str, Any], channel: str, action_id: str, user: str, username: str) -> dict[str, Any]:
    """The `block_actions` payload Slack sends when `user` clicks the button `action_id` of `message` (as posted)."""
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    button = next((e for b in blocks if b.get("type") == "actions" for e in b.get("elements", [])
                   if e.get("action_id") == action_id), None)
    if button is None:
        raise LookupError(f"message {message.get('ts')} has no button {action_id!r}")
    return {"type": "block_actions", "api_app_id": "A0SANDBOX", "trigger_id": f"t.{uuid.uuid4().hex[:8]}",
            "user": {"id": user, "username": username, "name": username, "team_id": "T0"},
            "team": {"id": "T0", "domain": "sandbox"},
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False},
            "channel": {"id": channel, "name": channel.lstrip("#")},
            "message": {"type": "message", "ts": message["ts"], "text": message.get("text", ""), "blocks": blocks},
            "state": {"values": {}}, "response_url": "http://sandbox.invalid/actions",
            "actions": [{**button, "block_id": next(b.get("block_id", "") for b in blocks if button in b.get("elements", [])),
                         "action_ts": message["ts"]}]}


def envelope(payload: dict[str, Any]) -> dict[str, Any]:
    return {"envelope_id": str(uuid.uuid4()), "type": "interactive", "accepts_response_payload": False, "payload": payload}
