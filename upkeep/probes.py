"""HTTP health probes with a real timeout (no Prefect): status, latency, verdict."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ProbeResult:
    target: str
    url: str
    ok: bool
    status: int | None
    latency_ms: float
    error: str = ""
    facts: dict[str, Any] = field(default_factory=dict)  # what a JSON health body tells: version, uptime_s, memory_rss_bytes

    @property
    def detail(self) -> str:
        if self.error:
            return f"{self.url}: {self.error}"
        return f"{self.url}: HTTP {self.status} in {self.latency_ms:.0f} ms"


def probe_http(target: str, url: str, timeout: float = 5.0) -> ProbeResult:
    """GET `url`; ok when it answers 2xx within `timeout` seconds (connect and read)."""
    parts = urlsplit(url)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    started = time.monotonic()
    conn = conn_cls(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"User-Agent": "upkeep-probe"})
        resp = conn.getresponse()
        body = resp.read(65536)
        ms = (time.monotonic() - started) * 1000
        facts = health_facts(body) if "json" in (resp.getheader("Content-Type") or "") else {}
        return ProbeResult(target, url, 200 <= resp.status < 300, resp.status, ms, facts=facts)
    except (OSError, http.client.HTTPException) as exc:
        ms = (time.monotonic() - started) * 1000
        return ProbeResult(target, url, False, None, ms, f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def health_facts(body: bytes) -> dict[str, Any]:
    """What a Node-style JSON health body says about the process, when it says it: `version`, `uptime` (seconds,
    `process.uptime()`) and `memory.rss` (bytes, `process.memoryUsage()`), as version / uptime_s / memory_rss_bytes.
    Anything else, or a body that is not JSON, gives nothing (the probe's verdict is the status code)."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    if isinstance(data.get("version"), str):
        out["version"] = data["version"][:64]
    if isinstance(data.get("uptime"), int | float) and not isinstance(data.get("uptime"), bool):
        out["uptime_s"] = float(data["uptime"])
    memory = data.get("memory")
    if isinstance(memory, dict) and isinstance(memory.get("rss"), int | float) and not isinstance(memory.get("rss"), bool):
        out["memory_rss_bytes"] = float(memory["rss"])
    return out


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int | None  # None: no answer (refused, timed out, not HTTP)
    body: bytes = b""
    error: str = ""


def http_get(url: str, timeout: float = 10.0, headers: dict[str, str] | None = None,
             limit: int = 8 << 20) -> Fetched:
    """GET `url` (redirects followed) within `timeout` seconds per connect and read; at most `limit` bytes of body.
    An HTTP error status is an answer (its status kept), not an exception; no answer is status None with the error."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "upkeep-review", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - http(s) URLs from the inventory
            return Fetched(url, int(resp.status), resp.read(limit))
    except urllib.error.HTTPError as exc:
        return Fetched(url, exc.code, b"", f"HTTP {exc.code} {exc.reason}")
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return Fetched(url, None, b"", f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")
