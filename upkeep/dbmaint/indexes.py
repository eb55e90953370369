"""Index health from snapshots of `$indexStats` kept across runs (pure: plain data in, decisions out).

MongoDB's `$indexStats` counts an index's accesses since `accesses.since`; the counters reset when the
server restarts, when the index is dropped and recreated, and on `collMod`. One reading therefore says
little: an index with 3 accesses may have had them last year. The snapshots of every run are kept (the
monitoring store), and an index is *unused* when its counter has not moved for at least `min_age`,
judged only inside the current counting period (since the last reset: accesses between the last
snapshot before a reset and the reset itself were lost, so the quiet time restarts there). Like Atlas'
Performance Advisor (7+ days without access since the counters reset).

A server whose `$indexStats` gives no `since` (SecantusDB) has no usable counters: "index usage not
available on this server", and no index is ever proposed from it. `_id`, unique, TTL, partial-unique and
protected indexes are never proposed. An unused index is hidden first and dropped on a later run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

NOT_AVAILABLE = "index usage not available on this server ($indexStats gives no accesses.since): no index is proposed"


@dataclass(frozen=True)
class IndexUsage:
    """One index in one snapshot: its identity, what protects it, and its access counter."""

    ns: str  # "db.collection"
    name: str
    key: tuple[tuple[str, Any], ...]
    accesses: int
    since: datetime | None  # when the counter started (None: the server does not say)
    unique: bool = False
    ttl: bool = False
    hidden: bool = False
    partial: bool = False
    sparse: bool = False

    @property
    def id(self) -> str:
        return f"{self.ns}.{self.name}"


def parse_index_stats(ns: str, docs: Iterable[Mapping[str, Any]]) -> list[IndexUsage]:
    """IndexUsage per document of `db.coll.aggregate([{"$indexStats": {}}])` (MongoDB 4.2.4+ adds `spec`)."""
    out = []
    for d in docs:
        spec = d.get("spec") or {}
        accesses = d.get("accesses") or {}
        since = accesses.get("since")
        out.append(IndexUsage(
            ns=ns, name=str(d["name"]), key=tuple((str(k), v) for k, v in dict(d.get("key") or spec.get("key") or {}).items()),
            accesses=int(accesses.get("ops") or 0), since=since if isinstance(since, datetime) else None,
            unique=bool(spec.get("unique")), ttl="expireAfterSeconds" in spec, hidden=bool(spec.get("hidden")),
            partial="partialFilterExpression" in spec, sparse=bool(spec.get("sparse"))))
    return out


@dataclass(frozen=True)
class IndexSnapshot:
    """Every index of the maintained databases at one moment."""

    taken_at: datetime
    indexes: tuple[IndexUsage, ...]

    def by_id(self) -> dict[str, IndexUsage]:
        return {ix.id: ix for ix in self.indexes}


@dataclass(frozen=True)
class UnusedIndex:
    index: IndexUsage
    quiet_since: datetime  # no access counted after this (a lower bound)
    detail: str


@dataclass
class UsageVerdict:
    """What the snapshots say: indexes unused long enough, the reasons others are not proposed, and
    whether the server gives usable counters at all."""

    unused: list[UnusedIndex] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # index id → why it is not proposed
    available: bool = True
    note: str = ""


def protection(ix: IndexUsage, protected: Iterable[str]) -> str | None:
    """Why an index is never proposed for dropping, or None."""
    if ix.name == "_id_":
        return "the _id index"
    if ix.unique:
        return "unique: it enforces a constraint, not just speed"
    if ix.ttl:
        return "TTL: it expires documents"
    if {ix.name, ix.id, f"{ix.ns.split('.', 1)[-1]}.{ix.name}"} & set(protected):
        return "listed as protected"
    return None


def quiet_since(history: Sequence[tuple[datetime, IndexUsage]]) -> datetime | None:
    """Since when the counter has not moved, from (snapshot time, usage) oldest first; None when unknown.

    Only the current counting period counts: a new `since`, or a counter that went down, is a reset."""
    if not history or history[-1][1].since is None:
        return None
    period = [history[-1]]
    for taken, ix in reversed(history[:-1]):
        newer = period[0][1]
        if ix.since != newer.since or ix.accesses > newer.accesses:
            break
        period.insert(0, (taken, ix))
    current = period[-1][1].accesses
    if current == 0:
        return period[-1][1].since  # never accessed in this period: quiet since the counter started
    first_at_current = next(taken for taken, ix in period if ix.accesses == current)
    return first_at_current  # the last access happened before this snapshot saw the value


def unused_indexes(snapshots: Sequence[IndexSnapshot], min_age: timedelta, protected: Iterable[str] = ()) -> UsageVerdict:
    """The indexes whose counters have not moved for `min_age` up to the latest snapshot, inside its counting
    period (see the module); what is known is only what the snapshots saw, so the latest one is "now"."""
    verdict = UsageVerdict()
    if not snapshots:
        return UsageVerdict(available=False, note="no index snapshot yet")
    ordered = sorted(snapshots, key=lambda s: s.taken_at)
    latest = ordered[-1]
    now = latest.taken_at
    if latest.indexes and all(ix.since is None for ix in latest.indexes):
        return UsageVerdict(available=False, note=NOT_AVAILABLE)
    protected = list(protected)
    for ix in latest.indexes:
        why = protection(ix, protected)
        if why:
            verdict.kept[ix.id] = why
            continue
        history = [(s.taken_at, s.by_id()[ix.id]) for s in ordered if ix.id in s.by_id()]
        quiet = quiet_since(history)
        if quiet is None:
            verdict.kept[ix.id] = "no access counter on this server"
        elif now - quiet < min_age:
            verdict.kept[ix.id] = (f"counting only since {quiet:%Y-%m-%d %H:%M} UTC (< {_days(min_age)})" if quiet == ix.since
                                   else f"used in the last {_days(min_age)}")
        else:
            detail = (f"no access since {quiet:%Y-%m-%d %H:%M} UTC ({_days(now - quiet)}; "
                      f"{ix.accesses} in all since the counters started)")
            verdict.unused.append(UnusedIndex(ix, quiet, detail))
    return verdict


def redundant_indexes(indexes: Iterable[IndexUsage]) -> dict[str, str]:
    """index id → the index that makes it redundant: its key is a prefix of another's key on the same
    collection (same fields, order and directions). Unique, TTL, partial and sparse indexes are never redundant."""
    by_ns: dict[str, list[IndexUsage]] = {}
    for ix in indexes:
        by_ns.setdefault(ix.ns, []).append(ix)
    out: dict[str, str] = {}
    for group in by_ns.values():
        for a in group:
            if a.name == "_id_" or a.unique or a.ttl or a.partial or a.sparse:
                continue
            for b in group:
                if b is not a and len(b.key) > len(a.key) and b.key[: len(a.key)] == a.key and not (b.partial or b.sparse):
                    out[a.id] = b.name
                    break
    return out


def _days(d: timedelta) -> str:
    days = d.total_seconds() / 86400
    return f"{days:.0f} days" if days >= 2 else f"{d.total_seconds() / 3600:.0f} h"


@dataclass
class IndexPlan:
    """What this run does with unused indexes: hide the newly unused; drop (approved or automatic) those it hid
    on an earlier run that are still unused; forget hidden ones that no longer exist."""

    hide: list[UnusedIndex] = field(default_factory=list)
    drop: list[UnusedIndex] = field(default_factory=list)
    forget: list[str] = field(default_factory=list)


def index_plan(verdict: UsageVerdict, hidden: Mapping[str, datetime], existing: Iterable[str], now: datetime,
               policy: str) -> IndexPlan:
    """Hide first, drop on a later run (Atlas: hide an index before dropping it); `policy` "never" plans nothing."""
    plan = IndexPlan(forget=sorted(set(hidden) - set(existing)))
    if policy == "never" or not verdict.available:
        return plan
    for u in verdict.unused:
        when = hidden.get(u.index.id)
        if when is None:
            plan.hide.append(u)
        elif when < now:
            plan.drop.append(u)
    return plan
