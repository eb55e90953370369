"""Where the security routines keep what must outlive a run, in the monitoring store's database:

* `security_findings`: every finding's record per environment and scope (the routine that owns it: a daily check
  must not call the monthly audit's findings fixed), so a report says new / persisting (since when) / fixed;
* `security_baselines`: the last **approved** state per environment, kind (permissions, firewall, access) and
  host: its items, who approved it and when — the evidence a compliance audit cites.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import PyMongoError

from upkeep.errors import MonitoringStoreError
from upkeep.security.findings import FindingRecord


@dataclass(frozen=True)
class Baseline:
    """An approved state: what it lists is accepted (silent), anything else is a finding."""

    kind: str  # permissions, firewall, access
    host: str
    items: tuple[str, ...]
    approved_by: str
    approved_at: datetime
    reason: str = ""

    def describe(self) -> str:
        return f"approved by {self.approved_by} on {self.approved_at:%Y-%m-%d %H:%M} UTC ({len(self.items)} items)"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class SecurityStore:
    def __init__(self, client: Any, database: str) -> None:
        self.db = client[database]

    def ensure(self) -> None:
        try:
            self.db.security_findings.create_index([("env", 1), ("scope", 1), ("id", 1)], unique=True)
            self.db.security_baselines.create_index([("env", 1), ("kind", 1), ("host", 1)], unique=True)
        except PyMongoError as exc:
            raise MonitoringStoreError(f"security store unavailable: {exc}") from exc

    def findings(self, env: str, scope: str) -> list[FindingRecord]:
        """The records the last run of `scope` kept."""
        try:
            docs = list(self.db.security_findings.find({"env": env, "scope": scope}, {"_id": 0}))
        except PyMongoError as exc:
            raise MonitoringStoreError(f"cannot read the {scope} findings of {env}: {exc}") from exc
        for d in docs:
            d["first_seen"], d["last_seen"] = _aware(d["first_seen"]), _aware(d["last_seen"])
        return [FindingRecord.from_document(d) for d in docs]

    def save_findings(self, env: str, scope: str, records: Iterable[FindingRecord], *, hosts: Iterable[str] | None = None) -> int:
        """Replace the scope's records with this run's (`hosts`: only those hosts' records are replaced, the others'
        kept — a run over part of the fleet)."""
        docs = [{"env": env, "scope": scope, **r.document()} for r in records]
        where: dict[str, Any] = {"env": env, "scope": scope}
        if hosts is not None:
            where["host"] = {"$in": sorted(set(hosts))}
        try:
            self.db.security_findings.delete_many(where)
            if docs:
                self.db.security_findings.insert_many(docs, ordered=False)
        except PyMongoError as exc:
            raise MonitoringStoreError(f"cannot keep {len(docs)} {scope} findings of {env}: {exc}") from exc
        return len(docs)

    def baseline(self, env: str, kind: str, host: str) -> Baseline | None:
        try:
            d = self.db.security_baselines.find_one({"env": env, "kind": kind, "host": host}, {"_id": 0})
        except PyMongoError as exc:
            raise MonitoringStoreError(f"cannot read the {kind} baseline of {host}: {exc}") from exc
        if d is None:
            return None
        return Baseline(kind, host, tuple(d["items"]), d["approved_by"], _aware(d["approved_at"]), d.get("reason", ""))

    def approve(self, env: str, baseline: Baseline) -> None:
        """Keep `baseline` as the approved state of its kind and host (the previous one is replaced), and forget the
        findings of that kind on that host: the next run reports only what differs from it."""
        doc = {"env": env, "kind": baseline.kind, "host": baseline.host, "items": list(baseline.items),
               "approved_by": baseline.approved_by, "approved_at": baseline.approved_at, "reason": baseline.reason}
        try:
            self.db.security_baselines.replace_one({"env": env, "kind": baseline.kind, "host": baseline.host}, doc,
                                                   upsert=True)
            # what it accepts is no finding any more: not "fixed" on the next run either, just gone
            self.db.security_findings.delete_many({"env": env, "host": baseline.host, "source": baseline.kind})
        except PyMongoError as exc:
            raise MonitoringStoreError(f"cannot keep the approved {baseline.kind} baseline of {baseline.host}: {exc}") from exc
