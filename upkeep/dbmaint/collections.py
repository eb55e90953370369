"""Collection statistics over time and slow query shapes (pure: plain data or DataFrames in, decisions out).

* growth: bytes and documents per day between the oldest and the newest snapshot of each collection;
* compaction: worth it where `freeStorageSize` (MongoDB 4.4+, WiredTiger) is over a share of the storage
  and over a floor in bytes; a server without `freeStorageSize` gets "not available", never a guess;
* slow query shapes from `system.profile`, fingerprinted like pt-mongodb-query-digest: the operation, the
  namespace and the filter's shape (field names and operators kept, values replaced), with count, p50 /
  p95 milliseconds, documents examined and returned per run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class CollectionStats:
    ns: str
    count: int
    size: int  # bytes of the documents, uncompressed
    storage_size: int  # bytes on disk
    free_storage: int | None  # reusable bytes inside storage_size (None: the server does not say)
    indexes: int
    index_size: int


def parse_coll_stats(ns: str, stats: Mapping[str, Any]) -> CollectionStats:
    """From the `collStats` command (or `$collStats: {storageStats: {}}`'s `storageStats`)."""
    free = stats.get("freeStorageSize")
    return CollectionStats(ns, int(stats.get("count") or 0), int(stats.get("size") or 0),
                           int(stats.get("storageSize") or 0), int(free) if free is not None else None,
                           int(stats.get("nindexes") or 0), int(stats.get("totalIndexSize") or 0))


@dataclass(frozen=True)
class Growth:
    ns: str
    bytes_per_day: float
    docs_per_day: float
    days: float


def growth(history: Sequence[tuple[datetime, Sequence[CollectionStats]]], top: int = 5, min_days: float = 1.0) -> list[Growth]:
    """The fastest-growing collections (bytes per day, largest first) between the oldest and newest snapshot
    that both have them; none from a single snapshot or from snapshots less than `min_days` apart."""
    ordered = sorted(history, key=lambda h: h[0])
    if len(ordered) < 2:
        return []
    (t0, first), (t1, last) = ordered[0], ordered[-1]
    days = (t1 - t0).total_seconds() / 86400
    if days < min_days or days <= 0:
        return []
    before = {c.ns: c for c in first}
    out = [Growth(c.ns, (c.size - before[c.ns].size) / days, (c.count - before[c.ns].count) / days, days)
           for c in last if c.ns in before]
    return sorted(out, key=lambda g: g.bytes_per_day, reverse=True)[:top]


@dataclass(frozen=True)
class CompactVerdict:
    ns: str
    compact: bool
    detail: str


def compact_candidates(stats: Iterable[CollectionStats], min_share: float, min_bytes: int) -> list[CompactVerdict]:
    """Per collection: worth compacting when its free storage is at least `min_share` of its storage and at
    least `min_bytes`; "not available" where the server gives no `freeStorageSize`."""
    out = []
    for c in stats:
        if c.free_storage is None:
            out.append(CompactVerdict(c.ns, False, "free storage not available on this server (no freeStorageSize)"))
            continue
        share = c.free_storage / c.storage_size if c.storage_size else 0.0
        worth = share >= min_share and c.free_storage >= min_bytes
        out.append(CompactVerdict(c.ns, worth, f"{_mib(c.free_storage)} free of {_mib(c.storage_size)} ({share:.0%})"
                                  + ("" if worth else f": under {min_share:.0%} or {_mib(min_bytes)}")))
    return out


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def shape(value: Any) -> Any:
    """A filter with its values replaced (field names and operators kept): {"a": {"$gt": 5}} → {"a": {"$gt": "?"}}."""
    if isinstance(value, Mapping):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return [shape(v) for v in value]  # $and / $or: their clauses' shapes
    return "?"


def fingerprint(entry: Mapping[str, Any]) -> str:
    """`find events {"status": "?", "ts": {"$gt": "?"}}`: what a profiler entry ran, without its values."""
    command = entry.get("command") or {}
    filt = command.get("filter", command.get("q", entry.get("query", {})))
    if "pipeline" in command:
        filt = [list(stage)[0] for stage in command["pipeline"] if isinstance(stage, Mapping) and stage]
        return f"{entry.get('op', '?')} {entry.get('ns', '?')} pipeline {filt}"
    return f"{entry.get('op', '?')} {entry.get('ns', '?')} {json.dumps(shape(filt), sort_keys=True)}"


def slow_shapes(profile: Iterable[Mapping[str, Any]], top: int = 10) -> pd.DataFrame:
    """Query shapes from `system.profile` entries, slowest p95 first: shape, count, p50_ms, p95_ms, examined per
    run (docsExamined), returned per run (nreturned)."""
    rows = [{"shape": fingerprint(e), "millis": float(e.get("millis") or 0), "examined": int(e.get("docsExamined") or 0),
             "returned": int(e.get("nreturned") or 0)} for e in profile]
    if not rows:
        return pd.DataFrame(columns=["shape", "count", "p50_ms", "p95_ms", "examined", "returned"])
    df = pd.DataFrame(rows)
    g = df.groupby("shape")
    out = pd.DataFrame({"count": g.size(), "p50_ms": g["millis"].quantile(0.5), "p95_ms": g["millis"].quantile(0.95),
                        "examined": g["examined"].mean(), "returned": g["returned"].mean()}).reset_index()
    return out.sort_values(["p95_ms", "count"], ascending=False).head(top).reset_index(drop=True)
