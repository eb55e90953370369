"""The guides' schedules, item by item, and what runs each (pure): the composites' reports and the README's routine
tables are made from this and `upkeep.routines`, so no guide item is silently dropped.

An item is done by a routine the composite runs, by a routine on its own cadence (the minute health check, the
watchdog), or by people (listed with an owner in the monthly report: `reviews.manual`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from upkeep.routines import COMPOSITES, ROUTINES, RoutineSpec, composites_of, own_cadence, parts, routine

EM, EE = "Event Manager", "Event Editor"


@dataclass(frozen=True)
class GuideItem:
    words: str  # as the guide says it
    source: str  # which guide and section
    routine: str | None  # the routine doing it, when software does
    how: str = ""  # when the routine is not a part of the composite: where it runs instead

    def done_by(self, composite: RoutineSpec) -> str:
        """'log-rotation', 'health-check (every minute, on its own)', 'people (manual checklist)'."""
        if self.routine is None:
            return f"people ({self.how})" if self.how else "people"
        inside = self.routine in COMPOSITES.get(composite.id, ())
        return self.routine if inside else f"{self.routine} ({self.how})"


GUIDE: Mapping[str, tuple[GuideItem, ...]] = MappingProxyType({
    "daily-maintenance": (
        GuideItem("rotate_logs / log_rotation", f"{EM}: Daily Tasks, schedule", "log-rotation"),
        GuideItem("check_disk_space", f"{EM}: Daily Tasks", "disk-check"),
        GuideItem("clean_temp_files", f"{EM}: Daily Tasks", "clean-temp"),
        GuideItem("monitor application logs, check error rates", f"{EE}: Daily Tasks", "log-analysis"),
        GuideItem("verify_backups / backup_verification, check backup status", f"{EM}: Daily Tasks; {EE}: Daily Tasks",
                  "backup"),
        GuideItem("monitor support tickets, address critical issues", f"{EE}: User Support", "support-queue"),
        GuideItem("health_checks / monitor_system_health", f"{EM}: schedule, Daily Tasks", "health-check",
                  "every minute, on its own"),
        GuideItem("review security alerts", f"{EE}: Daily Tasks", "security-check", "daily, on its own"),
        GuideItem("review user feedback, track common problems", f"{EE}: User Support", None, "manual checklist"),
    ),
    "weekly-maintenance": (
        GuideItem("update_security_patches / security_updates", f"{EM}: Weekly Tasks, schedule", "security-patches"),
        GuideItem("optimize_database / database_optimization, clean_old_sessions", f"{EM}: Weekly Tasks, schedule",
                  "database-maintenance"),
        GuideItem("SSL certificate check", f"{EM}: Security Maintenance", "certificates"),
        GuideItem("clear stale cache", f"{EM}: Performance Maintenance", "clear-cache"),
        GuideItem("analyze_performance_metrics / performance_checks; resource usage, memory leaks, CPU, disk space",
                  f"{EM}: Weekly Tasks, schedule; {EE}: Performance Review", "performance-review"),
        GuideItem("check security logs, review access patterns and user permissions", f"{EE}: Security Review",
                  "security-review"),
        GuideItem("verify_monitoring_systems", f"{EM}: Weekly Tasks", "watchdog",
                  "continuously, outside the serving process: `upkeep watchdog`"),
    ),
    "monthly-maintenance": (
        GuideItem("system_updates; update dependencies, apply security patches", f"{EM}: schedule; {EE}: Monthly Tasks",
                  "system-update"),
        GuideItem("test backup systems, verify data integrity", f"{EE}: Monthly Tasks, Backup Verification",
                  "verify-backup"),
        GuideItem("full_security_audit", f"{EM}: schedule", "security-audit"),
        GuideItem("capacity_review", f"{EM}: schedule", "capacity-review"),
        GuideItem("update documentation (API docs, changelog)", f"{EE}: Monthly Tasks, Documentation Maintenance",
                  "documentation-check"),
        GuideItem("review configuration", f"{EE}: Monthly Tasks", "config-review"),
        GuideItem("update user guides, train staff, update backup strategy", f"{EE}: Documentation Maintenance, "
                  "Monthly Tasks", None, "manual checklist in the monthly report, each with an owner"),
    ),
    "quarterly-maintenance": (
        GuideItem("infrastructure_review", f"{EM}: schedule", "infrastructure-review"),
        GuideItem("disaster_recovery_test", f"{EM}: schedule, Recovery Testing", "dr-test"),
        GuideItem("compliance_audit", f"{EM}: schedule", "compliance-audit"),
    ),
})

_CADENCE = {"minutely": "every minute", "daily": "daily 06:00 UTC", "daily-midday": "daily 12:00 UTC",
            "weekly": "weekly", "monthly": "monthly", "quarterly": "quarterly"}


def schedule_of(spec: RoutineSpec) -> str:
    """How a routine is scheduled, in words: its cadence (at the window's opening when disruptive), inside which
    composite, or on demand."""
    inside = [c.id for c in composites_of(spec)]
    own = own_cadence(spec)
    if own is not None:
        when = _CADENCE[own] + (", at the window's opening" if spec.disruptive else "")
        return when + (f"; also in {', '.join(inside)}" if inside else "")
    if inside:
        return f"in {', '.join(inside)}"
    return "on demand"


def routine_table() -> str:
    """The README's schedule table: every routine, how it is scheduled, whether it is disruptive, what it does."""
    rows = ["| routine (deployment `<routine>-<environment>`) | schedule | disruptive | what it does |",
            "|---|---|---|---|"]
    for spec in ROUTINES:
        rows.append(f"| `{spec.id}` | {schedule_of(spec)} | {'yes' if spec.disruptive else 'no'} | {spec.description} |")
    return "\n".join(rows) + "\n"


def composite_table() -> str:
    """The README's composite table: each composite's parts in order, and every item of the guides' schedule with
    what does it."""
    rows = ["| composite | runs, in this order | the guides' items, and what does each |", "|---|---|---|"]
    for composite_id in COMPOSITES:
        composite = routine(composite_id)
        order = " → ".join(f"`{p.id}`" for p in parts(composite))
        items = "; ".join(f"{item.words}: {item.done_by(composite)}" for item in GUIDE.get(composite_id, ()))
        rows.append(f"| `{composite_id}` ({schedule_of(composite)}) | {order} | {items} |")
    return "\n".join(rows) + "\n"


def unassigned_items() -> list[str]:
    """Guide items that name a routine id no routine has (a typo, or a routine removed): empty when consistent."""
    known = {s.id for s in ROUTINES} | {"watchdog"}
    return [f"{c}: {i.words} → {i.routine}" for c, items in GUIDE.items() for i in items
            if i.routine is not None and i.routine not in known]


@dataclass(frozen=True)
class PartOutcome:
    routine: str
    state: str  # Completed, Failed, Skipped, Crashed…
    message: str
    seconds: float


def composite_markdown(composite: RoutineSpec, environment: str, outcomes: list[PartOutcome],
                       manual: Sequence[tuple[str, str, str]] = ()) -> str:
    """A composite run's report: one sentence, each part's outcome in order, every guide item with what did it, and
    (monthly) the manual checklist — item, owner, where the guide asks for it."""
    bad = [o for o in outcomes if o.state in ("Failed", "Crashed", "TimedOut")]
    head = (f"**{len(outcomes) - len(bad)} of {len(outcomes)} routines completed**"
            + (f"; failed: {', '.join(o.routine for o in bad)} (each ran even when an earlier one failed)." if bad else "."))
    lines = [f"# {composite.id} on {environment}\n", head + "\n", "| # | routine | outcome | took |", "|---|---|---|---|"]
    for i, o in enumerate(outcomes, 1):
        detail = f"{o.state}: {' '.join(o.message.split())[:300]}" if o.message else o.state
        lines.append(f"| {i} | `{o.routine}` | {detail.replace('|', '/')} | {o.seconds:.1f} s |")
    items = GUIDE.get(composite.id, ())
    if items:
        lines += ["", "## The guides' items", "", "| item | guide | done by |", "|---|---|---|"]
        lines += [f"| {i.words} | {i.source} | {i.done_by(composite)} |" for i in items]
    if manual:
        lines += ["", "## For people (the guides' items software cannot do)", "",
                  "| | item | owner | guide |", "|---|---|---|---|"]
        lines += [f"| ☐ | {item} | {owner} | {guide} |" for item, owner, guide in manual]
        if any(owner == "unassigned" for _, owner, _ in manual):
            lines += ["", "Items owned by *unassigned*: name an owner in `reviews.manual` of the inventory."]
    return "\n".join(lines) + "\n"
