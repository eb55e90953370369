"""Health samples and the rolling service-level figures computed from them (pure, pandas)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from upkeep.hosts.base import DiskUsage


@dataclass(frozen=True)
class Sample:
    ts: datetime
    environment: str
    host: str
    target: str  # "api", "worker", "database", "host"
    metric: str  # response_time_ms, up, cpu_percent, memory_percent, disk_percent, db_ping_ms, *_bytes_per_s,
    value: float  # and per service over the period (host ""): availability, error_rate, p95_ms, p99_ms

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
    the threshold) and p95 / p99 latency over the samples given (the rolling period). Hosts are not
    services: their reachability is reported per check, not as a service level."""
    df = df[(df["target"] != "host") & (df["host"] != "")]  # level samples of earlier runs are not probes
    up = df[df["metric"] == "up"].groupby("target")["value"].agg(["count", "mean"])
    rt = df[df["metric"] == "response_time_ms"].groupby("target")["value"]
    out = pd.DataFrame({"probes": up["count"], "availability": up["mean"]})
    # per probe: failed, or answered slower than the threshold (a failed probe's latency, a timeout, is not counted again)
    keys = ["ts", "host", "target"]
    probes = df[df["metric"] == "up"][[*keys, "value"]].merge(
        df[df["metric"] == "response_time_ms"][[*keys, "value"]], on=keys, how="left", suffixes=("_up", "_ms"))
    bad = (probes["value_up"] < 1) | (probes["value_ms"] > response_time_ms)
    out["error_rate"] = bad.groupby(probes["target"]).mean().reindex(out.index).fillna(0)
    out["p95_ms"] = rt.quantile(0.95).reindex(out.index)
    out["p99_ms"] = rt.quantile(0.99).reindex(out.index)
    return out.reset_index()


LEVELS = ("availability", "error_rate", "p95_ms", "p99_ms")


def level_samples(levels: pd.DataFrame, at: datetime, environment: str) -> list[Sample]:
    """The service levels of the period as samples about each service (no host), for the alert rules."""
    out = []
    for row in levels.to_dict("records"):
        out += [Sample(at, environment, "", str(row["target"]), name, float(row[name]))
                for name in LEVELS if pd.notna(row[name])]
    return out


PROCESS_FACTS = ("memory_rss_bytes", "uptime_s")  # per service, from its JSON health body (upkeep.probes.health_facts)
CAPACITY_MINUTES = 15  # filesystems and database sizes are sampled every quarter hour: the capacity review uses daily maxima


def capacity_due(at: datetime) -> bool:
    """True for the health checks that also sample capacity (filesystems, inodes, database sizes): on the quarter hour."""
    return at.minute % CAPACITY_MINUTES == 0


def fs_samples(host: str, at: datetime, environment: str, disks: Iterable[DiskUsage]) -> list[Sample]:
    """Each filesystem's bytes and inodes, used and in all, as samples about `fs:<mount>` (capacity forecasts)."""
    out = []
    for d in disks:
        target = f"fs:{d.mount}"
        out += [Sample(at, environment, host, target, "used_bytes", float(d.used_bytes)),
                Sample(at, environment, host, target, "size_bytes", float(d.used_bytes + d.free_bytes))]
        if d.inodes_total:
            out += [Sample(at, environment, host, target, "inodes_used", float(d.inodes_used)),
                    Sample(at, environment, host, target, "inodes_size", float(d.inodes_total))]
    return out


COUNTERS = ("disk_read", "disk_write", "net_rx", "net_tx")
Counters = tuple[datetime, dict[str, int]]  # when read, counter name → bytes since boot


def io_rates(previous: dict[str, Counters], current: dict[str, Counters], environment: str,
             max_gap: timedelta = timedelta(minutes=15)) -> list[Sample]:
    """Bytes per second per host and counter between two probes: `<counter>_bytes_per_s`. A host
    without an earlier reading, one older than `max_gap`, or a counter that went back (a reboot)
    gives no rate this time."""
    out = []
    for host, (at, values) in current.items():
        if host not in previous:
            continue
        then, before = previous[host]
        seconds = (at - then).total_seconds()
        if not 0 < seconds <= max_gap.total_seconds():
            continue
        for name in COUNTERS:
            if name in values and name in before and values[name] >= before[name]:
                out.append(Sample(at, environment, host, "host", f"{name}_bytes_per_s",
                                  round((values[name] - before[name]) / seconds, 1)))
    return out


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


def level_breaches(levels: list[dict[str, Any]], availability: float, error_rate: float) -> list[str]:
    """Service levels of the rolling period (rows of `service_levels`) below their targets."""
    out = []
    for row in levels:
        if row["availability"] < availability:
            out.append(f"{row['target']}: availability {row['availability']:.3%} < target {availability:.1%}")
        if row["error_rate"] > error_rate:
            out.append(f"{row['target']}: error rate {row['error_rate']:.2%} > target {error_rate:.0%}")
    return out


def counter_samples(host: str, at: datetime, environment: str, counters: dict[str, int]) -> list[Sample]:
    """A host's cumulative I/O counters as samples (`<counter>_bytes_total`), carried from the probe to the rates."""
    return [Sample(at, environment, host, "host", f"{name}_bytes_total", float(value)) for name, value in counters.items()]


def split_counters(samples: list[Sample]) -> tuple[list[Sample], dict[str, Counters]]:
    """(the samples that are measurements, host → its I/O counters): counters are not stored as samples."""
    probes: list[Sample] = []
    counters: dict[str, Counters] = {}
    for s in samples:
        if s.metric.endswith("_bytes_total"):
            counters.setdefault(s.host, (s.ts, {}))[1][s.metric.removesuffix("_bytes_total")] = int(s.value)
        else:
            probes.append(s)
    return probes, counters
