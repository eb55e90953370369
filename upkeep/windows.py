"""Maintenance windows: when a maintenance step may start (pure, no I/O).

Per the ops guide: production opens Sunday 02:00-04:00 UTC, staging daily
22:00-23:00 UTC, development anytime. Those windows are data, not code: each
inventory's `environments.<env>.window` (`WindowConfig.to_window()`), the
guide's in `examples/upkeep.yaml`; the window guard and the deployments'
schedules both read them from there. Emergency overrides (production with
approval, staging/development with notification) are the caller's business;
this module only answers "is the regular window open, and may a step start?".

A `Window` is a 5-field cron expression for its start, an IANA timezone, an
absolute `duration`, a `cutoff` (no new step may start when less than the
cutoff remains) and optional blackout dates; or `always=True` ("anytime").
Occurrences are half-open intervals ``[start, end)`` in UTC.

Daylight-saving policy:

* The cron expression is evaluated in local wall-clock time of the window's
  timezone (so "0 2 * * 0" in Europe/Berlin is 02:00 local, summer or winter).
* Spring forward: a start that does not exist locally (02:30 Europe/Berlin on
  2026-03-29) opens at the first instant after the gap (03:00 local); it is
  never skipped.
* Fall back: an ambiguous start (02:30 Europe/Berlin on 2026-10-25) opens once,
  at its first occurrence (``fold=0``); it is never doubled.
* Durations and cutoffs are absolute elapsed time, so a 2 h window opening
  right before a change still lasts exactly 2 h.
* A blackout date matches the local date (window timezone) of the start.

cronsim (2.8) itself only applies such a fix-up to 5-field expressions with a
fixed minute and hour; with a wildcard there it skips gap times and yields
ambiguous times twice. We therefore iterate cronsim on naive wall-clock times
and map them to UTC ourselves (`_to_utc`), which gives the policy above for
every expression.

Overlapping occurrences: the latest-started one counts (`current`, `remaining`).
`current` returns None and `next_windows` raises `WindowError` for an
``always`` window: it has no discrete openings (use `is_open`/`remaining`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from upkeep.errors import WindowError as WindowError  # re-exported: defined here before upkeep.errors


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str):
        raise WindowError(f"timezone: expected an IANA name, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WindowError(f"timezone: unknown IANA timezone {name!r}") from exc


def _aware(t: object, name: str = "now") -> datetime:
    if not isinstance(t, datetime):
        raise ValueError(f"{name}: expected a datetime, got {t!r}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name}: naive datetime {t.isoformat()} (must be timezone-aware)")
    return t


@dataclass(frozen=True)
class Window:
    """A recurring maintenance window, or an always-open one (`always=True`)."""

    cron: str | None
    timezone: str = "UTC"
    duration: timedelta = timedelta(hours=2)
    cutoff: timedelta = timedelta(minutes=15)
    blackout: frozenset[date] = frozenset()
    always: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.always, bool):
            raise WindowError(f"always: expected a bool, got {self.always!r}")
        if self.always and self.cron is not None:
            raise WindowError(f"cron: must be None when always=True, got {self.cron!r}")
        if not self.always:
            if not isinstance(self.cron, str):
                raise WindowError(f"cron: expected a 5-field expression, got {self.cron!r}")
            if len(self.cron.split()) != 5:
                raise WindowError(f"cron: expected 5 fields, got {self.cron!r}")
            try:
                next(CronSim(self.cron, datetime(2000, 1, 1)))
            except CronSimError as exc:
                raise WindowError(f"cron: invalid expression {self.cron!r} ({exc})") from exc
            except StopIteration as exc:
                raise WindowError(f"cron: expression {self.cron!r} never fires") from exc
        _zone(self.timezone)
        if not isinstance(self.duration, timedelta) or self.duration <= timedelta(0):
            raise WindowError(f"duration: must be a positive timedelta, got {self.duration!r}")
        if not isinstance(self.cutoff, timedelta) or not (
            timedelta(0) <= self.cutoff < self.duration
        ):
            raise WindowError(
                f"cutoff: must be a timedelta with 0 <= cutoff < duration "
                f"({self.duration}), got {self.cutoff!r}"
            )
        try:
            days = frozenset(self.blackout)
        except TypeError as exc:
            raise WindowError(f"blackout: expected a set of dates, got {self.blackout!r}") from exc
        for d in days:
            if not isinstance(d, date) or isinstance(d, datetime):
                raise WindowError(f"blackout: expected datetime.date items, got {d!r}")
        if self.always and days:
            raise WindowError(f"blackout: not supported when always=True, got {sorted(days)}")
        object.__setattr__(self, "blackout", days)


@dataclass(frozen=True)
class Occurrence:
    """One concrete opening of a window: ``[start, end)``, both aware UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _aware(self.start, "start").astimezone(UTC))
        object.__setattr__(self, "end", _aware(self.end, "end").astimezone(UTC))
        if self.end <= self.start:
            raise ValueError(f"end: {self.end.isoformat()} is not after start")

    def contains(self, t: datetime) -> bool:
        """True when ``start <= t < end``."""
        return self.start <= _aware(t, "t") < self.end


