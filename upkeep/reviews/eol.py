"""Operating-system end of life from Debian's distro-info-data CSV files, offline (pure).

`read_distro_info` parses /usr/share/distro-info/{debian,ubuntu}.csv; `eol_status` places one host's
release (from its /etc/os-release) against them on a given day: supported, near end of life, end of
life (and whether LTS / ELTS / ESM still covers it), or not in the file at all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from upkeep import humanize
from upkeep.errors import ReviewInputError

DISTRO_INFO_DIR = "/usr/share/distro-info"
#: The columns every distro-info CSV starts with; the later ones are extended support, per distribution.
COLUMNS: tuple[str, ...] = ("version", "codename", "series", "created", "release", "eol")
#: How a report names the extended-support columns after `eol` (other columns: the name without 'eol-').
EXTENDED_LABELS: dict[str, str] = {"eol-lts": "LTS", "eol-elts": "ELTS", "eol-server": "server support",
                                   "eol-esm": "ESM", "eol-legacy": "Legacy support"}
#: Distributions whose os-release ID uses another distribution's releases.
SAME_RELEASES: dict[str, str] = {"raspbian": "debian"}
_FIX = "install the distro-info-data package (apt-get install distro-info-data), or set the configured path to its file"

EolState = Literal["supported", "near end of life", "end of life", "unknown release"]


@dataclass(frozen=True)
class Release:
    """One row of a distro-info CSV: a release and the days its support ends."""

    distro: str  # "debian", "ubuntu": the file's name
    version: str  # "12", "22.04" ("" for sid / experimental)
    codename: str  # "Bookworm", "Jammy Jellyfish"
    series: str  # "bookworm", "jammy": what VERSION_CODENAME says
    created: date | None
    release: date | None
    eol: date | None
    extended: tuple[tuple[str, date], ...] = ()  # ("LTS", 2028-06-30), ("ELTS", 2033-06-30): after eol, in file order
    lts: bool = False  # Ubuntu's "22.04 LTS"
    source: str = ""  # the file it was read from

    def name(self) -> str:
        """'Debian 12 (bookworm)', 'Ubuntu 22.04 LTS (jammy)'."""
        version = f" {self.version}{' LTS' if self.lts else ''}" if self.version else ""
        return f"{self.distro.capitalize()}{version} ({self.series})"


def default_file(os_id: str) -> str:
    """The distro-info file for an os-release ID: /usr/share/distro-info/debian.csv or ubuntu.csv."""
    distro = SAME_RELEASES.get(os_id.lower(), os_id.lower())
    if distro not in ("debian", "ubuntu"):
        raise ReviewInputError(f"no distro-info file for OS {os_id!r}: distro-info-data covers debian and ubuntu only; "
                         "report this host's end of life as unknown (eol_status with no releases) or check it by hand")
    return f"{DISTRO_INFO_DIR}/{distro}.csv"


def read_distro_info(path: str | Path, distro: str | None = None) -> list[Release]:
    """Every release in a distro-info CSV, oldest first; `distro` defaults to the file's name ('debian')."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReviewInputError(f"cannot read the distro-info file {path} ({exc}): {_FIX}") from exc
    return parse_distro_info(text, str(path), distro or path.stem)


def parse_distro_info(text: str, source: str, distro: str) -> list[Release]:
    """The releases in the text of a distro-info CSV (`source` names it in errors)."""
    rows = list(csv.reader(io.StringIO(text)))
    header = [c.strip() for c in rows[0]] if rows else []
    if tuple(header[:len(COLUMNS)]) != COLUMNS:
        raise ReviewInputError(f"{source} is not a distro-info CSV: its header is {','.join(header)[:120]!r}, "
                         f"expected {','.join(COLUMNS)},…: {_FIX}")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        cells = dict(zip(header, (c.strip() for c in row), strict=False))
        dates = {col: _date(cells.get(col, ""), source, line, col) for col in header[3:]}
        eol = dates["eol"]
        extended = tuple((EXTENDED_LABELS.get(col, col.removeprefix("eol-")), d) for col, d in dates.items()
                         if col.startswith("eol-") and d is not None and (eol is None or d > eol))
        version = cells.get("version", "")
        out.append(Release(distro.lower(), version.removesuffix(" LTS").strip(), cells.get("codename", ""),
                           cells.get("series", "").lower(), dates["created"], dates["release"], eol, extended,
                           version.endswith(" LTS"), source))
    return out


