"""One host's update sequence (upkeep.packages.rolling) over fake operations: order, rollback, retries."""

from __future__ import annotations

from collections.abc import Sequence

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


class BrokenOps(FakeOps):
    """FakeOps whose npm apply fails after apt was applied, or whose service commands fail."""

    def __init__(self, fail_apply: str = "", fail_service: tuple[str, str] | None = None, fail_rollback: bool = False) -> None:
        super().__init__()
        self.fail_apply, self.fail_service, self.fail_rollback = fail_apply, fail_service, fail_rollback

    def service(self, service: str, action: str) -> None:
        super().service(service, action)
        if self.fail_service == (action, service) and not any(c[0] == "rollback" for c in self.calls):
            raise UpkeepError(f"{service} exited 1")

    def apply(self, manager: str, updates: list[PackageUpdate]) -> dict[str, str]:
        if manager == self.fail_apply:
            self.calls.append(("apply", manager, tuple(u.name for u in updates)))
            self.installed[manager][updates[0].name] = updates[0].candidate  # part-way: one package changed
            raise UpkeepError("dpkg: error processing package")
        return super().apply(manager, updates)

    def rollback(self, manager: str, versions: dict[str, str]) -> dict[str, str]:
        if self.fail_rollback:
            raise UpkeepError("E: Version '3.0.14-1' for 'openssl' was not found")
        return super().rollback(manager, versions)


def test_an_apply_failing_part_way_rolls_back_every_manager_it_touched() -> None:
    ops = BrokenOps(fail_apply="npm")  # apt applied, then npm failed after changing express
    with pytest.raises(HostRolledBack, match=r"npm update failed \(dpkg: error processing package\); rolled back"):
        update_host(ops, ["api"], UPDATES, BEFORE)
    assert ops.installed == BEFORE
    assert ops.calls[-5:] == [("stop", "api"), ("rollback", "apt", (("openssl", "3.0.14-1"),)),
                              ("rollback", "npm", (("express", "4.17.1"),)), ("start", "api"), ("verify", "rollback")]


def test_a_service_that_will_not_start_after_the_update_is_rolled_back_and_the_others_still_start() -> None:
    ops = BrokenOps(fail_service=("start", "api"))
    with pytest.raises(HostRolledBack, match=r"service start failed \(start api: api exited 1\); rolled back"):
        update_host(ops, ["api", "worker"], UPDATES, BEFORE)
    assert ops.installed == BEFORE
    assert ops.calls[3:6] == [("apply", "npm", ("express",)), ("start", "api"), ("start", "worker")]  # worker not skipped
    assert ops.calls[-2:] == [("start", "worker"), ("verify", "rollback")]


def test_a_service_that_will_not_stop_changes_nothing_and_the_stopped_ones_start_again() -> None:
    ops = BrokenOps(fail_service=("stop", "worker"))
    with pytest.raises(UpkeepError, match="stop worker: worker exited 1; nothing was changed; services started again") as err:
        update_host(ops, ["api", "worker"], UPDATES, BEFORE)
    assert not isinstance(err.value, HostRolledBack)
    assert ops.installed == BEFORE
    assert ops.calls == [("stop", "api"), ("stop", "worker"), ("start", "api"), ("start", "worker")]


def test_a_failed_rollback_is_reported_as_such_and_services_start_again() -> None:
    ops = BrokenOps(fail_rollback=True)
    ops.unhealthy_after_update = True
    with pytest.raises(UpkeepError, match=r"post-update checks failed \(api: HTTP 500\); rollback failed \(E: Version") as err:
        update_host(ops, ["api"], UPDATES, BEFORE)
    assert not isinstance(err.value, HostRolledBack)
    assert ops.calls[-2:] == [("stop", "api"), ("start", "api")]


def test_a_rollback_names_newly_installed_packages_it_leaves_in_place() -> None:
    ops = FakeOps(unhealthy_after_update=True)
    new_pkg = PackageUpdate("apt", "brand-new", "", "1.0", "other", "x")
    with pytest.raises(HostRolledBack, match=r"newly installed, left in place: apt:brand-new"):
        update_host(ops, ["api"], [*UPDATES, new_pkg], BEFORE)


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
