"""apt/dpkg driver (Debian, Ubuntu): list, simulate, apply and roll back package updates.

Parsing is done by pure module-level functions so captured outputs can be tested offline.
Every command is an argv list; locale is pinned with an `env LC_ALL=C` prefix so the output
is parseable. With `simulate_only=True` (the default) the driver never changes the machine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from upkeep.hosts.base import Host
from upkeep.packages.base import check_args, check_updates, run_or_raise
from upkeep.packages.model import PackageError, PackageUpdate
from upkeep.packages.policy import apt_kind

MANAGER = "apt"
_ENV = ["env", "LC_ALL=C"]
_APPLY_ENV = ["env", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"]
# keep local config files when a package ships a new one (never prompt)
_DPKG_OPTS = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
_NAME = re.compile(r"[a-z0-9][a-z0-9+.\-]*(?::[a-z0-9]+)?")
_VERSION = re.compile(r"[A-Za-z0-9.+~:\-]+")
_LIST_LINE = re.compile(
    r"^(?P<name>[^/\s]+)/(?P<origin>\S+)\s+(?P<candidate>\S+)\s+(?P<arch>\S+)\s+"
    r"\[upgradable from:\s*(?P<current>[^\]\s]+)\]"
)
_INST_LINE = re.compile(
    r"^Inst\s+(?P<name>\S+)(?:\s+\[(?P<current>[^\]]*)\])?\s+"
    r"\((?P<candidate>\S+)\s+(?P<suite>[^\[]*?)\s*\[(?P<arch>[^\]]+)\]\)"
)
_STATUS_OK = ("ii", "hi")  # installed (optionally held)


def parse_apt_list_upgradable(text: str) -> list[PackageUpdate]:
    """Updates from `apt list --upgradable` (LC_ALL=C).

    Lines look like `openssl/stable-security 3.0.15-1~deb12u1 amd64 [upgradable from: 3.0.14-1~deb12u2]`;
    "Listing...", WARNING and blank lines are ignored. A package listed for several
    architectures is kept once (the first line).
    """
    updates: dict[str, PackageUpdate] = {}
    for line in text.splitlines():
        m = _LIST_LINE.match(line.strip())
        if not m or m["name"] in updates:
            continue
        updates[m["name"]] = PackageUpdate(
            MANAGER, m["name"], m["current"], m["candidate"],
            apt_kind(m["name"], m["current"], m["candidate"], m["origin"]), m["origin"],
        )
    return list(updates.values())


def parse_apt_get_simulate(text: str) -> list[PackageUpdate]:
    """What `apt-get -s install|upgrade` would install: one update per `Inst` line.

    `Inst pkg [old] (new Debian-Security:12/stable-security [amd64])`; a newly pulled-in
    dependency has no `[old]` and gets current "". `Conf`/`Remv` and other lines are ignored.
    """
    out: list[PackageUpdate] = []
    for line in text.splitlines():
        m = _INST_LINE.match(line.strip())
        if m:
            current = (m["current"] or "").strip()
            out.append(PackageUpdate(MANAGER, m["name"], current, m["candidate"],
                                     apt_kind(m["name"], current, m["candidate"], m["suite"]), m["suite"]))
    return out


def parse_dpkg_query(text: str) -> dict[str, str]:
    """name → version from `dpkg-query -W -f '${Package}\\t${Version}\\n'`.

    An optional third column `${db:Status-Abbrev}` is honoured: only installed packages
    ("ii", "hi") are kept. Lines without a version (known but not installed) are skipped.
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        cols = line.rstrip("\n").split("\t")
        if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
            continue
        if len(cols) >= 3 and cols[2].strip()[:2] not in _STATUS_OK:
            continue
        out.setdefault(cols[0].strip(), cols[1].strip())
    return out


class AptDriver:
    """apt on one host. `simulate_only=True` refuses `apply`/`rollback` (the safe default)."""

    manager = MANAGER

    def __init__(self, host: Host, *, simulate_only: bool = True, timeout: float = 1800.0) -> None:
        self.host = host
        self.simulate_only = simulate_only
        self.timeout = timeout

    def refresh(self) -> None:
        """`apt-get update`: refresh the package lists (changes no installed package)."""
        run_or_raise(self.host, [*_ENV, "apt-get", "update", "-q"], "apt-get update", timeout=self.timeout)

    def upgradable(self) -> list[PackageUpdate]:
        """The upgradable packages, from `apt list --upgradable` (lists as last refreshed)."""
        result = run_or_raise(self.host, [*_ENV, "apt", "list", "--upgradable"], "apt list --upgradable")
        return parse_apt_list_upgradable(result.stdout)

    def simulate_updates(self, names: Sequence[str]) -> list[PackageUpdate]:
        """Every package `apt-get install --only-upgrade NAMES` would install, dependencies included."""
        names = check_args(_NAME, "package name", names, self.host.name)
        if not names:
            return []
        argv = [*_ENV, "apt-get", "-s", "install", "--only-upgrade", *names]
        return parse_apt_get_simulate(run_or_raise(self.host, argv, "apt-get -s install").stdout)

    def simulate(self, names: Sequence[str]) -> list[str]:
        """The names of the packages an upgrade of `names` would install (shows dependency pulls)."""
        return [u.name for u in self.simulate_updates(names)]

    def installed(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """name → installed version; names that are not installed are left out."""
        names = check_args(_NAME, "package name", names or [], self.host.name)
        argv = [*_ENV, "dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n", *names]
        # dpkg-query exits 1 when some name is unknown but still prints the others
        return parse_dpkg_query(run_or_raise(self.host, argv, "dpkg-query", ok_codes=(0, 1)).stdout)

    def apply(self, updates: Sequence[PackageUpdate]) -> None:
        """Install each update's exact candidate version (`apt-get install -y --only-upgrade name=version`)."""
        updates = check_updates(self.manager, updates, self.host.name)
        pins = {u.name: u.candidate for u in updates}
        self._install(pins, ["--only-upgrade"], "apply")

    def rollback(self, previous: dict[str, str]) -> None:
        """Install exactly the versions in `previous` (`--allow-downgrades`)."""
        self._install(dict(previous), ["--allow-downgrades"], "rollback")

    def _install(self, pins: dict[str, str], flags: list[str], what: str) -> None:
        if self.simulate_only:
            raise PackageError(f"apt {what} refused: driver is simulate_only, the machine is not changed",
                               host=self.host.name)
        names = check_args(_NAME, "package name", pins, self.host.name)
        check_args(_VERSION, "version", pins.values(), self.host.name)
        if not names:
            return
        argv = [*_APPLY_ENV, "apt-get", "install", "-y", "-q", *_DPKG_OPTS, *flags,
                *(f"{n}={pins[n]}" for n in names)]
        run_or_raise(self.host, argv, f"apt-get install ({what})", timeout=self.timeout)