def _date(text: str, source: str, line: int, column: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ReviewInputError(f"{source} line {line}: column {column} is {text!r}, not a date (YYYY-MM-DD): {_FIX}") from exc


@dataclass(frozen=True)
class EolStatus:
    """Where one host's release stands on `today`: its state and the release row it rests on."""

    state: EolState
    os_id: str
    version_id: str
    codename: str
    today: date
    release: Release | None = None
    source: str = ""  # the file searched

    @property
    def days(self) -> int | None:
        """Days until end of life (negative: since); None without a date."""
        eol = self.release.eol if self.release else None
        return None if eol is None else (eol - self.today).days

    @property
    def covered(self) -> tuple[str, date] | None:
        """The extended support that covers the release on `today` (the one ending first), if any."""
        later = [(label, d) for label, d in (self.release.extended if self.release else ()) if d >= self.today]
        return min(later, key=lambda x: x[1]) if later else None

    def name(self) -> str:
        if self.release is not None:
            return self.release.name()
        return " ".join(p for p in (self.os_id, self.version_id, f"({self.codename})" if self.codename else "") if p)

    def describe(self) -> str:
        """A sentence with dates and days."""
        days, name = self.days, self.name()
        if self.release is None and {self.os_id, self.version_id, self.codename} <= {"", "unknown"}:
            return "The OS release is unknown (host not reached, or no /etc/os-release): end of life unknown."
        if self.release is None:
            where = self.source or "any distro-info file"
            return (f"{name} is not in {where}: update distro-info-data, or check the host's /etc/os-release "
                    "(end of life unknown).")
        eol = self.release.eol
        if eol is None or days is None:
            return f"{name} has no end-of-life date in {self.source} yet (not released, or still current)."
        if self.state == "supported":
            return f"{name} is supported until {eol} (in {_days(days)})."
        if self.state == "near end of life":
            return f"{name} reaches end of life on {eol}, in {_days(days)}{self._after()}."
        return f"{name} reached end of life on {eol}, {_days(-days)} ago{self._after()}."

    def _after(self) -> str:
        """What covers the release after its end of life (LTS, ELTS…), or that nothing does any more."""
        if self.release is None or not self.release.extended:
            return ""
        cover = self.covered
        ended = "".join(f"; {label} ended {d}" for label, d in self.release.extended if d < self.today)
        if cover is None:
            return ended + "; nothing covers it any more"
        label, until = cover
        now = " then" if self.state == "near end of life" else " still"
        return ended + f"; {label}{now} covers it until {until} (in {_days((until - self.today).days)})"

    def brief(self) -> str:
        """A table cell: 'until 2028-08-09', 'in 41 d (2027-01-16)', 'ended 2022-09-10; ELTS to 2029-06-30'."""
        eol = self.release.eol if self.release else None
        if self.release is None:
            return "unknown"
        if eol is None:
            return "no date yet"
        if self.state == "supported":
            return f"until {eol}"
        if self.state == "near end of life":
            return f"in {self.days} d ({eol})"
        cover = self.covered
        return f"ended {eol}" + (f"; {cover[0]} to {cover[1]}" if cover else "; uncovered")


def _days(n: int) -> str:
    return humanize.count(n, "day")


def eol_status(facts_os_id: str, version_id: str, codename: str, releases: Sequence[Release], today: date,
               warn: timedelta = timedelta(days=180)) -> EolStatus:
    """A host's release against `releases` (one distro-info file): matched by codename (series) first, then
    by version; near end of life when it ends within `warn`."""
    source = releases[0].source if releases else ""
    distro = SAME_RELEASES.get(facts_os_id.lower(), facts_os_id.lower())
    mine = [r for r in releases if r.distro == distro]
    match = _match(codename.lower(), version_id, mine)
    if match is None:
        return EolStatus("unknown release", facts_os_id, version_id, codename, today, None, source)
    state: EolState = "supported"
    if match.eol is not None and match.eol < today:
        state = "end of life"
    elif match.eol is not None and match.eol - today <= warn:
        state = "near end of life"
    return EolStatus(state, facts_os_id, version_id, codename, today, match, match.source)


def _match(codename: str, version_id: str, releases: Sequence[Release]) -> Release | None:
    known = codename not in ("", "unknown")
    for r in releases:
        if known and (r.series == codename or r.codename.lower().split(" ")[:1] == [codename]):
            return r
    major = version_id.split(".")[0]
    for r in releases:  # Debian's version is the major one: VERSION_ID "12" (or a derivative's "12.5")
        if version_id not in ("", "unknown") and (r.version == version_id or ("." not in r.version and r.version == major)):
            return r
    return None
