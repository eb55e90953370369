"""Numbers as an on-call engineer reads them in a report: sizes, counts, durations, digests, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

_SIZE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def size(n: float) -> str:
    """Bytes in decimal units, three significant figures at most: 25448 → '25 KB', 1.5e9 → '1.5 GB'."""
    value, unit = float(n), 0
    while abs(value) >= 1000 and unit < len(_SIZE_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    if unit == 0:
        return f"{int(value)} B"
    return f"{value:.1f} {_SIZE_UNITS[unit]}" if value < 10 else f"{value:.0f} {_SIZE_UNITS[unit]}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 document', '1,500 documents'."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def duration(value: float | timedelta) -> str:
    """Seconds (or a timedelta) the way people say them: '180 ms', '2.1 s', '5 min', '3 h 12 min', '2 d 4 h'."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 1:
        text = f"{seconds * 1000:.0f} ms"
    elif seconds < 60:
        text = f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    elif seconds < 3600:
        m, s = divmod(round(seconds), 60)
        text = f"{m} min" + (f" {s} s" if s and m < 10 else "")
    elif seconds < 86400 * 2:
        h, m = divmod(round(seconds / 60), 60)
        text = f"{h} h" + (f" {m} min" if m else "")
    else:
        d, h = divmod(round(seconds / 3600), 24)
        text = f"{d} d" + (f" {h} h" if h else "")
    return sign + text


def digest(hexdigest: str, algorithm: str) -> str:
    """'blake3 962a3923…': enough of a digest to compare by eye."""
    return f"{algorithm} {hexdigest[:8]}…"


METRIC_NAMES = {"up": "up", "response_time_ms": "response time", "db_ping_ms": "ping", "cpu_percent": "CPU used",
                "memory_percent": "memory used", "disk_percent": "disk used", "availability": "availability",
                "error_rate": "error rate", "p95_ms": "p95 response time", "p99_ms": "p99 response time",
                "disk_read_bytes_per_s": "disk read", "disk_write_bytes_per_s": "disk write",
                "net_rx_bytes_per_s": "network in", "net_tx_bytes_per_s": "network out"}


def metric_name(name: str) -> str:
    """'response_time_ms' → 'response time' (unknown names: underscores as spaces)."""
    return METRIC_NAMES.get(name, name.replace("_", " "))


def metric(name: str, value: float) -> str:
    """A health metric with its unit: up → 'up' / 'down', *_ms → '70 ms', *_percent → '81.5 %'."""
    if name == "up":
        return "up" if value >= 1 else "down"
    if name.endswith("_ms"):
        return f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"
    if name in ("availability", "error_rate"):  # shares 0..1
        return f"{value * 100:.2f} %".replace(".00 %", " %")
    if name.endswith("_percent"):
        return f"{value:.1f} %".replace(".0 %", " %")
    if name.endswith("_bytes_per_s"):
        return f"{size(value)}/s"
    return f"{value:g}"


def step_times(steps: Mapping[str, float]) -> str:
    """How long each step took, in the order they ran: 'stop 0.4 s, apt 3.1 s, start 0.5 s, checks 210 ms'."""
    return ", ".join(f"{name} {duration(seconds)}" for name, seconds in steps.items())