@dataclass(frozen=True)
class Decision:
    """Whether a maintenance step may start now, and why."""

    proceed: bool
    reason: str
    occurrence: Occurrence | None
    next_open: datetime | None


def _to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """Map a naive local wall-clock time to UTC per the DST policy."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first  # exists; if ambiguous, fold=0 is the first occurrence
    # In a gap: fold=1 maps before the transition, fold=0 after; bisect for it.
    lo = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    hi = int(first.timestamp())
    after = first.astimezone(tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _occurrences(window: Window, after: datetime) -> Iterator[tuple[Occurrence, bool]]:
    """Yield (occurrence, blacked_out) with start > `after`, in start order."""
    assert window.cron is not None
    tz = ZoneInfo(window.timezone)
    prev = after.astimezone(UTC)
    # The wall->UTC mapping is non-decreasing, so no start > `after` has a wall
    # time at or before the wall time of `after`.
    for wall in CronSim(window.cron, after.astimezone(tz).replace(tzinfo=None)):
        start = _to_utc(wall, tz)
        if start <= prev:  # dedupe starts folded onto the same instant by a gap
            continue
        prev = start
        local_day = start.astimezone(tz).date()
        yield Occurrence(start, start + window.duration), local_day in window.blackout


def _containing(window: Window, now: datetime) -> tuple[Occurrence | None, date | None]:
    """The latest open occurrence containing `now`, and a blackout date hiding one."""
    best: Occurrence | None = None
    hidden: date | None = None
    tz = ZoneInfo(window.timezone)
    now = now.astimezone(UTC)  # aware arithmetic within one zone is wall-clock
    for occ, blacked_out in _occurrences(window, now - window.duration):
        if occ.start > now:
            break
        if blacked_out:
            hidden = occ.start.astimezone(tz).date()
        else:
            best = occ
    return best, hidden


def current(window: Window, now: datetime) -> Occurrence | None:
    """The occurrence containing `now` (latest start wins); None if closed or always."""
    _aware(now)
    if window.always:
        return None
    return _containing(window, now)[0]


def is_open(window: Window, now: datetime) -> bool:
    """True when the window is open at `now` (always for an `always` window)."""
    _aware(now)
    return window.always or current(window, now) is not None


def remaining(window: Window, now: datetime) -> timedelta | None:
    """Time left in the current occurrence; timedelta(0) if closed; None if always."""
    _aware(now)
    if window.always:
        return None
    occ = current(window, now)
    return occ.end - now if occ else timedelta(0)


def can_start_step(window: Window, now: datetime) -> bool:
    """True when open and at least `cutoff` remains (always for `always`)."""
    left = remaining(window, now)
    return left is None or (left > timedelta(0) and left >= window.cutoff)


def next_windows(window: Window, now: datetime, n: int) -> list[Occurrence]:
    """The next `n` non-blacked-out occurrences with start > `now`.

    Raises WindowError for an `always` window (it has no discrete openings).
    """
    _aware(now)
    if window.always:
        raise WindowError("always: an always-open window has no discrete openings")
    if not isinstance(n, int) or n < 0:
        raise WindowError(f"n: must be a non-negative int, got {n!r}")
    found: list[Occurrence] = []
    if n == 0:
        return found
    for occ, blacked_out in _occurrences(window, now):
        if not blacked_out:
            found.append(occ)
            if len(found) == n:
                break
    return found


def describe_decision(window: Window, now: datetime) -> Decision:
    """Decide whether a step may start at `now`, with a human-readable reason."""
    _aware(now)
    if window.always:
        return Decision(True, "anytime window: always open", None, None)
    occ, hidden = _containing(window, now)
    upcoming = next_windows(window, now, 1)
    next_open = upcoming[0].start if upcoming else None
    opens = f"next opens {next_open.isoformat()}" if next_open else "no upcoming opening"
    if occ is None:
        if hidden is not None:
            return Decision(False, f"blackout date {hidden.isoformat()}: {opens}", None, next_open)
        return Decision(False, f"outside maintenance window: {opens}", None, next_open)
    left = occ.end - now
    if left >= window.cutoff:
        reason = f"inside window, {left} left (cutoff {window.cutoff})"
        return Decision(True, reason, occ, next_open)
    reason = f"past cutoff: {left} left < cutoff {window.cutoff}"
    return Decision(False, reason, occ, next_open)



def wait_bound(window: Window, now: datetime, longest: timedelta) -> timedelta:
    """How long a step that may start now can still wait for its turn: until the window's cutoff
    (`remaining - cutoff`, never negative), or `longest` for an always-open window."""
    left = remaining(window, now)
    if left is None:
        return longest
    return max(left - window.cutoff, timedelta(0))
