"""The compliance evidence pack's shapes (pure): the run records and S3 objects the audit reads, the evidence items
it cites, a control and its verdict, and the manifest that is signed and kept. `upkeep.reviews.compliance` holds the
rules that judge each control and the report."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from upkeep import __version__, humanize
from upkeep.backup.manifest import signature_problem
from upkeep.errors import ReviewInputError
from upkeep.routines import RoutineSpec
from upkeep.runrecords import TIME_FORMAT

EvidenceKind = Literal["run-record", "s3-object", "baseline"]
_RECORD_KEYS = ("routine", "flow_run_id", "started_at", "ended_at", "status")


def aware(value: datetime | str) -> datetime:
    """A time from a record or a store document (ISO text or datetime; naive means UTC, as MongoDB returns it)."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def day(when: datetime | None) -> str:
    """'2026-12-06', or '—' for no date."""
    return f"{when.astimezone(UTC):%Y-%m-%d}" if when is not None else "—"


def minute(when: datetime | None) -> str:
    """'2026-12-06 12:00 UTC', or '—'."""
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if when is not None else "—"


def age(delta: timedelta) -> str:
    """'188 days' from two days on (an audit counts days), else '5 h', '40 min'."""
    return humanize.count(delta.days, "day") if delta >= timedelta(days=2) else humanize.duration(delta)


@dataclass(frozen=True)
class EvidenceRecord:
    """A run record (as `upkeep.runrecords.run_record` writes it) and where it is kept, with the stored object's
    SHA-256 and size, so the pack cites exactly the bytes an auditor can fetch again."""

    record: Mapping[str, Any]
    bucket: str
    key: str
    record_sha256: str
    size: int

    def __post_init__(self) -> None:
        missing = [k for k in _RECORD_KEYS if k not in self.record]
        if missing:
            raise ReviewInputError(f"run record s3://{self.bucket}/{self.key} has no {', '.join(missing)}: it is not a record "
                             "upkeep.runrecords.run_record wrote; remove it from the run-records prefix or pass only "
                             "run records")

    @classmethod
    def from_body(cls, bucket: str, key: str, body: bytes) -> EvidenceRecord:
        """From the stored object's bytes: parsed, and its checksum and size taken from those very bytes."""
        try:
            record = json.loads(body)
        except ValueError as exc:
            raise ReviewInputError(f"run record s3://{bucket}/{key} is not JSON ({exc}): remove or restore that object") from exc
        return cls(record, bucket, key, hashlib.sha256(body).hexdigest(), len(body))

    @property
    def routine(self) -> str:
        return str(self.record["routine"])

    @property
    def status(self) -> str:
        return str(self.record["status"])

    @property
    def started_at(self) -> datetime:
        return aware(self.record["started_at"])

    @property
    def ended_at(self) -> datetime:
        return aware(self.record["ended_at"])

    @property
    def facts(self) -> Mapping[str, Any]:
        return self.record.get("facts") or {}

    @property
    def dry_run(self) -> bool:
        return bool(self.record.get("dry_run", False))

    def item(self) -> EvidenceItem:
        r = self.record
        return EvidenceItem("run-record", f"{self.routine} run", self.ended_at, routine=self.routine,
                            flow_run_id=str(r["flow_run_id"]), started_at=self.started_at, ended_at=self.ended_at,
                            status=self.status, report_sha256=str(r.get("report_sha256", "")), bucket=self.bucket,
                            key=self.key, sha256=self.record_sha256, size=self.size)


@dataclass(frozen=True)
class EvidenceObject:
    """An S3 object the audit cites (a backup manifest, a report): where, its SHA-256 and size, and what it is."""

    bucket: str
    key: str
    sha256: str
    size: int
    what: str  # "backup manifest"


