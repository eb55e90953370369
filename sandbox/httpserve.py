"""What the sandbox's small HTTP servers share: loopback-only binding and a clean SIGTERM stop."""

from __future__ import annotations

import ipaddress
import signal
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer


def check_loopback(host: str) -> None:
    """Raise ValueError unless ``host`` is a 127.x IPv4 address."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"--host must be a 127.x address, got {host!r}") from exc
    if addr.version != 4 or not addr.is_loopback:
        raise ValueError(f"refusing to bind {host}: only loopback (127.x) is allowed")


def serve(server: ThreadingHTTPServer, on_close: Callable[[], None]) -> None:
    """Print the READY line, serve until SIGTERM/SIGINT, then close."""
    def stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"READY http://{host!s}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        on_close()
