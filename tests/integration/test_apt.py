"""System updates on real apt: a local repository (sandbox/aptrepo.py), each sshd test host with its own
apt/dpkg root (the machine's own packages untouched), apt-get run over SSH as the login user — through
real sudo where `become` says so."""

from __future__ import annotations

import pwd
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.system_update import system_update
from sandbox.aptrepo import INSTALLED, build_repo, make_root
from sandbox.sshd import USER
from sandbox.stack import Stack
from tests.helpers import inventory_variant, report_of, standin
from upkeep.errors import PackageError
from upkeep.packages.apt import AptDriver
from upkeep.resources import Resources

pytestmark = pytest.mark.stack
HOSTS = ("host1", "host2", "host5")


@pytest.fixture
def roots(stack: Stack) -> Iterator[dict[str, Path]]:
    """The hosts' apt roots on the full repository (a major bump and a kernel too), reset to em-tool 1.0,
    em-agent 1.0, linux-image-em 6.1.10; the demo's roots again afterwards."""
    assert stack.fleet is not None
    repo = build_repo(stack.base / "aptrepo")
    user = pwd.getpwnam(USER)
    yield {h.name: make_root(h.root / "apt", repo, (user.pw_uid, user.pw_gid)) for h in stack.fleet.hosts if h.name in HOSTS}
    stack.seed_apt()


@pytest.fixture
def res(stack: Stack) -> Iterator[Resources]:
    with Resources.from_config(str(stack.inventory_path), "development") as r:
        yield r


def dpkg(root: Path) -> dict[str, str]:
    """What dpkg says is installed in a root (read here, not through Upkeep)."""
    from sandbox.standin import dpkg_installed

    return dpkg_installed((root / "var/lib/dpkg/status").read_text())


def apt_config(stack: Stack, tmp_path: Path, **changes: Any) -> str:
    """Development updating with apt alone (the sandbox inventory has the sandbox driver beside it)."""
    data = yaml.safe_load(stack.inventory_path.read_text())
    updates = {**data["environments"]["development"]["updates"], "backup_first": False, "approvals": "hold",
               "sources": [{"manager": "apt", "root": "{root}/apt"}], "smoke_tests": []}
    return inventory_variant(stack, tmp_path / "apt.yaml", "development", updates=updates, **changes)


def test_the_driver_refreshes_plans_installs_and_rolls_back_for_real(roots: dict[str, Path], res: Resources) -> None:
    root = roots["host5"]
    apt = AptDriver(res.hosts.get("host5"), simulate_only=False, root=str(root))
    assert apt.refresh() == "package lists refreshed (apt-get update)"
    assert "not refreshed" in apt.refresh()  # younger than cache_valid_time
    plan = {u.name: u for u in apt.upgradable()}
    assert (plan["em-tool"].candidate, plan["em-tool"].kind) == ("1.2", "security")
    assert (plan["em-agent"].candidate, plan["em-agent"].kind) == ("2.0", "major")
    assert plan["linux-image-em"].kind == "kernel"
    apt.apply([plan["em-tool"]])
    assert dpkg(root)["em-tool"] == "1.2" and apt.installed(["em-tool"]) == {"em-tool": "1.2"}
    apt.rollback({"em-tool": "1.0"})
    assert dpkg(root)["em-tool"] == "1.0"  # downgraded to the exact previous version
    assert apt.cleanup() == "autoremove: nothing to remove; downloaded packages cleaned"
    assert not list((root / "var/cache/apt/archives").glob("*.deb"))


def test_sudo_refusal_names_the_sudoers_line(roots: dict[str, Path], res: Resources) -> None:
    apt = AptDriver(res.hosts.get("host5"), simulate_only=False, root=str(roots["host5"]), cache_valid_time=0,
                    become=["sudo", "-n", "-u", "root", "--"], privileged=True)
    with pytest.raises(PackageError) as err:
        apt.refresh()
    text = str(err.value)
    assert "sudo refused apt-get update" in text and "a password is required" in text
    assert "NOPASSWD" in text and "apt-get" in text and "/etc/sudoers.d/upkeep" in text


def test_a_security_run_installs_the_security_version_through_sudo(stack: Stack, roots: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    # become the login user itself: the real sudo path (env reset, -n), no privilege gained in the sandbox
    cfg = apt_config(stack, tmp_path, become={"method": "sudo", "user": USER})
    state = system_update(environment="development", config=cfg, hosts=["host5"], scope="security", return_state=True)
    assert state.is_completed(), state.message
    assert dpkg(roots["host5"]) == {**INSTALLED, "em-tool": "1.2"}  # the major and the kernel are not security updates
    report = report_of(state.state_details.flow_run_id).data
    assert "| em-tool | host5 | done |" in report and "apt: 1.0 → 1.2 from stable-security" in report
    assert "automatic: the policy applies security updates without an approval" in report  # why it went ahead
    assert "| clean-up | host5 | done |" in report and "apt: autoremove: nothing to remove; downloaded packages cleaned" in report


def test_major_and_kernel_wait_and_a_failed_check_rolls_back_for_real(stack: Stack, roots: dict[str, Path],
                                                                       tmp_path: Path) -> None:
    for h in ("host1", "host2"):
        assert dpkg(roots[h]) == INSTALLED
    standin(stack, 1, "break-version", package="em-tool", version="1.2")  # the API on host2 breaks with em-tool 1.2
    try:
        cfg = apt_config(stack, tmp_path, max_concurrency=1, max_errors=1)
        state = system_update(environment="development", config=cfg, hosts=["host1", "host2"], return_state=True)
    finally:
        standin(stack, 1, "reset")
    assert state.is_failed() and "host2: post-update checks failed" in state.message
    assert dpkg(roots["host1"]) == {**INSTALLED, "em-tool": "1.2"}  # held: the major em-agent 2.0 and the kernel
    assert dpkg(roots["host2"]) == INSTALLED  # rolled back to 1.0 for real, by apt-get --allow-downgrades
    report = report_of(state.state_details.flow_run_id).data
    assert "| em-tool | host2 | rolled back |" in report
    assert "em-agent" in report and "linux-image-em" in report and "needs approval" in report
