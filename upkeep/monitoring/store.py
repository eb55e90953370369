"""The monitoring store in MongoDB: a time-series collection of samples, alert states,
maintenance locks (alerts are suppressed for hosts under maintenance) and incidents."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import CollectionInvalid, OperationFailure, PyMongoError

from upkeep.errors import MonitoringStoreError as MonitoringStoreError  # re-exported: defined here before upkeep.errors
from upkeep.monitoring.rules import AlertState
from upkeep.monitoring.samples import Counters, Sample


class MonitoringStore:
    def __init__(self, client: Any, database: str, retention: timedelta = timedelta(days=30)) -> None:
        self.db = client[database]
        self.retention = retention

    def ensure(self) -> None:
        """Create the time-series collection (with expiry) and the indexes once."""
        try:
            if "samples" not in self.db.list_collection_names():
                try:
                    self.db.create_collection("samples",
                                              timeseries={"timeField": "ts", "metaField": "meta", "granularity": "seconds"},
                                              expireAfterSeconds=int(self.retention.total_seconds()))
                except (CollectionInvalid, OperationFailure):
                    pass  # created by a concurrent run, or a server without time series: a plain collection works too
            self.db.alert_states.create_index([("env", 1), ("rule", 1), ("subject", 1)], unique=True)
            self.db.incidents.create_index([("env", 1), ("opened_at", -1)])
        except PyMongoError as exc:
            raise MonitoringStoreError(f"monitoring store unavailable: {exc}") from exc

    def add(self, samples: Iterable[Sample]) -> int:
        docs = [s.document() for s in samples]
        if docs:
            try:
                self.db.samples.insert_many(docs, ordered=False)
            except PyMongoError as exc:
                raise MonitoringStoreError(f"cannot store {len(docs)} samples: {exc}") from exc
        return len(docs)

    def since(self, env: str, start: datetime) -> list[dict[str, Any]]:
        return list(self.db.samples.find({"meta.env": env, "ts": {"$gte": start}}, {"_id": 0}))

    def history(self, env: str, start: datetime, metrics: Iterable[str]) -> list[dict[str, Any]]:
        """The samples of these metrics since `start` (what a review reads: weeks of them, so only what it needs)."""
        try:
            found = self.db.samples.find({"meta.env": env, "meta.metric": {"$in": list(metrics)}, "ts": {"$gte": start}},
                                         {"_id": 0})
            return [{**d, "ts": _aware(d["ts"])} for d in found]
        except PyMongoError as exc:
            raise MonitoringStoreError(f"cannot read the stored samples since {start:%Y-%m-%d}: {exc}") from exc

    # -- alert states -----------------------------------------------------------------------------
    def states(self, env: str) -> dict[tuple[str, str], AlertState]:
        out = {}
        for d in self.db.alert_states.find({"env": env}, {"_id": 0, "env": 0}):
            state = AlertState(**{k: _aware(v) for k, v in d.items()})
            out[(state.rule, state.subject)] = state
        return out

    def save_states(self, env: str, states: Iterable[AlertState]) -> None:
        for s in states:
            doc = {"env": env, **vars(s)}
            self.db.alert_states.replace_one({"env": env, "rule": s.rule, "subject": s.subject}, doc, upsert=True)

    # -- I/O counters ---------------------------------------------------------------------------------
    def swap_counters(self, env: str, current: dict[str, Counters]) -> dict[str, Counters]:
        """Keep this probe's cumulative I/O counters per host; return the previous probe's (for rates)."""
        try:
            previous = {d["host"]: (_aware(d["at"]), dict(d["values"]))
                        for d in self.db.io_counters.find({"env": env, "host": {"$in": list(current)}}, {"_id": 0})}
            for host, (at, values) in current.items():
                self.db.io_counters.replace_one({"env": env, "host": host},
                                                {"env": env, "host": host, "at": at, "values": values}, upsert=True)
        except PyMongoError as exc:
            raise MonitoringStoreError(f"cannot keep the hosts' I/O counters: {exc}") from exc
        return previous

    # -- maintenance locks ------------------------------------------------------------------------
    def lock(self, env: str, hosts: list[str], run: str, routine: str, ttl: timedelta) -> None:
        now = datetime.now(UTC)
        self.db.maintenance_locks.replace_one({"run": run}, {"env": env, "hosts": hosts, "run": run, "routine": routine,
                                                              "since": now, "until": now + ttl}, upsert=True)

    def unlock(self, run: str) -> None:
        self.db.maintenance_locks.delete_one({"run": run})

    def locked_hosts(self, env: str) -> dict[str, str]:
        """host → routine currently maintaining it (expired locks are ignored)."""
        now = datetime.now(UTC)
        out: dict[str, str] = {}
        for lock in self.db.maintenance_locks.find({"env": env, "until": {"$gt": now}}):
            out.update({h: f"{lock['routine']} run {lock['run']}" for h in lock["hosts"]})
        return out

    # -- database maintenance: statistics snapshots, hidden indexes --------------------------------
    def save_db_snapshot(self, env: str, snapshot: dict[str, Any]) -> None:
        try:
            self.db.db_snapshots.insert_one({"env": env, **snapshot})
        except PyMongoError as exc:
            raise MonitoringStoreError(f"cannot keep the database statistics snapshot: {exc}") from exc

    def db_snapshots(self, env: str, database: str, since: datetime) -> list[dict[str, Any]]:
        """The database's snapshots taken since `since`, oldest first."""
        try:
            found = self.db.db_snapshots.find({"env": env, "database": database, "taken_at": {"$gte": since}},
                                              {"_id": 0}, sort=[("taken_at", 1)])
            return [{**d, "taken_at": _aware(d["taken_at"])} for d in found]
        except PyMongoError as exc:
            raise MonitoringStoreError(f"cannot read the database statistics snapshots: {exc}") from exc

    def hidden_indexes(self, env: str) -> dict[str, datetime]:
        """index id (db.collection.name) → when Upkeep hid it."""
        return {d["index"]: _aware(d["hidden_at"]) for d in self.db.hidden_indexes.find({"env": env})}

    def mark_hidden(self, env: str, index: str, at: datetime, hidden: bool = True) -> None:
        if hidden:
            self.db.hidden_indexes.replace_one({"env": env, "index": index}, {"env": env, "index": index, "hidden_at": at},
                                               upsert=True)
        else:
            self.db.hidden_indexes.delete_one({"env": env, "index": index})

    # -- incidents --------------------------------------------------------------------------------
    def open_incident(self, env: str, record: dict[str, Any]) -> None:
        self.db.incidents.insert_one({"env": env, **record})

    def update_incident(self, incident_id: str, changes: dict[str, Any]) -> None:
        self.db.incidents.update_one({"incident_id": incident_id}, {"$set": changes})

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.db.incidents.find_one({"incident_id": incident_id}, {"_id": 0})
        return found


def _aware(value: Any) -> Any:
    """pymongo returns naive UTC datetimes; make them aware."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
