"""The interface every package-manager driver offers, and helpers shared by the drivers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from upkeep.errors import CommandError
from upkeep.hosts.base import CommandResult, Host
from upkeep.packages.model import PackageError, PackageUpdate


@runtime_checkable
class PackageDriver(Protocol):
    """One package manager on one host (apt, npm, the test sandbox, ...)."""

    manager: str

    def upgradable(self) -> list[PackageUpdate]:
        """The updates available now, classified."""
        ...

    def installed(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """name → installed version (of `names`, or of every package); absent names are left out."""
        ...

    def apply(self, updates: Sequence[PackageUpdate]) -> None:
        """Install the candidate version of each update; raise PackageError on failure."""
        ...

    def rollback(self, previous: dict[str, str]) -> None:
        """Install exactly the versions in `previous` (name → version), downgrading if needed."""
        ...

    def refresh(self) -> str:
        """Bring what it knows of available versions up to date (apt-get update); a sentence."""
        ...

    def cleanup(self) -> str:
        """After a host updated successfully: remove what is no longer needed; a sentence."""
        ...


def snapshot(driver: PackageDriver, names: Sequence[str] | None = None) -> dict[str, str]:
    """The installed versions to hand to `driver.rollback` if an apply goes wrong."""
    return dict(driver.installed(list(names) if names is not None else None))


def check_args(pattern: re.Pattern[str], what: str, values: Iterable[str], host: str) -> list[str]:
    """`values` unchanged if each matches `pattern` (never an option such as "-o..."), else PackageError."""
    out = list(values)
    for v in out:
        if v.startswith("-") or not pattern.fullmatch(v):
            raise PackageError(f"invalid {what} {v!r}", host=host)
    return out


def check_updates(manager: str, updates: Sequence[PackageUpdate], host: str) -> list[PackageUpdate]:
    """`updates` as a list, refusing any that belongs to another manager."""
    wrong = [u.item_id for u in updates if u.manager != manager]
    if wrong:
        raise PackageError(f"{manager} driver cannot apply {', '.join(wrong)}", host=host)
    return list(updates)


_SUDO_REFUSED = ("a password is required", "is not in the sudoers file", "is not allowed to execute",
                 "a terminal is required", "may not run sudo")


def run_or_raise(host: Host, argv: Sequence[str], what: str, *, timeout: float | None = None,
                 ok_codes: tuple[int, ...] = (0,), become: Sequence[str] = ()) -> CommandResult:
    """Run argv; an exit code outside `ok_codes` becomes a PackageError naming the host and step. When
    `become` (sudo) refused, the error says which sudoers line would allow exactly this command."""
    try:
        result = host.run(argv, timeout=timeout, check=False)
    except CommandError as exc:  # a Host may still raise with check=False; treat it the same
        raise PackageError(f"{what} failed: {exc}", host=host.name) from exc
    if become and result.exit_code != 0 and "sudo" in result.stderr and any(s in result.stderr for s in _SUDO_REFUSED):
        command = next((a for a in argv[len(become):] if not a.startswith("-") and "=" not in a and a != "env"), argv[-1])
        user = become[become.index("-u") + 1] if "-u" in become else "root"
        raise PackageError(
            f"sudo refused {what} ({result.stderr.strip().splitlines()[-1][:200]}): the login user needs a sudoers line "
            f"for it, e.g. in /etc/sudoers.d/upkeep (visudo -f): `<login user> ALL=({user}) NOPASSWD: /usr/bin/env "
            f"LC_ALL=C DEBIAN_FRONTEND=noninteractive {command} *` — or set the environment's `become` to none if the "
            "login user may run it itself", host=host.name)
    if result.exit_code not in ok_codes:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        raise PackageError(f"{what} failed (exit {result.exit_code}): {' | '.join(tail)[:500]}", host=host.name)
    return result
