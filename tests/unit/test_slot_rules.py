"""One disruptive routine per environment at a time (no server): how long a run may wait for the slot,
what runs where (COMPOSITES and the schedules derived from them), the slot's re-entrancy, stage times."""

from __future__ import annotations

import contextvars
from collections import Counter
from datetime import UTC, datetime, timedelta

import yaml

from deployments.specs import EXAMPLE_INVENTORY, deployment_specs, example_inventory, next_runs
from flows import _slots
from flows._slots import composite_slot, hold_slot
from flows.maintenance import _calls
from upkeep.config.loader import parse_inventory
from upkeep.report import RoutineReport, StageRecord
from upkeep.routines import (
    CAPACITY_REVIEW,
    CERTIFICATES,
    CLEAR_CACHE,
    COMPLIANCE_AUDIT,
    COMPOSITES,
    CONFIG_REVIEW,
    DAILY_MAINTENANCE,
    DATABASE_MAINTENANCE,
    DOCUMENTATION_CHECK,
    DR_TEST,
    INFRASTRUCTURE_REVIEW,
    MONTHLY_MAINTENANCE,
    PERFORMANCE_REVIEW,
    QUARTERLY_MAINTENANCE,
    ROUTINES,
    SECURITY_AUDIT,
    SECURITY_PATCHES,
    SECURITY_REVIEW,
    SYSTEM_UPDATE,
    VERIFY_BACKUP,
    WEEKLY_MAINTENANCE,
    composites_of,
    own_cadence,
    parts,
    routine,
    slot_name,
)
from upkeep.windows import Window, wait_bound

NOW = datetime(2026, 12, 13, 2, 30, tzinfo=UTC)  # a Sunday, 30 minutes into production's window
A_YEAR = {"daily": 366, "daily-midday": 366, "weekly": 53, "monthly": 12, "quarterly": 4}  # runs per cadence
SUNDAY = Window("0 2 * * 0", "UTC", timedelta(hours=2), timedelta(minutes=15))


def test_the_wait_ends_at_the_windows_cutoff() -> None:
    assert wait_bound(SUNDAY, NOW, timedelta(hours=1)) == timedelta(hours=1, minutes=15)  # 04:00 - 15 min - 02:30
    assert wait_bound(SUNDAY, NOW + timedelta(minutes=70), timedelta(hours=1)) == timedelta(minutes=5)
    assert wait_bound(SUNDAY, NOW + timedelta(minutes=80), timedelta(hours=1)) == timedelta(0)  # past the cutoff
    assert wait_bound(SUNDAY, NOW + timedelta(days=1), timedelta(hours=1)) == timedelta(0)  # closed


def test_an_always_open_window_waits_the_longest_wait() -> None:
    assert wait_bound(Window(None, always=True), NOW, timedelta(minutes=30)) == timedelta(minutes=30)
    inv = example_inventory()
    assert inv.environment("development").max_slot_wait == timedelta(minutes=30)
    assert inv.environment("production").max_slot_wait == timedelta(hours=1)  # the default


def test_one_slot_name_per_environment() -> None:
    assert slot_name("production") == "upkeep-disruptive-production"
    assert len({slot_name(e) for e in example_inventory().environments}) == 3


def test_composites_name_known_routines_in_a_defined_order() -> None:
    for composite, ids in COMPOSITES.items():
        spec = routine(composite)
        assert [p.id for p in parts(spec)] == list(ids)
        assert spec.disruptive == any(p.disruptive for p in parts(spec)), composite  # it takes the slot for them
        assert set(ids) <= set(_calls("development", None)), f"{composite}: flows.maintenance cannot call every part"
    # the security review last: it may wait for its approval, the disruptive parts done by then
    assert [p.id for p in parts(WEEKLY_MAINTENANCE)] == [SECURITY_PATCHES.id, DATABASE_MAINTENANCE.id, CERTIFICATES.id,
                                                         CLEAR_CACHE.id, PERFORMANCE_REVIEW.id, SECURITY_REVIEW.id]
    # disruptive first (the window's time), the configuration review last (it may wait for its approval)
    assert [p.id for p in parts(MONTHLY_MAINTENANCE)] == [SYSTEM_UPDATE.id, VERIFY_BACKUP.id, SECURITY_AUDIT.id,
                                                          CAPACITY_REVIEW.id, DOCUMENTATION_CHECK.id, CONFIG_REVIEW.id]
    assert MONTHLY_MAINTENANCE.disruptive and own_cadence(SYSTEM_UPDATE) is None  # the system update is in it
    # the compliance audit last: it cites the DR test just run
    assert [p.id for p in parts(QUARTERLY_MAINTENANCE)] == [INFRASTRUCTURE_REVIEW.id, DR_TEST.id, COMPLIANCE_AUDIT.id]
    for spec in ROUTINES:  # a part of a scheduled composite is not scheduled on its own too (it would run twice)
        if any(c.cadence for c in composites_of(spec)):
            assert own_cadence(spec) is None or spec is VERIFY_BACKUP, spec.id  # its daily sampled pass is another run
    assert composites_of(SECURITY_PATCHES) == (WEEKLY_MAINTENANCE,)
    assert parts(CLEAR_CACHE) == ()


