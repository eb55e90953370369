"""Health samples and the rolling service-level figures computed from them (pure, pandas)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Sample:
    ts: datetime
    environment: str
    host: str
    target: str  # "api", "worker", "database", "host"
    metric: str  # response_time_ms, up, cpu_percent, memory_percent, disk_percent, db_ping_ms
    value: float

    def document(self) -> dict[str, object]:
        """As stored in the time-series collection (meta field: what the sample is about)."""
        return {"ts": self.ts, "meta": {"env": self.environment, "host": self.host, "target": self.target,
                                        "metric": self.metric}, "value": float(self.value)}


def frame(samples: list[Sample] | list[dict[str, Any]]) -> pd.DataFrame:
    """Samples (objects or stored documents) as a DataFrame: ts, host, target, metric, value."""
    rows = []
    for s in samples:
        if isinstance(s, Sample):
            rows.append({"ts": s.ts, "host": s.host, "target": s.target, "metric": s.metric, "value": s.value})
        else:
            meta = s["meta"]
            rows.append({"ts": s["ts"], "host": meta["host"], "target": meta["target"], "metric": meta["metric"],
                         "value": s["value"]})
    return pd.DataFrame(rows, columns=["ts", "host", "target", "metric", "value"])


def service_levels(df: pd.DataFrame, response_time_ms: float) -> pd.DataFrame:
    """Per service target: probes, availability (share up), error rate (share failed or slower than
    the threshold) and p95 latency over the samples given (the rolling period). Hosts are not
    services: their reachability is reported per check, not as a service level."""
    df = df[df["target"] != "host"]
    up = df[df["metric"] == "up"].groupby("target")["value"].agg(["count", "mean"])
    rt = df[df["metric"] == "response_time_ms"].groupby("target")["value"]
    out = pd.DataFrame({"probes": up["count"], "availability": up["mean"]})
    slow = (df[df["metric"] == "response_time_ms"].assign(slow=lambda d: d["value"] > response_time_ms)
            .groupby("target")["slow"].mean())
    out["error_rate"] = (1 - out["availability"]) + slow.reindex(out.index).fillna(0) * out["availability"]
    out["p95_ms"] = rt.quantile(0.95).reindex(out.index)
    return out.reset_index()


def consecutive_failures(df: pd.DataFrame, host: str, target: str) -> int:
    """How many of the newest `up` samples of a host's service in a row are failures."""
    rows = df[(df["metric"] == "up") & (df["host"] == host) & (df["target"] == target)].sort_values("ts", ascending=False)
    n = 0
    for value in rows["value"]:
        if value >= 1:
            break
        n += 1
    return n


def breaches(samples: list[Sample], response_time_ms: float) -> list[str]:
    """What is wrong right now, one line each: down services, hosts, database; slow responses."""
    out = []
    for s in samples:
        if s.metric == "up" and s.value < 1:
            what = "unreachable" if s.target == "host" else "down"
            out.append(f"{s.host} {s.target}: {what}")
        elif s.metric == "response_time_ms" and s.value > response_time_ms:
            up = any(x.metric == "up" and x.host == s.host and x.target == s.target and x.value >= 1 for x in samples)
            if up:
                out.append(f"{s.host} {s.target}: response time {s.value:.0f} ms > {response_time_ms:.0f} ms")
    return out


def level_breaches(levels: pd.DataFrame, availability: float, error_rate: float) -> list[str]:
    """Service levels of the rolling period below their targets."""
    out = []
    for target, level, errors in zip(levels["target"], levels["availability"], levels["error_rate"], strict=True):
        if level < availability:
            out.append(f"{target}: availability {level:.3%} < target {availability:.1%}")
        if errors > error_rate:
            out.append(f"{target}: error rate {errors:.2%} > target {error_rate:.0%}")
    return out
