"""The package side of one host of the inventory: its drivers, what the pre stage learns about it,
and `HostOps` (what `rolling.update_host` needs) over the run's Resources."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from upkeep.config.models import PackageSource
from upkeep.config.render import host_path, render
from upkeep.decisions.disk import DiskVerdict, disk_verdicts
from upkeep.hosts.fanout import timed_step
from upkeep.log import run_logger
from upkeep.operations import run_service_command, verify_host
from upkeep.packages.apt import AptDriver
from upkeep.packages.base import PackageDriver
from upkeep.packages.model import PackageUpdate
from upkeep.packages.npm import NpmDriver
from upkeep.packages.rolling import Versions
from upkeep.packages.sandbox import SandboxDriver
from upkeep.resources import Resources


def drivers_for(res: Resources, host: str) -> dict[str, PackageDriver]:
    """The host's package managers, as the environment's `updates.sources` configure them."""
    h, cfg = res.hosts.get(host), res.hosts.get_config(host)

    def build(src: PackageSource) -> PackageDriver:
        if src.manager == "apt":
            become = res.env.become
            root = host_path(src.root, cfg, "updates.sources[apt].root") if src.root else None
            return AptDriver(h, simulate_only=src.simulate_only, root=root,
                             become=become.prefix() if become else (), privileged=become is not None and become.user == "root",
                             cache_valid_time=src.cache_valid_time.total_seconds(), autoremove=src.autoremove, clean=src.clean)
        if src.manager == "npm":
            return NpmDriver(h, render(src.app_dir or "", cfg))
        return SandboxDriver(h, render(src.root or "", cfg))

    return {src.manager: build(src) for src in res.env.updates.sources if src.role is None or src.role in cfg.roles}


@dataclass(frozen=True)
class HostReadiness:
    """What the pre stage learns about one host: free disk against the threshold, installed versions."""

    disk: list[DiskVerdict]
    installed: Versions

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.disk)

    def describe(self) -> str:
        disk = "; ".join(v.detail for v in self.disk)
        return f"{disk}; installed: " + ", ".join(f"{m} {len(v)} packages" for m, v in self.installed.items())


def readiness(res: Resources, host: str, min_free_percent: float) -> HostReadiness:
    """The host answers; its free disk and a snapshot of its installed versions (what a rollback returns to)."""
    disk = disk_verdicts(res.hosts.get(host).resources(), min_free_percent)
    return HostReadiness(disk, {m: d.installed() for m, d in drivers_for(res, host).items()})


class InventoryHostOps:
    """`upkeep.packages.rolling.HostOps` on a host of the inventory: its configured service commands,
    its package drivers, HTTP health probes and smoke tests, retried `attempts` times with backoff."""

    def __init__(self, res: Resources, host: str, *, attempts: int, base_delay: float) -> None:
        self.res, self.host = res, host
        self.attempts, self.base_delay = attempts, base_delay
        self.drivers = drivers_for(res, host)
        self.logger = run_logger()

    def service(self, service: str, action: str) -> None:
        with timed_step(action):
            run_service_command(self.res, self.host, service, action)

    def apply(self, manager: str, updates: list[PackageUpdate]) -> dict[str, str]:
        self.logger.info("%s: %s: applying %s", self.host, manager, ", ".join(u.describe() for u in updates))
        with timed_step(manager):
            self.drivers[manager].apply(updates)
            return self.drivers[manager].installed([u.name for u in updates])

    def rollback(self, manager: str, versions: dict[str, str]) -> dict[str, str]:
        self.logger.warning("%s: %s: rolling back %s", self.host, manager, ", ".join(f"{n}={v}" for n, v in versions.items()))
        with timed_step(f"{manager} rollback"):
            self.drivers[manager].rollback(versions)
            return self.drivers[manager].installed(list(versions))

    def verify(self, services: Sequence[str], stage: str) -> None:
        with timed_step("checks" if stage == "post" else f"checks after {stage}"):
            verify_host(self.res, self.host, services, self.attempts, self.base_delay)
        if services:
            self.logger.info("%s: %s checks passed (%s)", self.host, stage, ", ".join(services))