def test_no_disruptive_routine_is_scheduled_alone_and_inside_a_scheduled_composite() -> None:
    specs = deployment_specs()
    scheduled = {s.name for s in specs if s.cron}
    for spec in ROUTINES:
        if spec.disruptive and any(c.cadence for c in composites_of(spec)):
            assert own_cadence(spec) is None
            assert not [s for s in specs if s.routine is spec and s.cron], f"{spec.id} is scheduled twice"
    # their deployments stay, for manual runs from the UI
    assert {f"{SECURITY_PATCHES.id}-{e}" for e in example_inventory().environments} <= {s.name for s in specs} - scheduled


def test_no_routine_starts_twice_in_the_same_minute() -> None:
    """Over a year, per environment: the starts of a routine's own deployment and of the composites that run it."""
    after = datetime(2026, 12, 1, tzinfo=UTC)
    by_name = {(s.routine.id, s.environment): s for s in deployment_specs()}
    for env in example_inventory().environments:
        for spec in ROUTINES:
            if spec.cadence == "minutely" or spec.id in COMPOSITES:
                continue
            starts: Counter[datetime] = Counter()
            for source in (spec, *composites_of(spec)):
                d = by_name[(source.id, env)]
                starts.update(next_runs(d, after, A_YEAR.get(str(own_cadence(source)), 0)))
            twice = [t for t, k in starts.items() if k > 1]
            assert not twice, f"{spec.id} on {env} starts twice at {twice[:3]}"


def test_daily_maintenance_takes_no_slot() -> None:
    env = example_inventory().environment("production")
    with composite_slot(DAILY_MAINTENANCE, env) as refused:  # no disruptive part: no API call (there is no server)
        assert refused is None


def test_outside_the_window_a_composite_takes_no_slot() -> None:
    """The disruptive parts' guards skip and say when the window opens; nothing is held meanwhile."""
    opens = datetime.now(UTC) + timedelta(hours=12)
    data = yaml.safe_load(EXAMPLE_INVENTORY.read_text())
    data["environments"]["production"]["window"] = {"cron": f"{opens.minute} {opens.hour} * * *", "duration": "1h"}
    env = parse_inventory(data).environment("production")
    with composite_slot(WEEKLY_MAINTENANCE, env) as refused:  # no API call (there is no server)
        assert refused is None


def test_the_slot_is_reentrant_within_a_run() -> None:
    """A routine called inside a holder of its environment's slot does not wait for it (no API call: no server)."""
    def inner() -> list[bool]:
        _slots._HELD.set(frozenset({slot_name("staging")}))
        with hold_slot("staging", timedelta(seconds=1)) as outer, hold_slot("staging", timedelta(seconds=1)) as nested:
            return [outer, nested]

    assert contextvars.copy_context().run(inner) == [True, True]
    assert _slots._HELD.get() == frozenset()  # the caller's context is untouched


def test_stages_carry_their_wall_clock_times() -> None:
    report = RoutineReport("clear-cache", "staging")
    record = StageRecord("execute")
    record.finish("done")
    report.stages.append(record)
    assert record.ended_at is not None and record.started_at <= record.ended_at
    line = next(x for x in report.markdown().splitlines() if x.startswith("## execute: done"))
    assert record.started_at.strftime("%H:%M:%S.") in line and line.endswith(" UTC)")
