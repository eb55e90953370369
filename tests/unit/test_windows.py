"""Tests of upkeep.windows: maintenance windows, cutoffs, blackouts and DST."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upkeep.config.loader import load_inventory
from upkeep.windows import (
    Decision,
    Occurrence,
    Window,
    WindowError,
    can_start_step,
    current,
    describe_decision,
    is_open,
    next_windows,
    remaining,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)
M = timedelta(minutes=1)
US = timedelta(microseconds=1)
# The ops guide's windows (without the example inventory's blackout dates, so that these tests do not
# depend on them): examples/upkeep.yaml holds the ones Upkeep uses (test_the_example_inventory_has_the_guides_windows).
PROD = Window("0 2 * * 0", "UTC", 2 * H, 15 * M)
STAGING = Window("0 22 * * *", "UTC", H, 10 * M)
DEV = Window(None, always=True)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "upkeep.yaml"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def starts(window: Window, after: datetime, n: int) -> list[datetime]:
    return [o.start for o in next_windows(window, after, n)]


# --- the guide's windows ---------------------------------------------------


def test_the_example_inventory_has_the_guides_windows() -> None:
    """The one source of the guide's windows (the guard's, the deployments' schedules and the sandbox's)."""
    windows = {name: env.window.to_window() for name, env in load_inventory(EXAMPLE).environments.items()}
    assert windows["production"].blackout == {date(2026, 12, 27), date(2027, 1, 3)}  # code freezes
    assert replace(windows["production"], blackout=frozenset()) == PROD == Window("0 2 * * 0", "UTC", 2 * H, 15 * M)
    assert windows["staging"] == STAGING == Window("0 22 * * *", "UTC", H, 10 * M)
    assert windows["development"] == DEV and DEV.always and DEV.cron is None
    assert set(windows) == {"production", "staging", "development"}


def test_production_next_windows_are_sundays_0200_utc() -> None:
    got = next_windows(PROD, utc(2026, 11, 25, 12), 3)  # a Wednesday
    assert got == [
        Occurrence(utc(2026, 11, 29, 2), utc(2026, 11, 29, 4)),
        Occurrence(utc(2026, 12, 6, 2), utc(2026, 12, 6, 4)),
        Occurrence(utc(2026, 12, 13, 2), utc(2026, 12, 13, 4)),
    ]
    assert all(o.start.weekday() == 6 for o in next_windows(PROD, utc(2026, 1, 1), 60))


def test_staging_next_windows_are_daily_2200_utc() -> None:
    got = starts(STAGING, utc(2026, 11, 25, 22, 30), 3)  # inside tonight's window
    assert got == [utc(2026, 11, 26, 22), utc(2026, 11, 27, 22), utc(2026, 11, 28, 22)]
    assert next_windows(STAGING, utc(2026, 11, 25, 12), 1)[0].end == utc(2026, 11, 25, 23)


def test_next_windows_excludes_an_occurrence_starting_exactly_now() -> None:
    assert starts(PROD, utc(2026, 11, 29, 2), 1) == [utc(2026, 12, 6, 2)]
    assert starts(PROD, utc(2026, 11, 29, 2) - US, 1) == [utc(2026, 11, 29, 2)]


def test_next_windows_n_zero_and_negative() -> None:
    assert next_windows(PROD, utc(2026, 1, 1), 0) == []
    with pytest.raises(WindowError, match="^n:"):
        next_windows(PROD, utc(2026, 1, 1), -1)


def test_next_windows_for_always_raises() -> None:
    with pytest.raises(WindowError, match="always"):
        next_windows(DEV, utc(2026, 1, 1), 1)


# --- inside / outside / boundaries -----------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 11, 29, 1, 59, 59, 999999), False),
        (utc(2026, 11, 29, 2), True),  # start inclusive
        (utc(2026, 11, 29, 3), True),
        (utc(2026, 11, 29, 3, 59, 59, 999999), True),
        (utc(2026, 11, 29, 4), False),  # end exclusive
        (utc(2026, 11, 28, 2, 30), False),  # a Saturday
        (utc(2026, 11, 30, 2, 30), False),  # a Monday
    ],
)
def test_production_open_boundaries(now: datetime, expected: bool) -> None:
    assert is_open(PROD, now) is expected
    assert (current(PROD, now) is not None) is expected


def test_remaining_and_current() -> None:
    now = utc(2026, 11, 29, 2, 50)
    assert current(PROD, now) == Occurrence(utc(2026, 11, 29, 2), utc(2026, 11, 29, 4))
    assert remaining(PROD, now) == timedelta(hours=1, minutes=10)
    assert remaining(PROD, utc(2026, 11, 29, 4)) == timedelta(0)
    assert remaining(PROD, utc(2026, 11, 29, 3, 59, 59, 999999)) == US


def test_now_in_another_timezone_is_the_same_instant() -> None:
    now = datetime(2026, 11, 29, 3, 30, tzinfo=BERLIN)  # 02:30 UTC
    assert is_open(PROD, now)
    assert remaining(PROD, now) == timedelta(hours=1, minutes=30)
    summer = datetime(2026, 7, 5, 5, 30, tzinfo=BERLIN)  # 03:30 UTC, a Sunday
    assert remaining(PROD, summer) == timedelta(minutes=30)


def test_overlapping_occurrences_latest_start_wins() -> None:
    w = Window("0 * * * *", "UTC", 2 * H, 15 * M)
    now = utc(2026, 5, 1, 10, 30)
    assert current(w, now) == Occurrence(utc(2026, 5, 1, 10), utc(2026, 5, 1, 12))
    assert remaining(w, now) == timedelta(hours=1, minutes=30)


def test_occurrence_contains_is_half_open() -> None:
    occ = Occurrence(utc(2026, 1, 4, 2), utc(2026, 1, 4, 4))
    assert occ.contains(utc(2026, 1, 4, 2))
    assert occ.contains(utc(2026, 1, 4, 4) - US)
    assert not occ.contains(utc(2026, 1, 4, 4))
    assert not occ.contains(utc(2026, 1, 4, 2) - US)
    assert occ.contains(datetime(2026, 1, 4, 3, 30, tzinfo=BERLIN))  # 02:30 UTC


def test_occurrence_normalises_to_utc_and_rejects_empty() -> None:
    occ = Occurrence(datetime(2026, 1, 4, 3, tzinfo=BERLIN), datetime(2026, 1, 4, 5, tzinfo=BERLIN))
    assert occ.start == utc(2026, 1, 4, 2) and occ.start.tzinfo is UTC
    with pytest.raises(ValueError, match="end"):
        Occurrence(utc(2026, 1, 4, 2), utc(2026, 1, 4, 2))


# --- cutoff ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [
        (PROD, utc(2026, 11, 29, 2), True),
        (PROD, utc(2026, 11, 29, 3, 45), True),  # exactly the cutoff left
        (PROD, utc(2026, 11, 29, 3, 45) + US, False),
        (PROD, utc(2026, 11, 29, 3, 59), False),
        (PROD, utc(2026, 11, 29, 4), False),
        (PROD, utc(2026, 11, 29, 1), False),
        (STAGING, utc(2026, 11, 25, 22, 50), True),
        (STAGING, utc(2026, 11, 25, 22, 50, 1), False),
        (DEV, utc(2026, 11, 25, 12), True),
    ],
)
def test_can_start_step(window: Window, now: datetime, expected: bool) -> None:
    assert can_start_step(window, now) is expected


def test_zero_cutoff_allows_until_the_last_instant() -> None:
    w = Window("0 2 * * 0", cutoff=timedelta(0))
    assert can_start_step(w, utc(2026, 11, 29, 4) - US)
    assert not can_start_step(w, utc(2026, 11, 29, 4))


# --- blackout --------------------------------------------------------------


def test_blackout_date_does_not_open() -> None:
    w = Window("0 2 * * 0", "UTC", 2 * H, 15 * M, blackout=frozenset({date(2026, 12, 27)}))
    assert not is_open(w, utc(2026, 12, 27, 2, 30))
    assert remaining(w, utc(2026, 12, 27, 2, 30)) == timedelta(0)
    assert is_open(w, utc(2026, 12, 20, 2, 30))
    assert starts(w, utc(2026, 12, 21), 2) == [utc(2027, 1, 3, 2), utc(2027, 1, 10, 2)]
    d = describe_decision(w, utc(2026, 12, 27, 2, 30))
    assert not d.proceed and d.occurrence is None
    assert d.reason.startswith("blackout date 2026-12-27")
    assert d.next_open == utc(2027, 1, 3, 2)


def test_blackout_uses_the_local_date_of_the_start() -> None:
    # 00:30 Berlin on Dec 25 is 23:30 UTC on Dec 24.
    w = Window("30 0 * * *", "Europe/Berlin", H, 10 * M, blackout={date(2026, 12, 25)})
    assert not is_open(w, utc(2026, 12, 24, 23, 45))
    assert is_open(w, utc(2026, 12, 23, 23, 45))
    assert is_open(w, utc(2026, 12, 25, 23, 45))
    after = utc(2026, 12, 24, 12)  # next local 00:30 is on Dec 25: skipped
    assert starts(w, after, 2) == [utc(2026, 12, 25, 23, 30), utc(2026, 12, 26, 23, 30)]


def test_blackout_is_coerced_to_frozenset() -> None:
    w = Window("0 2 * * 0", blackout=[date(2026, 1, 4)])  # type: ignore[arg-type]  # a list where a tuple is declared, on purpose
    assert w.blackout == frozenset({date(2026, 1, 4)})
    assert hash(w) == hash(Window("0 2 * * 0", blackout=frozenset({date(2026, 1, 4)})))


# --- always ----------------------------------------------------------------


def test_always_window() -> None:
    now = utc(2026, 3, 29, 1, 30)
    assert is_open(DEV, now)
    assert remaining(DEV, now) is None
    assert current(DEV, now) is None
    assert can_start_step(DEV, now)
    assert describe_decision(DEV, now) == Decision(True, "anytime window: always open", None, None)


# --- describe_decision -----------------------------------------------------


def test_describe_outside() -> None:
    d = describe_decision(PROD, utc(2026, 11, 25, 12))
    assert d == Decision(
        False,
        "outside maintenance window: next opens 2026-11-29T02:00:00+00:00",
        None,
        utc(2026, 11, 29, 2),
    )


def test_describe_inside() -> None:
    d = describe_decision(PROD, utc(2026, 11, 29, 2, 50))
    assert d.proceed
    assert d.reason == "inside window, 1:10:00 left (cutoff 0:15:00)"
    assert d.occurrence == Occurrence(utc(2026, 11, 29, 2), utc(2026, 11, 29, 4))
    assert d.next_open == utc(2026, 12, 6, 2)


def test_describe_past_cutoff() -> None:
    d = describe_decision(PROD, utc(2026, 11, 29, 3, 55))
    assert not d.proceed
    assert d.reason == "past cutoff: 0:05:00 left < cutoff 0:15:00"
    assert d.occurrence is not None and d.occurrence.end == utc(2026, 11, 29, 4)


# --- invalid input ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cron": "not a cron"}, "cron"),
        ({"cron": "0 2 * *"}, "cron"),
        ({"cron": "0 0 2 * * 0"}, "cron"),  # 6 fields
        ({"cron": "61 2 * * 0"}, "cron"),
        ({"cron": "0 2 * * 8"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "cron"),  # never fires
        ({"cron": None}, "cron"),
        ({"cron": "0 2 * * 0", "always": True}, "cron"),
        ({"cron": 5}, "cron"),
        ({"cron": "0 2 * * 0", "timezone": "Mars/Olympus"}, "timezone"),
        ({"cron": "0 2 * * 0", "timezone": ""}, "timezone"),
        ({"cron": "0 2 * * 0", "timezone": None}, "timezone"),
        ({"cron": "0 2 * * 0", "duration": timedelta(0)}, "duration"),
        ({"cron": "0 2 * * 0", "duration": -H}, "duration"),
        ({"cron": "0 2 * * 0", "duration": 7200}, "duration"),
        ({"cron": "0 2 * * 0", "cutoff": -M}, "cutoff"),
        ({"cron": "0 2 * * 0", "cutoff": 2 * H}, "cutoff"),
        ({"cron": "0 2 * * 0", "cutoff": 900}, "cutoff"),
        ({"cron": "0 2 * * 0", "blackout": {datetime(2026, 1, 4)}}, "blackout"),
        ({"cron": "0 2 * * 0", "blackout": {"2026-01-04"}}, "blackout"),
        ({"cron": "0 2 * * 0", "blackout": 3}, "blackout"),
        ({"cron": None, "always": True, "blackout": {date(2026, 1, 4)}}, "blackout"),
        ({"cron": None, "always": "yes"}, "always"),
    ],
)
def test_invalid_window_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(WindowError, match=f"^{field}:") as info:
        Window(**kwargs)  # type: ignore[arg-type]  # invalid on purpose
    assert isinstance(info.value, ValueError)


def test_error_message_names_the_bad_value() -> None:
    with pytest.raises(WindowError, match="Mars/Olympus"):
        Window("0 2 * * 0", timezone="Mars/Olympus")
    with pytest.raises(WindowError, match="61 2"):
        Window("61 2 * * 0")


def test_symbolic_cron_names_are_accepted() -> None:
    assert starts(Window("0 2 * * sun"), utc(2026, 11, 25), 1) == [utc(2026, 11, 29, 2)]


@pytest.mark.parametrize(
    "call",
    [
        lambda t: current(PROD, t),
        lambda t: is_open(PROD, t),
        lambda t: is_open(DEV, t),
        lambda t: remaining(PROD, t),
        lambda t: can_start_step(PROD, t),
        lambda t: next_windows(PROD, t, 1),
        lambda t: describe_decision(PROD, t),
        lambda t: describe_decision(DEV, t),
        lambda t: Occurrence(utc(2026, 1, 4, 2), utc(2026, 1, 4, 4)).contains(t),
    ],
)
def test_naive_datetimes_are_rejected(call: Callable[[datetime], object]) -> None:
    with pytest.raises(ValueError, match="naive"):
        call(datetime(2026, 11, 29, 2, 30))


# --- daylight saving time --------------------------------------------------


def test_berlin_spring_forward_nonexistent_start_opens_after_the_gap() -> None:
    w = Window("30 2 * * *", "Europe/Berlin", H, 10 * M)
    got = starts(w, datetime(2026, 3, 28, tzinfo=BERLIN), 3)
    assert [s.astimezone(BERLIN).isoformat() for s in got] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:30 does not exist: first instant after the gap
        "2026-03-30T02:30:00+02:00",
    ]
    # duration is elapsed time: 01:00Z-02:00Z (03:00-04:00 CEST)
    expected = Occurrence(utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))
    assert current(w, utc(2026, 3, 29, 1, 59)) == expected
    assert not is_open(w, utc(2026, 3, 29, 1) - US)
    assert not is_open(w, utc(2026, 3, 29, 2))


def test_berlin_spring_forward_sunday_window_is_not_skipped() -> None:
    w = Window("0 2 * * 0", "Europe/Berlin", 2 * H, 15 * M)  # 2026-03-29 is the last Sunday
    got = next_windows(w, utc(2026, 3, 25), 3)
    assert got[0] == Occurrence(utc(2026, 3, 29, 1), utc(2026, 3, 29, 3))  # 03:00-05:00 CEST
    assert got[1].start == datetime(2026, 4, 5, 2, tzinfo=BERLIN)
    assert remaining(w, utc(2026, 3, 29, 1)) == 2 * H


def test_berlin_fall_back_ambiguous_start_opens_once_at_first_occurrence() -> None:
    w = Window("30 2 * * *", "Europe/Berlin", H, 10 * M)
    got = starts(w, datetime(2026, 10, 24, tzinfo=BERLIN), 3)
    assert [s.astimezone(BERLIN).isoformat() for s in got] == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",  # fold=0 (CEST), not again at 02:30 CET
        "2026-10-26T02:30:00+01:00",
    ]
    assert is_open(w, utc(2026, 10, 25, 0, 30))
    assert not is_open(w, utc(2026, 10, 25, 1, 30))  # second 02:30 (CET): no new window
    assert not is_open(w, utc(2026, 10, 25, 1, 45))


def test_new_york_spring_forward() -> None:
    w = Window("30 2 * * *", "America/New_York", H, 10 * M)
    got = starts(w, datetime(2026, 3, 7, tzinfo=NEW_YORK), 3)
    assert [s.astimezone(NEW_YORK).isoformat() for s in got] == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]
    assert got[1] == utc(2026, 3, 8, 7)


def test_new_york_fall_back() -> None:
    w = Window("30 1 * * *", "America/New_York", H, 10 * M)
    got = starts(w, datetime(2026, 10, 31, tzinfo=NEW_YORK), 3)
    assert [s.astimezone(NEW_YORK).isoformat() for s in got] == [
        "2026-10-31T01:30:00-04:00",
        "2026-11-01T01:30:00-04:00",  # EDT, first occurrence
        "2026-11-02T01:30:00-05:00",
    ]
    assert got[1] == utc(2026, 11, 1, 5, 30)
    assert not is_open(w, utc(2026, 11, 1, 6, 30))  # 01:30 EST: not doubled


@pytest.mark.parametrize(
    ("cron", "step", "zone", "day", "expected"),
    [
        # */30 over a local day: 48 slots; spring folds 02:00/02:30 onto 03:00
        # (46 openings), fall opens the ambiguous slots once (48, not 52).
        ("*/30 * * * *", 30, "Europe/Berlin", date(2026, 3, 29), 46),
        ("*/30 * * * *", 30, "Europe/Berlin", date(2026, 10, 25), 48),
        ("*/30 * * * *", 30, "America/New_York", date(2026, 3, 8), 46),
        ("*/30 * * * *", 30, "America/New_York", date(2026, 11, 1), 48),
        ("*/30 * * * *", 30, "Europe/Berlin", date(2026, 6, 1), 48),
        # hourly at :30: raw cronsim would skip 02:30 in spring (23) and
        # double it in fall (25); the policy gives 24 on both days.
        ("30 * * * *", 60, "Europe/Berlin", date(2026, 3, 29), 24),
        ("30 * * * *", 60, "Europe/Berlin", date(2026, 10, 25), 24),
        ("30 * * * *", 60, "America/New_York", date(2026, 3, 8), 24),
        ("30 * * * *", 60, "America/New_York", date(2026, 11, 1), 24),
    ],
)
def test_wildcard_cron_on_dst_days_is_neither_skipped_nor_doubled(
    cron: str, step: int, zone: str, day: date, expected: int
) -> None:
    tz = ZoneInfo(zone)
    w = Window(cron, zone, step * M, 5 * M)
    begin = datetime.combine(day, datetime.min.time(), tzinfo=tz) - US
    got = [s for s in starts(w, begin, 60) if s.astimezone(tz).date() == day]
    assert len(got) == expected
    assert got == sorted(set(got))
    walls = [s.astimezone(tz).strftime("%H:%M") for s in got]
    assert len(walls) == len(set(walls))  # no wall time opens twice
    if day.month == 3:  # the gap slots open at 03:00 local, never inside the gap
        assert "03:00" in walls and "02:00" not in walls and "02:30" not in walls


@pytest.mark.parametrize(
    ("zone", "first", "last"),
    [
        ("Europe/Berlin", date(2026, 3, 26), date(2026, 4, 1)),
        ("Europe/Berlin", date(2026, 10, 22), date(2026, 10, 28)),
        ("America/New_York", date(2026, 3, 5), date(2026, 3, 11)),
        ("America/New_York", date(2026, 10, 29), date(2026, 11, 4)),
    ],
)
@pytest.mark.parametrize("hhmm", ["0 1", "30 1", "0 2", "30 2", "59 2", "0 3"])
def test_daily_window_opens_exactly_once_per_local_day_around_dst(
    zone: str, first: date, last: date, hhmm: str
) -> None:
    tz = ZoneInfo(zone)
    w = Window(f"{hhmm} * * *", zone, 2 * H, 15 * M)
    begin = datetime.combine(first, datetime.min.time(), tzinfo=tz) - US
    got = starts(w, begin, (last - first).days + 1)
    days = [s.astimezone(tz).date() for s in got]
    assert days == [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for s in got:
        assert is_open(w, s) and remaining(w, s) == 2 * H  # elapsed-time duration


# --- properties ------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
CRONS = ["0 2 * * 0", "0 22 * * *", "30 2 * * *", "*/30 * * * *", "15 1 * * 1-5", "0 0 1 * *"]


@st.composite
def windows(draw: st.DrawFn) -> Window:
    duration = draw(st.integers(1, 36 * 60)) * M
    cutoff = draw(st.integers(0, int(duration / M) - 1)) * M
    blackout = draw(st.frozensets(st.dates(date(2025, 12, 1), date(2027, 2, 1)), max_size=5))
    cron, zone = draw(st.sampled_from(CRONS)), draw(st.sampled_from(ZONES))
    return Window(cron, zone, duration, cutoff, blackout)


instants = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2026, 12, 31),
    timezones=st.sampled_from([UTC, BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe")]),
)
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(windows(), instants)
def test_prop_open_iff_time_remains(window: Window, t: datetime) -> None:
    left = remaining(window, t)
    assert left is not None and timedelta(0) <= left <= window.duration
    assert is_open(window, t) == (left > timedelta(0))


@PROPS
@given(windows(), instants)
def test_prop_next_window_is_after_now_and_open_at_its_start(window: Window, t: datetime) -> None:
    (nxt,) = next_windows(window, t, 1)
    assert nxt.start > t
    assert nxt.end - nxt.start == window.duration
    assert is_open(window, nxt.start)
    assert current(window, nxt.start) == nxt  # the latest start wins


@PROPS
@given(windows(), instants)
def test_prop_can_start_step_implies_open(window: Window, t: datetime) -> None:
    d = describe_decision(window, t)
    assert d.proceed == can_start_step(window, t)
    if can_start_step(window, t):
        assert is_open(window, t)
    occ = current(window, t)
    assert d.occurrence == occ
    if occ is not None:
        assert occ.contains(t)
        assert next_windows(window, occ.start - US, 1)[0] == occ


@PROPS
@given(windows(), instants, st.integers(2, 6))
def test_prop_next_windows_strictly_increasing_and_not_blacked_out(
    window: Window, t: datetime, n: int
) -> None:
    got = next_windows(window, t, n)
    assert len(got) == n
    assert all(a.start < b.start for a, b in zip(got, got[1:], strict=False))
    tz = ZoneInfo(window.timezone)
    assert all(o.start.astimezone(tz).date() not in window.blackout for o in got)
    assert next_windows(window, t, 1) == got[:1]


@PROPS
@given(
    st.sampled_from(ZONES),
    st.integers(0, 23),
    st.integers(0, 59),
    st.dates(date(2026, 1, 1), date(2026, 12, 28)),
)
def test_prop_daily_cron_opens_once_per_local_day(
    zone: str, hour: int, minute: int, day: date
) -> None:
    tz = ZoneInfo(zone)
    w = Window(f"{minute} {hour} * * *", zone, H, 10 * M)
    begin = datetime.combine(day, datetime.min.time(), tzinfo=tz) - US
    got = starts(w, begin, 3)
    assert [s.astimezone(tz).date() for s in got] == [day + timedelta(days=i) for i in range(3)]
    for s in got:
        local = s.astimezone(tz)
        wall = local.replace(hour=hour, minute=minute, tzinfo=None)
        # either the scheduled wall time (first fold), or the end of a DST gap
        assert local.fold == 0  # an ambiguous wall time opens at its first occurrence
        if (local.hour, local.minute) != (hour, minute):
            # shifted only out of a DST gap, to the first instant after it
            assert local.replace(tzinfo=None) > wall
            assert (s - timedelta(seconds=1)).astimezone(tz).utcoffset() != local.utcoffset()
