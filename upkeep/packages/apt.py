"""apt/dpkg driver (Debian, Ubuntu): list, simulate, apply and roll back package updates.

Parsing is done by pure module-level functions so captured outputs can be tested offline.
Every command is an argv list; locale is pinned with an `env LC_ALL=C` prefix so the output
is parseable. With `simulate_only=True` (the default) the driver never changes the machine.
"""

from __future__ import annotations

import re
import time
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


def root_options(root: str | None, *, privileged: bool) -> list[str]:
    """apt options that point every apt and dpkg step at an isolated root (a test host, a chroot): its
    sources, lists, cache and dpkg database; nothing of the machine's own packages is read or changed.
    Not `privileged` (no become to root): dpkg is told it may run as another user."""
    if not root:
        return []
    r = root.rstrip("/")
    opts = ["-o", f"Dir={r}/", "-o", "Dir::Bin::dpkg=/usr/bin/dpkg", "-o", f"Dir::State::status={r}/var/lib/dpkg/status",
            "-o", f"DPkg::Options::=--admindir={r}/var/lib/dpkg", "-o", f"DPkg::Options::=--instdir={r}",
            "-o", "DPkg::Options::=--force-script-chrootless", "-o", f"DPkg::Options::=--log={r}/var/log/dpkg.log"]
    return opts if privileged else [*opts, "-o", "DPkg::Options::=--force-not-root"]


class AptDriver:
    """apt on one host. `simulate_only=True` refuses `apply`/`rollback` (the safe default). `become` (e.g.
    `sudo -n -u root --`) prefixes what changes the host; `root` isolates apt and dpkg in a directory."""

    manager = MANAGER

    def __init__(self, host: Host, *, simulate_only: bool = True, timeout: float = 1800.0, root: str | None = None,
                 become: Sequence[str] = (), privileged: bool = False, cache_valid_time: float = 3600.0,
                 autoremove: bool = True, clean: bool = True) -> None:
        self.host = host
        self.simulate_only = simulate_only
        self.timeout = timeout
        self.root = root.rstrip("/") if root else None
        self.become = list(become)
        self.opts = root_options(root, privileged=privileged)
        self.cache_valid_time = cache_valid_time
        self.autoremove, self.clean = autoremove, clean

    def _apt(self, *args: str, change: bool = False) -> list[str]:
        return [*(self.become if change else []), *(_APPLY_ENV if change else _ENV), args[0], *self.opts, *args[1:]]

    def refresh(self) -> str:
        """`apt-get update` unless the lists are younger than `cache_valid_time` (Ansible's apt module);
        a sentence saying which."""
        lists = f"{self.root or ''}/var/lib/apt/lists"
        cutoff = f"@{time.time() - self.cache_valid_time:.0f}"
        fresh = self.host.run(["find", lists, "-maxdepth", "1", "-type", "f", "-name", "*Packages*", "-newermt", cutoff,
                               "-print", "-quit"], check=False)
        if fresh.ok and fresh.stdout.strip():
            return f"package lists fresh (updated within {self.cache_valid_time / 60:.0f} min): not refreshed"
        run_or_raise(self.host, self._apt("apt-get", "update", "-q", change=True), "apt-get update", timeout=self.timeout,
                     become=self.become)
        return "package lists refreshed (apt-get update)"

    def upgradable(self) -> list[PackageUpdate]:
        """The upgradable packages, from `apt list --upgradable` (lists as last refreshed)."""
        result = run_or_raise(self.host, self._apt("apt", "list", "--upgradable"), "apt list --upgradable")
        return parse_apt_list_upgradable(result.stdout)

    def simulate_updates(self, names: Sequence[str]) -> list[PackageUpdate]:
        """Every package `apt-get install --only-upgrade NAMES` would install, dependencies included."""
        names = check_args(_NAME, "package name", names, self.host.name)
        if not names:
            return []
        argv = self._apt("apt-get", "-s", "install", "--only-upgrade", *names)
        return parse_apt_get_simulate(run_or_raise(self.host, argv, "apt-get -s install").stdout)

    def simulate(self, names: Sequence[str]) -> list[str]:
        """The names of the packages an upgrade of `names` would install (shows dependency pulls)."""
        return [u.name for u in self.simulate_updates(names)]

    def installed(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """name → installed version; names that are not installed are left out."""
        names = check_args(_NAME, "package name", names or [], self.host.name)
        admin = [f"--admindir={self.root}/var/lib/dpkg"] if self.root else []
        argv = [*_ENV, "dpkg-query", *admin, "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n", *names]
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

    def cleanup(self) -> str:
        """After a successful host: `apt-get autoremove` (what it removes, listed first by a simulation) and
        `apt-get clean`, as configured; a sentence for the report."""
        if self.simulate_only:
            return "no clean-up (simulate only)"
        said = []
        if self.autoremove:
            plan = parse_apt_get_removals(run_or_raise(self.host, self._apt("apt-get", "-s", "autoremove"),
                                                       "apt-get -s autoremove").stdout)
            if plan:
                run_or_raise(self.host, self._apt("apt-get", "autoremove", "-y", "-q", *_DPKG_OPTS, change=True),
                             "apt-get autoremove", timeout=self.timeout, become=self.become)
            said.append(f"autoremove: {', '.join(plan)}" if plan else "autoremove: nothing to remove")
        if self.clean:
            run_or_raise(self.host, self._apt("apt-get", "clean", change=True), "apt-get clean", become=self.become)
            said.append("downloaded packages cleaned")
        return "; ".join(said) or "no clean-up configured"

    def _install(self, pins: dict[str, str], flags: list[str], what: str) -> None:
        if self.simulate_only:
            raise PackageError(f"apt {what} refused: driver is simulate_only, the machine is not changed",
                               host=self.host.name)
        names = check_args(_NAME, "package name", pins, self.host.name)
        check_args(_VERSION, "version", pins.values(), self.host.name)
        if not names:
            return
        argv = self._apt("apt-get", "install", "-y", "-q", *_DPKG_OPTS, *flags, *(f"{n}={pins[n]}" for n in names),
                         change=True)
        run_or_raise(self.host, argv, f"apt-get install ({what})", timeout=self.timeout, become=self.become)


_REMV_LINE = re.compile(r"^Remv\s+(?P<name>\S+)")


def parse_apt_get_removals(text: str) -> list[str]:
    """The packages `apt-get -s autoremove` would remove (its `Remv` lines)."""
    return [m["name"] for line in text.splitlines() if (m := _REMV_LINE.match(line.strip()))]
