"""Dependency updates on real npm: the stack's local registry (sandbox/npmregistry.py: em-format, em-client,
@em/logfmt in several versions) and, on each application host, the Event Manager's package.json pinned to the
first versions; npm run over SSH as the login user, offline (the registry is on loopback)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from flows.system_update import system_update
from sandbox.npmregistry import FIXTURE_DEPENDENCIES, FIXTURE_INSTALLED, lockfile
from sandbox.stack import Stack
from sandbox.standin import npm_installed
from tests.helpers import inventory_variant, report_of, standin
from upkeep.packages.npm import NpmDriver
from upkeep.resources import Resources

pytestmark = pytest.mark.stack


@pytest.fixture
def apps(stack: Stack) -> Iterator[dict[str, Path]]:
    """The application directories of host1 and host2 with every fixture package (a major waiting too), at
    their first versions; the demo's again afterwards."""
    yield stack.seed_npm(FIXTURE_DEPENDENCIES)
    stack.seed_npm()


def locked(app: Path) -> dict[str, str]:
    """What the application's lockfile says is installed (read here, not through Upkeep)."""
    return npm_installed((app / "package-lock.json").read_text())


def on_disk(app: Path) -> dict[str, str]:
    """The versions really in node_modules."""
    return {n: json.loads((app / "node_modules" / n / "package.json").read_text())["version"] for n in FIXTURE_INSTALLED}


def npm_config(stack: Stack, tmp_path: Path, **changes: object) -> str:
    data = yaml.safe_load(stack.inventory_path.read_text())
    updates = {**data["environments"]["development"]["updates"], "backup_first": False, "approvals": "hold",
               "smoke_tests": []}
    return inventory_variant(stack, tmp_path / "npm.yaml", "development", updates=updates, **changes)


def test_the_driver_plans_applies_and_rolls_back_from_the_saved_lockfile(stack: Stack, apps: dict[str, Path]) -> None:
    app = apps["host1"]
    original = (app / "package-lock.json").read_text()
    with Resources.from_config(str(stack.inventory_path), "development") as res:
        npm = NpmDriver(res.hosts.get("host1"), str(app))
        assert npm.installed() == FIXTURE_INSTALLED
        plan = {(u.name, u.candidate): u.kind for u in npm.outdated()}
        assert plan == {("em-format", "1.1.0"): "minor", ("em-client", "1.0.1"): "patch",
                        ("em-client", "2.0.0"): "major", ("@em/logfmt", "2.3.1"): "patch"}
        minor = next(u for u in npm.outdated() if u.name == "em-format")
        npm.apply([minor])
        assert on_disk(app)["em-format"] == "1.1.0" and locked(app)["em-format"] == "1.1.0"
        assert json.loads((app / "package.json").read_text())["dependencies"]["em-format"] == "1.1.0"
        npm.rollback({"em-format": "1.0.0"})
        assert on_disk(app) == FIXTURE_INSTALLED  # reinstalled from the lockfile saved before the update
        assert (app / "package-lock.json").read_text() == original
        assert npm.cleanup() == "npm prune: nothing extraneous"
    assert json.loads(original) == lockfile()  # nothing in it names the registry's address or port


def test_a_dependencies_run_applies_patch_and_minor_and_holds_the_major(stack: Stack, apps: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    apt_status = {h: (app.parent / "apt/var/lib/dpkg/status").read_text() for h, app in apps.items()}
    state = system_update(environment="development", config=npm_config(stack, tmp_path), scope="dependencies",
                          return_state=True)
    assert state.is_completed(), state.message
    for app in apps.values():
        assert on_disk(app) == locked(app) == {"em-format": "1.1.0", "em-client": "1.0.1", "@em/logfmt": "2.3.1"}
    for h, status in apt_status.items():  # a dependencies run leaves the OS packages alone
        assert (apps[h].parent / "apt/var/lib/dpkg/status").read_text() == status
    report = report_of(state.state_details.flow_run_id)
    assert report.key == "dependency-updates-development-report"
    text = report.data
    assert "| em-format | host1 | done |" in text and "npm: 1.0.0 → 1.1.0" in text
    assert "npm: 1.0.0 → 1.0.1" in text and "npm: 2.3.0 → 2.3.1" in text
    assert "em-client 1.0.0 → 2.0.0 (major)" in text and "needs approval" in text  # held for review
    assert "| apt |" not in text and "| sandbox |" not in text  # no OS plan
    assert "npm: npm prune" in text
    # time per step on each host, in the order the steps ran
    took = r"\| update \| host1 \| done \| [0-9.]+s \| [^|]*\(took: stop {t}, npm {t}, start {t}, checks {t}\)"
    assert re.search(took.format(t=r"[0-9.]+ m?s"), text), text
    assert f"(minor) from registry {stack.npm_registry_url}/: automatic" in text  # where the version comes from


def test_a_failed_check_after_an_npm_update_restores_the_lockfile(stack: Stack, apps: dict[str, Path],
                                                                tmp_path: Path) -> None:
    before = {h: (app / "package-lock.json").read_text() for h, app in apps.items()}
    standin(stack, 1, "break-version", package="em-format", version="1.1.0")  # host2's API breaks with em-format 1.1.0
    try:
        cfg = npm_config(stack, tmp_path, max_concurrency=1, max_errors=1)
        state = system_update(environment="development", config=cfg, scope="dependencies", return_state=True)
    finally:
        standin(stack, 1, "reset")
    assert state.is_failed() and "host2: post-update checks failed" in state.message
    assert locked(apps["host1"])["em-format"] == "1.1.0"
    assert on_disk(apps["host2"]) == FIXTURE_INSTALLED  # back to the exact previous tree, by npm ci
    assert (apps["host2"] / "package-lock.json").read_text() == before["host2"]
    text = report_of(state.state_details.flow_run_id).data
    assert "| em-format | host2 | rolled back |" in text and "npm: back to 1.0.0" in text
    assert re.search(r"\| update \| host2 \| failed \| [0-9.]+s \| [^|]*took: stop [^|]*npm rollback [0-9.]+ m?s"
                     r"[^|]*checks after rollback", text), text