@dataclass(frozen=True)
class ComplianceInputs:
    """Everything the controls are judged on, read by the task beforehand. `records`: routine id → its run records,
    oldest first; `findings`: open finding documents (`FindingRecord.document()` plus "scope"); `baselines`: approved
    baselines as dicts (kind, host, approved_by, approved_at)."""

    environment: str
    now: datetime
    records: Mapping[str, Sequence[EvidenceRecord]] = field(default_factory=dict)
    objects: Sequence[EvidenceObject] = ()
    findings: Sequence[Mapping[str, Any]] = ()
    baselines: Sequence[Mapping[str, Any]] = ()
    patch_sla: timedelta = timedelta(days=7)
    rto_target: timedelta | None = None

    def __post_init__(self) -> None:
        if self.patch_sla <= timedelta(0):
            raise ReviewInputError(f"patch_sla of {self.environment} is {self.patch_sla}: set security.patch_sla to a positive "
                             "duration, e.g. 7d")
        if self.rto_target is not None and self.rto_target <= timedelta(0):
            raise ReviewInputError(f"rto_target of {self.environment} is {self.rto_target}: set dr.rto_target to a positive "
                             "duration, e.g. 30m, or leave it out")

    @property
    def at(self) -> datetime:
        return aware(self.now)

    def runs(self, *routines: str) -> list[EvidenceRecord]:
        """The runs of these routines that can be evidence either way (not skipped, not dry runs), oldest first."""
        runs = [r for rt in routines for r in self.records.get(rt, ()) if r.status != "skipped" and not r.dry_run]
        return sorted(runs, key=lambda r: r.ended_at)

    def object(self, key: str) -> EvidenceObject | None:
        return next((o for o in self.objects if o.key == key), None)


