"""A pretend package manager for tests: its state is two JSON files on the host.

`{root}/packages/installed.json`: name → installed version.
`{root}/packages/available.json`: name → {"version": ..., "kind": ...} (or just a version).
`{root}/packages/history.jsonl`: one line per apply / rollback (like /var/log/apt/history.log).
Files are read and written through `host.read_file` / `host.write_file`, so the driver works
on a LocalHost and over SSH/SFTP alike. Fault injection: while `{root}/packages/fail-apply`
(or `fail-rollback`) exists, `apply` (or `rollback`) raises PackageError and changes nothing.
A stop in the middle: while `{root}/packages/hold-apply` exists, `apply` waits (at most HOLD_LIMIT) before changing
anything, with `{root}/packages/holding-apply` written while it waits (a test kills the run there).
"""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

from upkeep.errors import HostError
from upkeep.hosts.base import Host
from upkeep.packages.base import check_updates
from upkeep.packages.model import KINDS, Kind, PackageError, PackageUpdate
from upkeep.packages.policy import SEMVER_MANAGERS, classify_semver

INSTALLED = "installed.json"
AVAILABLE = "available.json"
HISTORY = "history.jsonl"
HOLD_LIMIT = 600.0  # seconds an apply waits on a hold file before it goes on


def _dir(root: str) -> str:
    return posixpath.join(root, "packages")


def _dump(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(dict(data), indent=2, sort_keys=True) + "\n").encode()


def seed(host: Host, root: str, installed: Mapping[str, str], available: Mapping[str, Any]) -> None:
    """Create (or reset) a sandbox under `root`: both JSON files written, fault files removed."""
    d = _dir(root)
    host.run(["mkdir", "-p", d])
    host.run(["rm", "-f", *(posixpath.join(d, f) for f in ("fail-apply", "fail-rollback", "hold-apply", "holding-apply",
                                                             HISTORY))])
    host.write_file(posixpath.join(d, INSTALLED), _dump(installed))
    host.write_file(posixpath.join(d, AVAILABLE), _dump(available))


def set_fault(host: Host, root: str, action: str = "apply", enabled: bool = True, *, kind: str = "fail") -> None:
    """Make the sandbox's `apply` (or `rollback`) fail (`kind="fail"`), or wait (`kind="hold"`, apply only), until
    the fault is cleared."""
    if action not in ("apply", "rollback") or kind not in ("fail", "hold") or (kind, action) == ("hold", "rollback"):
        raise ValueError(f"unknown sandbox fault {kind}-{action}")
    path = posixpath.join(_dir(root), f"{kind}-{action}")
    if enabled:
        host.write_file(path, f"injected {kind}-{action}\n".encode())
    else:
        host.run(["rm", "-f", path])


class SandboxDriver:
    """The sandbox package manager on `host` under `root` (see the module docstring)."""

    def __init__(self, host: Host, root: str, manager: str = "sandbox") -> None:
        self.host = host
        self.root = root
        self.manager = manager

    def _path(self, name: str) -> str:
        return posixpath.join(_dir(self.root), name)

    def _read(self, name: str) -> dict[str, Any]:
        raw = self.host.read_file(self._path(name))
        try:
            data = json.loads(raw.decode() or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PackageError(f"sandbox {name} is not valid JSON: {exc}", host=self.host.name) from exc
        if not isinstance(data, dict):
            raise PackageError(f"sandbox {name} must hold a JSON object", host=self.host.name)
        return data

    def _check_fault(self, action: str) -> None:
        path = self._path(f"fail-{action}")
        if self.host.run(["test", "-e", path], check=False).exit_code == 0:
            raise PackageError(f"sandbox {action} failed on host {self.host.name} (fault injected by {path})",
                               host=self.host.name)

    def _wait_while_held(self, action: str) -> None:
        hold, holding = self._path(f"hold-{action}"), self._path(f"holding-{action}")
        if self.host.run(["test", "-e", hold], check=False).exit_code != 0:
            return
        self.host.write_file(holding, b"waiting for the hold file to go\n")
        deadline = time.monotonic() + HOLD_LIMIT
        while time.monotonic() < deadline and self.host.run(["test", "-e", hold], check=False).exit_code == 0:
            time.sleep(0.5)
        self.host.run(["rm", "-f", holding])

    def _kind(self, name: str, current: str, candidate: str, declared: object) -> Kind:
        if declared is None:
            return classify_semver(current, candidate) if self.manager in SEMVER_MANAGERS else "other"
        if declared not in KINDS:
            raise PackageError(f"sandbox {AVAILABLE}: {name} has unknown kind {declared!r}", host=self.host.name)
        return cast(Kind, declared)  # one of KINDS, checked above

    def upgradable(self) -> list[PackageUpdate]:
        """Every installed package whose available version differs from the installed one."""
        installed = self.installed()
        updates = []
        for name, info in sorted(self._read(AVAILABLE).items()):
            version, kind = (info, None) if isinstance(info, str) else (info.get("version"), info.get("kind"))
            current = installed.get(name)
            if current is None or not version or str(version) == current:
                continue
            updates.append(PackageUpdate(self.manager, name, current, str(version),
                                         self._kind(name, current, str(version), kind), "sandbox"))
        return updates

    def refresh(self) -> str:
        return "nothing to refresh (the sandbox reads its files on every plan)"

    def cleanup(self) -> str:
        return "nothing to clean up"

    def installed(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """name → installed version (of `names` if given)."""
        data = {str(k): str(v) for k, v in self._read(INSTALLED).items()}
        wanted = None if names is None else set(names)
        return data if wanted is None else {n: v for n, v in data.items() if n in wanted}

    def apply(self, updates: Sequence[PackageUpdate]) -> None:
        """Install each update's candidate version (all or nothing)."""
        updates = check_updates(self.manager, updates, self.host.name)
        self._wait_while_held("apply")
        self._check_fault("apply")
        self._write("apply", {u.name: u.candidate for u in updates})

    def rollback(self, previous: dict[str, str]) -> None:
        """Restore exactly the versions in `previous`."""
        self._check_fault("rollback")
        self._write("rollback", previous)

    def history(self) -> list[dict[str, Any]]:
        """Every apply / rollback so far, oldest first: {"action": ..., "versions": {name: version}}."""
        try:
            raw = self.host.read_file(self._path(HISTORY))
        except HostError:
            return []
        return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]

    def _write(self, action: str, versions: Mapping[str, str]) -> None:
        if not versions:
            return
        data = self._read(INSTALLED)
        data.update({n: str(v) for n, v in versions.items()})
        self.host.write_file(self._path(INSTALLED), _dump(data))
        line = json.dumps({"action": action, "versions": dict(versions)}, sort_keys=True) + "\n"
        self.host.write_file(self._path(HISTORY), b"".join(json.dumps(h, sort_keys=True).encode() + b"\n"
                                                          for h in self.history()) + line.encode())
