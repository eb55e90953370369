"""HTTP health probes with a real timeout (no Prefect): status, latency, verdict."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ProbeResult:
    target: str
    url: str
    ok: bool
    status: int | None
    latency_ms: float
    error: str = ""

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
        resp.read(65536)
        ms = (time.monotonic() - started) * 1000
        return ProbeResult(target, url, 200 <= resp.status < 300, resp.status, ms)
    except (OSError, http.client.HTTPException) as exc:
        ms = (time.monotonic() - started) * 1000
        return ProbeResult(target, url, False, None, ms, f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()
