"""One host's update sequence (upkeep.packages.rolling) over fake operations: order, rollback, retries."""

from __future__ import annotations

from typing import Sequence

import pytest

from upkeep.errors import UpkeepError
from upkeep.packages.model import PackageUpdate
from upkeep.packages.rolling import HostRolledBack, rollback_targets, update_host, with_retries

UPDATES = [PackageUpdate("apt", "openssl", "3.0.14-1", "3.0.15-1", "security", "bookworm-security"),
           PackageUpdate("npm", "express", "4.17.1", "5.0.1", "major", "npm")]
BEFORE = {"apt": {"openssl": "3.0.14-1", "curl": "7.88"}, "npm": {"express": "4.17.1"}}


class FakeOps:
    def __init__(self, unhealthy_after_update: bool = False) -> None:
        self.calls: list[tuple] = []
        self.installed = {m: dict(v) for m, v in BEFORE.items()}
        self.unhealthy_after_update = unhealthy_after_update

    def service(self, service: str, action: str) -> None:
        self.calls.append((action, service))

    def apply(self, manager: str, updates: list[PackageUpdate]) -> dict[str, str]:
        self.calls.append(("apply", manager, tuple(u.name for u in updates)))
        self.installed[manager].update({u.name: u.candidate for u in updates})
        return {u.name: self.installed[manager][u.name] for u in updates}

    def rollback(self, manager: str, versions: dict[str, str]) -> dict[str, str]:
        self.calls.append(("rollback", manager, tuple(sorted(versions.items()))))
        self.installed[manager].update(versions)
        return dict(versions)

    def verify(self, services: Sequence[str], stage: str) -> None:
        self.calls.append(("verify", stage))
        if stage == "post" and self.unhealthy_after_update:
            raise UpkeepError("api: HTTP 500")


def test_services_are_stopped_around_the_update_then_verified() -> None:
    ops = FakeOps()
    after = update_host(ops, ["api", "worker"], UPDATES, BEFORE)
    assert after == {"apt": {"openssl": "3.0.15-1"}, "npm": {"express": "5.0.1"}}
    assert ops.calls == [("stop", "api"), ("stop", "worker"), ("apply", "apt", ("openssl",)), ("apply", "npm", ("express",)),
                         ("start", "api"), ("start", "worker"), ("verify", "post")]


def test_failed_checks_roll_back_to_the_exact_previous_versions_and_verify_again() -> None:
    ops = FakeOps(unhealthy_after_update=True)
    with pytest.raises(HostRolledBack, match=r"post-update checks failed \(api: HTTP 500\); rolled back"):
        update_host(ops, ["api"], UPDATES, BEFORE)
    assert ops.installed == BEFORE  # curl untouched, the two updated packages back to their versions
    assert ops.calls[-6:] == [("verify", "post"), ("stop", "api"), ("rollback", "apt", (("openssl", "3.0.14-1"),)),
                              ("rollback", "npm", (("express", "4.17.1"),)), ("start", "api"), ("verify", "rollback")]


def test_services_start_again_when_apply_fails() -> None:
    ops = FakeOps()

    def broken(manager: str, updates: list[PackageUpdate]) -> dict[str, str]:
        raise UpkeepError("dpkg lock held")

    ops.apply = broken  # type: ignore[method-assign]
    with pytest.raises(UpkeepError, match="dpkg lock"):
        update_host(ops, ["api"], UPDATES, BEFORE)
    assert ops.calls == [("stop", "api"), ("start", "api")]


def test_rollback_targets_only_packages_that_existed_before() -> None:
    new_pkg = PackageUpdate("apt", "brand-new", "", "1.0", "other", "x")
    assert rollback_targets(BEFORE, [*UPDATES, new_pkg]) == {"apt": {"openssl": "3.0.14-1"}, "npm": {"express": "4.17.1"}}


def test_with_retries_backs_off_then_gives_up() -> None:
    sleeps: list[float] = []
    tries = iter([UpkeepError("a"), UpkeepError("b"), "ok"])

    def flaky() -> str:
        v = next(tries)
        if isinstance(v, Exception):
            raise v
        return v

    assert with_retries(flaky, attempts=4, base_delay=1.0, sleep=sleeps.append) == "ok"
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.5 and 1.0 <= sleeps[1] <= 3.0
    with pytest.raises(UpkeepError, match="always"):
        with_retries(lambda: (_ for _ in ()).throw(UpkeepError("always")), attempts=2, base_delay=0, sleep=sleeps.append)
