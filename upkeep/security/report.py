"""The findings of a security run, for people (pure): a sentence of counts, severity and per-host tables, what is
new, what persists and for how long, what was fixed, and the waivers in force or expired."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from upkeep.humanize import duration
from upkeep.security.findings import SEVERITIES, FindingRecord, Reconciliation, Severity, Waiver
from upkeep.security.store import Baseline

ROWS = 200  # per table: the rest is counted, and in the table artifact


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def at_least(severity: Severity, floor: Severity) -> bool:
    """True when `severity` is `floor` or worse."""
    return SEVERITIES.index(severity) <= SEVERITIES.index(floor)


def summary(rec: Reconciliation, now: datetime) -> str:
    """One paragraph: open findings by severity, new / persisting (the oldest's age) / fixed, waived."""
    counts = rec.counts()
    total = sum(counts.values())
    by = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"
    oldest = min((r.first_seen for r in rec.persisting), default=None)
    age = f" (the oldest open for {duration(now - oldest)})" if oldest is not None else ""
    text = (f"**{total} open finding(s)**: {by}. {len(rec.new)} new since the last run, {len(rec.persisting)} "
            f"persisting{age}, {len(rec.fixed)} fixed.")
    if rec.waived:
        text += f" {len(rec.waived)} hidden by {len(rec.waivers_in_force)} waiver(s) in force."
    if rec.expired_waivers:
        text += f" **{len(rec.expired_waivers)} waiver(s) expired**: their findings count again."
    return text


def _severity_table(records: Sequence[FindingRecord]) -> list[str]:
    hosts = sorted({r.finding.host for r in records})
    if not hosts:
        return []
    lines = ["| host | " + " | ".join(SEVERITIES) + " | new |", "|---|" + "---:|" * (len(SEVERITIES) + 1)]
    for h in hosts:
        mine = [r for r in records if r.finding.host == h]
        c = Counter(r.finding.severity for r in mine)
        lines.append(f"| {h} | " + " | ".join(str(c.get(s, 0)) for s in SEVERITIES)
                     + f" | {sum(1 for r in mine if r.status == 'new')} |")
    return lines


def _table(title: str, header: str, rows: list[str]) -> list[str]:
    if not rows:
        return []
    more = [f"\n…and {len(rows) - ROWS} more (the findings table has every one)."] if len(rows) > ROWS else []
    cols = header.count("|") - 1
    return [f"\n### {title}\n", header, "|" + "---|" * cols, *rows[:ROWS], *more]


def state_markdown(title: str, current: Mapping[str, Sequence[str]], approved: Mapping[str, Baseline | None]) -> str:
    """What an approver approves: each host's current state (hosts with the same state and approval grouped), with
    what changed since its approved baseline marked."""
    groups: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for host, items in sorted(current.items()):
        b = approved.get(host)
        groups.setdefault((tuple(items), b.describe() if b else ""), []).append(host)
    out = [f"\n### {title}\n"]
    for (items, was), hosts in groups.items():
        first = approved.get(hosts[0])
        before = set(first.items) if first is not None else None
        out.append(f"\n**{', '.join(hosts)}** — {'last approved: ' + was if was else 'none approved yet'}\n")
        out += ["| | item |", "|---|---|"]
        out += [f"| {'new' if before is not None and i not in before else ''} | {_cell(i, 200)} |" for i in items]
        out += [f"| removed | {_cell(i, 200)} |" for i in sorted((before or set()) - set(items))]
    return "\n".join(out) + "\n"


def markdown(title: str, rec: Reconciliation, now: datetime, notes: Sequence[str] = ()) -> str:
    """The findings section of a security run's report."""
    open_ = [*rec.new, *rec.persisting]
    out = [f"## {title}\n", summary(rec, now), ""]
    out += [f"- {n}" for n in notes]
    if open_:
        out += ["\n### Open findings per host\n", *_severity_table(open_)]
    out += _table("New", "| severity | host | finding | fix |",
                  [f"| {r.finding.severity} | {r.finding.host} | {_cell(r.finding.title)} | {_cell(r.finding.fix, 100)} |"
                   for r in rec.new])
    out += _table("Persisting", "| severity | host | finding | open for |",
                  [f"| {r.finding.severity} | {r.finding.host} | {_cell(r.finding.title)} | {duration(now - r.first_seen)} |"
                   for r in rec.persisting])
    out += _table("Fixed since the last run", "| host | finding | was open for |",
                  [f"| {r.finding.host} | {_cell(r.finding.title)} | {duration(r.last_seen - r.first_seen)} |"
                   for r in rec.fixed])
    out += _waivers(rec)
    return "\n".join(out) + "\n"


def _waivers(rec: Reconciliation) -> list[str]:
    hides = Counter(r.waiver for r in rec.waived)
    rows = [f"| `{w.pattern}` | {w.owner} | {_cell(w.reason, 100)} | {w.expires} | {hides.get(w.pattern, 0)} |"
            for w in rec.waivers_in_force]
    out = _table("Waivers in force", "| pattern | owner | reason | expires | hides |", rows)
    out += _table("Expired waivers (their findings count again)", "| pattern | owner | reason | expired |",
                  [f"| `{w.pattern}` | {w.owner} | {_cell(w.reason, 100)} | {w.expires} |" for w in rec.expired_waivers])
    return out


def rows(rec: Reconciliation) -> list[dict[str, Any]]:
    """Every record, for the findings table artifact (plain JSON types)."""
    return [{"status": r.status, "severity": r.finding.severity, "host": r.finding.host, "source": r.finding.source,
             "finding": r.finding.title, "fix": r.finding.fix, "first_seen": r.first_seen.isoformat(timespec="seconds"),
             "last_seen": r.last_seen.isoformat(timespec="seconds"), "waiver": r.waiver or "", "id": r.finding.id}
            for r in [*rec.new, *rec.persisting, *rec.waived, *rec.fixed]]


def expired_waiver_lines(waivers: Sequence[Waiver]) -> list[str]:
    return [f"waiver `{w.pattern}` (owner {w.owner}) expired on {w.expires}: its findings are reported again"
            for w in waivers]