@dataclass(frozen=True)
class EvidenceItem:
    """One thing a control cites: a run record, an S3 object, or an approved baseline."""

    kind: EvidenceKind
    what: str  # "dr-test run", "backup manifest of 20261205T020000Z-3f9a", "access baseline of web-1"
    at: datetime | None  # when it was made: the run's end, the approval
    routine: str = ""
    flow_run_id: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    status: str = ""
    report_sha256: str = ""
    bucket: str = ""
    key: str = ""
    sha256: str = ""
    size: int | None = None
    approved_by: str = ""

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.bucket else self.key

    def document(self) -> dict[str, Any]:
        """For the manifest: the fields that apply, times as ISO text."""
        doc: dict[str, Any] = {"kind": self.kind, "what": self.what}
        for name in ("at", "started_at", "ended_at"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value.astimezone(UTC).isoformat(timespec="seconds")
        for name in ("routine", "flow_run_id", "status", "report_sha256", "bucket", "key", "sha256", "approved_by"):
            if getattr(self, name):
                doc[name] = getattr(self, name)
        if self.size is not None:
            doc["size"] = self.size
        return doc

    def describe(self) -> str:
        """'dr-test run 0f3c…, completed 2026-06-01 10:00 UTC (took 25 min); record s3://r/k · 1.2 KB · sha256 1a2b3c4d…'"""
        if self.kind == "baseline":
            return f"{self.what}, approved by {self.approved_by} on {minute(self.at)}"
        if self.kind == "run-record":
            took = (f" (took {humanize.duration(self.ended_at - self.started_at)})"
                    if self.started_at is not None and self.ended_at is not None else "")
            report = f" · report {humanize.digest(self.report_sha256, 'sha256')}" if self.report_sha256 else ""
            return (f"{self.what} {self.flow_run_id}, {self.status} {minute(self.ended_at)}{took}; "
                    f"record {self.location}{self._bytes()}{report}")
        return f"{self.what} {self.location}{self._bytes()}"

    def _bytes(self) -> str:
        size = f" · {humanize.size(self.size)}" if self.size is not None else ""
        return size + (f" · {humanize.digest(self.sha256, 'sha256')}" if self.sha256 else "")


def baseline_item(b: Mapping[str, Any]) -> EvidenceItem:
    """An approved baseline (a `Baseline` as a dict, or the stored document) as evidence: who approved it, when."""
    return EvidenceItem("baseline", f"{b['kind']} baseline of {b['host']}", aware(b["approved_at"]),
                        approved_by=str(b["approved_by"]))


Status = Literal["Ready", "Needs renewal", "Failing"]
STATUSES: tuple[Status, ...] = ("Ready", "Needs renewal", "Failing")
#: Evidence older than this many periods no longer counts as lapsed but as absent: Failing, not Needs renewal.
STALE_FACTOR = 2


@dataclass(frozen=True)
class Control:
    """One control: what it asks (the guide's words), how long its evidence lasts, the routines it cites."""

    id: str
    title: str
    guide: str
    period_days: int
    routines: tuple[str, ...]
    renew: RoutineSpec  # what to run for fresh evidence
    noun: str  # what its evidence is called in a sentence: "DR test"

    @property
    def period(self) -> timedelta:
        return timedelta(days=self.period_days)

    @property
    def void_after(self) -> timedelta:
        """Evidence older than this is no evidence: the control fails instead of needing renewal."""
        return STALE_FACTOR * self.period


@dataclass(frozen=True)
class ControlResult:
    """A control's verdict, the sentence that explains it, and the evidence it rests on."""

    control: Control
    status: Status
    reason: str  # a sentence without its final full stop; says what to run when not Ready
    evidence_at: datetime | None  # the newest evidence judged
    renew_by: datetime | None  # evidence_at + the control's period
    evidence: tuple[EvidenceItem, ...] = ()

    def describe(self) -> str:
        """'dr-test-passed: Failing — no DR test within 92 days (the last, 2026-06-01, is 188 days old); run …'"""
        return f"{self.control.id}: {self.status} — {self.reason}."

    def document(self) -> dict[str, Any]:
        c = self.control
        return {"id": c.id, "title": c.title, "guide": c.guide, "period_days": c.period_days,
                "failing_after_days": c.void_after.days, "routines": list(c.routines),
                "status": self.status, "reason": self.reason, "renew_with": c.renew.id,
                "evidence_at": _iso(self.evidence_at), "renew_by": _iso(self.renew_by),
                "evidence": [e.document() for e in self.evidence]}


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat(timespec="seconds") if when is not None else None


def quarter(when: datetime) -> tuple[str, datetime]:
    """'2026-Q4' and the quarter's first instant (UTC)."""
    t = when.astimezone(UTC)
    n = (t.month - 1) // 3 + 1
    return f"{t.year}-Q{n}", datetime(t.year, 3 * n - 2, 1, tzinfo=UTC)


def pack_keys(prefix: str, environment: str, generated_at: datetime) -> tuple[str, str, str]:
    """Where a pack is kept: `<prefix><environment>/compliance/<YYYY>-Q<n>/<timestamp>/` manifest.json, manifest.sig
    and report.md (one folder per pack, so a later pack of the quarter never replaces an earlier one)."""
    base = f"{prefix}{environment}/compliance/{quarter(generated_at)[0]}/{generated_at.astimezone(UTC).strftime(TIME_FORMAT)}/"
    return base + "manifest.json", base + "manifest.sig", base + "report.md"


def manifest_bytes(m: Mapping[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8): the same manifest always gives the same bytes and signature."""
    try:
        return json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ReviewInputError(f"the compliance manifest holds a value JSON cannot carry ({exc}): build it with "
                         "upkeep.reviews.evidence.manifest, which writes times as ISO text") from exc


def verify_pack(data: bytes, signature: str, key: bytes | None) -> str | None:
    """None when `signature` (from `upkeep.backup.manifest.sign`) vouches for the pack's manifest bytes, else why."""
    problem = signature_problem(data, signature, key)
    return None if problem is None else f"compliance pack manifest: {problem}"


def manifest(inputs: ComplianceInputs, results: Sequence[ControlResult], generated_at: datetime) -> dict[str, Any]:
    """The pack's manifest (JSON-ready: times as ISO text): the period, the parameters, each control with its evidence."""
    generated = aware(generated_at)
    name, start = quarter(generated)
    dated = [e.at for r in results for e in r.evidence if e.at is not None]
    return {"version": 1, "tool": f"upkeep {__version__}", "environment": inputs.environment,
            "generated_at": _iso(generated), "evaluated_at": _iso(inputs.at),
            "period": {"quarter": name, "from": _iso(start), "to": _iso(generated),
                       "evidence_from": _iso(min(dated, default=None)), "evidence_to": _iso(max(dated, default=None))},
            "parameters": {"patch_sla_seconds": inputs.patch_sla.total_seconds(),
                           "rto_target_seconds": inputs.rto_target.total_seconds() if inputs.rto_target else None},
            "summary": {s: sum(r.status == s for r in results) for s in STATUSES},
            "controls": [r.document() for r in results]}
