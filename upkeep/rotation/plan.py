"""What a rotation does to one log file, decided from a listing of its directory (pure).

Every state a run can leave behind is written in file names, so a run killed at any point is
completed by the next one (like restic, nothing is remembered in between but what is on disk):

| on the host                                   | means                                  | next step                |
|-----------------------------------------------|----------------------------------------|--------------------------|
| `app.log-20261206T020000Z`                    | renamed, maybe still being written     | reopen, wait, compress   |
| `app.log-20261206T020000Z` + `….gz.part`      | compression interrupted                | drop the part, compress  |
| `app.log-20261206T020000Z` + `….gz`           | compressed, raw not yet removed        | remove the raw file      |
| `app.log-20261206T020000Z.gz`                 | rotated                                | archive, then retention  |
| `app.log-20261206T020000Z.copying`            | copytruncate's copy interrupted        | drop it (live untouched) |
| `app.log-20261206T020000Z.copied`             | copied, maybe truncated                | keep it or drop it       |

Without compression a settled rotated file is renamed `….log` (the writer has let go of it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Compression = Literal["gzip", "zstd"]
SUFFIX: dict[Compression, str] = {"gzip": ".gz", "zstd": ".zst"}
PLAIN = ".log"  # a settled rotated file when compression is off
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_STAMP = r"(\d{8}T\d{6}Z)(?:-(\d+))?"


@dataclass(frozen=True)
class Entry:
    """A file in the log's directory: its name, size in bytes and modification time."""

    name: str
    size: int
    mtime: float
    inode: int = 0


@dataclass(frozen=True)
class Generation:
    """One rotated generation of a log: `app.log-<stamp>` and its compressed form."""

    stamp: datetime
    base: str  # `app.log-20261206T020000Z` (or `…Z-2` when two rotations fell in the same second)
    seq: int = 1  # the `-2` of a second rotation in the same second
    raw: Entry | None = None
    final: Entry | None = None  # compressed (`.gz`, `.zst`), or settled uncompressed (`.log`)
    part: Entry | None = None
    copying: Entry | None = None
    copied: Entry | None = None

    @property
    def done(self) -> bool:
        """Final and nothing else left of it: only archiving and retention are left."""
        return (self.final is not None and self.raw is None and self.part is None and self.copying is None
                and self.copied is None)


@dataclass
class LogState:
    """The live file and every rotated generation of it, oldest first."""

    live: Entry | None
    generations: list[Generation] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)  # names that look like ours but fit no state

    @property
    def last_rotated(self) -> datetime | None:
        return self.generations[-1].stamp if self.generations else None


def stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime(STAMP_FORMAT)


def parse_listing(log_name: str, entries: list[Entry], compress: bool, compression: Compression) -> LogState:
    """Group the directory's files that belong to `log_name` into its live file and generations."""
    suffix = SUFFIX[compression] if compress else PLAIN
    pattern = re.compile(rf"^{re.escape(log_name)}-{_STAMP}(\.gz|\.zst|\.log)?(\.part|\.copying|\.copied)?$")
    live = next((e for e in entries if e.name == log_name), None)
    gens: dict[str, dict[str, Entry]] = {}
    stamps: dict[str, datetime] = {}
    seqs: dict[str, int] = {}
    strays = []
    for e in entries:
        m = pattern.match(e.name)
        if m is None:
            continue
        base = f"{log_name}-{m.group(1)}" + (f"-{m.group(2)}" if m.group(2) else "")
        stamps[base] = datetime.strptime(m.group(1), STAMP_FORMAT).replace(tzinfo=UTC)
        seqs[base] = int(m.group(2) or 1)
        comp, tail = m.group(3) or "", m.group(4) or ""
        slot = gens.setdefault(base, {})
        if tail in (".copying", ".copied") and not comp:
            slot[tail[1:]] = e
        elif tail == ".part" and comp == suffix and comp != PLAIN:
            slot["part"] = e
        elif not tail and comp:  # this policy's suffix, or another after a change of policy: final as it is
            slot["final"] = e
        elif not tail:
            slot["raw"] = e
        else:  # the part of another compression (the policy changed mid-way): removed by the next rotation
            strays.append(e.name)
    generations = []
    for base, slot in gens.items():
        # uncompressed rotation: the raw file stays `raw` until a run has seen the writer done with it
        generations.append(Generation(stamps[base], base, seqs[base], raw=slot.get("raw"), final=slot.get("final"),
                                      part=slot.get("part"), copying=slot.get("copying"), copied=slot.get("copied")))
    generations.sort(key=lambda g: (g.stamp, g.seq))
    return LogState(live, generations, strays)


def next_base(log_name: str, state: LogState, now: datetime) -> str:
    """The name of the generation a rotation now creates (a second one in the same second gets `-2`)."""
    base = f"{log_name}-{stamp(now)}"
    taken = {g.base for g in state.generations}
    n = 1
    candidate = base
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def rotation_due(state: LogState, now: datetime, frequency: Literal["daily", "weekly"], max_size: int) -> str | None:
    """Why the live file is rotated now (a sentence), or None. An empty or missing file never is."""
    live = state.live
    if live is None or live.size == 0:
        return None
    if live.size >= max_size:
        return f"{live.size:,} bytes, over the {max_size:,}-byte limit"
    last = state.last_rotated
    if last is None:
        return "never rotated"
    today = now.astimezone(UTC).date()
    if frequency == "daily" and last.date() < today:
        return f"daily, last rotated {last.date().isoformat()}"
    if frequency == "weekly" and last.date() <= today - timedelta(days=7):
        return f"weekly, last rotated {last.date().isoformat()}"
    return None


@dataclass(frozen=True)
class RetentionPlan:
    keep: list[Generation]
    delete: list[Generation]  # beyond `keep` and archived (or no archive configured)
    held: list[Generation]  # beyond `keep` but not archived yet: kept until they are


def retention(generations: list[Generation], keep: int, archived: set[str] | None) -> RetentionPlan:
    """The newest `keep` finished generations stay; older ones go once their archive is verified
    (`archived` holds the verified names; None means no archive is configured: plain logrotate)."""
    finished = [g for g in generations if g.done]
    newest_first = sorted(finished, key=lambda g: (g.stamp, g.seq), reverse=True)
    kept, beyond = newest_first[:keep], newest_first[keep:]
    if archived is None:
        return RetentionPlan(kept, beyond, [])
    delete = [g for g in beyond if g.final is not None and g.final.name in archived]
    held = [g for g in beyond if g not in delete]
    return RetentionPlan(kept, delete, held)


def period_day(generation: Generation) -> date:
    """The day a generation was rotated on (UTC): its archive's date folder."""
    return generation.stamp.date()
