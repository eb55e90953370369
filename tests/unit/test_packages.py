"""Tests of upkeep.packages: parsers on captured (real and synthetic) outputs, the update policy,
and the drivers (apt read-only on this machine, npm on a throwaway project, the sandbox)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from upkeep.errors import CommandError
from upkeep.hosts.base import CommandResult
from upkeep.hosts.local import LocalHost
from upkeep.packages import (
    AptDriver,
    NpmDriver,
    PackageDriver,
    PackageError,
    PackageUpdate,
    SandboxDriver,
    UpdatePlan,
    apt_kind,
    classify_semver,
    is_kernel,
    needs_approval,
    parse_apt_get_simulate,
    parse_apt_list_upgradable,
    parse_dpkg_query,
    parse_npm_ls,
    parse_npm_outdated,
    seed,
    set_fault,
    snapshot,
    split_plan,
)
from upkeep.packages.npm import describe_prune

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "packages"


def fixture(name: str) -> str:
    return (FIX / name).read_text()


def upd(manager: str, kind: str, name: str = "pkg", current: str = "1.0.0", candidate: str = "1.0.1") -> PackageUpdate:
    return PackageUpdate(manager, name, current, candidate, kind)  # type: ignore[arg-type]  # plain str for the Literals


class FakeHost:
    """A Host that records argv and answers with canned results (never touches the machine)."""

    def __init__(self, answer: Callable[[list[str]], tuple[int, str, str]] | None = None, name: str = "fake1") -> None:
        self.name = name
        self.calls: list[list[str]] = []
        self.answer = answer or (lambda argv: (0, "", ""))

    def run(self, argv: Sequence[str], *, timeout: float | None = None, check: bool = True,
            stdin: bytes | None = None) -> CommandResult:
        args = list(argv)
        self.calls.append(args)
        code, out, err = self.answer(args)
        if check and code:
            raise CommandError(self.name, args, code, err)
        return CommandResult(self.name, args, code, out, err, 0.0)


class ReadOnlyLocalHost(LocalHost):
    """LocalHost that fails the test if asked to run anything that could change packages."""

    def run(self, argv: Sequence[str], **kw: Any) -> CommandResult:
        args = [str(a) for a in argv]
        cmd = [a for a in args if a != "env" and "=" not in a][:2]
        read_only = cmd in (["apt", "list"], ["apt-get", "-s"]) or cmd[:1] == ["dpkg-query"]
        assert read_only, f"a command that may change packages was run: {args}"
        return super().run(args, **kw)


# ---------------------------------------------------------------- apt parsers (real outputs)

def test_apt_list_real_fixture() -> None:
    text = fixture("apt-list-upgradable.txt")
    updates = parse_apt_list_upgradable(text)
    assert len(updates) == sum("[upgradable from:" in line for line in text.splitlines()) == 120
    by = {u.name: u for u in updates}
    assert len(by) == len(updates)
    o = by["openssl"]
    assert (o.manager, o.current, o.candidate, o.kind, o.source) == (
        "apt", "3.0.19-1~deb12u2", "3.0.22-1~deb12u2", "security", "oldstable-security")
    assert o.item_id == "apt:openssl" and not o.needs_approval
    assert by["bash"].kind == "other" and by["bash"].current == "5.2.15-2+b8"
    assert by["login"].current == "1:4.13+dfsg1-1+deb12u1" and by["login"].kind == "other"
    # linux-libc-dev / linux-perf are userland, not kernels: plain security updates
    assert by["linux-libc-dev"].kind == by["linux-perf"].kind == "security"
    assert {u.kind for u in updates} == {"security", "other"}
    assert sum(u.kind == "security" for u in updates) == 74


def test_apt_get_simulate_real_fixtures() -> None:
    planned = parse_apt_get_simulate(fixture("apt-get-simulate-upgrade.txt"))
    listed = parse_apt_list_upgradable(fixture("apt-list-upgradable.txt"))
    assert {u.name for u in planned} == {u.name for u in listed}  # captured together
    tz = next(u for u in planned if u.name == "tzdata")
    assert (tz.current, tz.candidate, tz.source, tz.kind) == (
        "2025b-0+deb12u2", "2026f-0+deb12u1", "Debian-Security:12/oldstable-security", "security")
    pulls = parse_apt_get_simulate(fixture("apt-get-simulate-install-openssl.txt"))
    assert [u.name for u in pulls] == ["libssl-dev", "libssl3", "openssl"]


def test_dpkg_query_real_fixture() -> None:
    assert parse_dpkg_query(fixture("dpkg-query.txt")) == {
        "bash": "5.2.15-2+b8", "libc6": "2.36-9+deb12u14", "openssl": "3.0.19-1~deb12u2"}


# ---------------------------------------------------------------- apt parsers (synthetic outputs)

def test_apt_list_synthetic_fixture() -> None:
    updates = parse_apt_list_upgradable(fixture("apt-list-upgradable-synthetic.txt"))
    kinds = {u.name: u.kind for u in updates}
    assert kinds == {
        "linux-image-amd64": "kernel", "linux-headers-amd64": "kernel", "openssl": "security",
        "libc6": "security", "nodejs": "major", "postgresql-client-common": "major", "login": "other",
        "libfoo1": "major", "tzdata": "other", "linux-libc-dev": "security", "openssh-server": "security",
        "linux-generic": "kernel", "linux-modules-5.15.0-125-generic": "kernel",
    }
    by = {u.name: u for u in updates}
    assert by["linux-image-amd64"].needs_approval and by["nodejs"].needs_approval
    assert by["openssl"].candidate == "3.0.15-1~deb12u1" and by["openssl"].current == "3.0.14-1~deb12u2"
    assert by["libc6"].source == "stable,stable-security"
    plan = UpdatePlan("h1", updates)
    assert {u.name for u in plan.needs_approval} == {
        "linux-image-amd64", "linux-headers-amd64", "nodejs", "postgresql-client-common", "libfoo1",
        "linux-generic", "linux-modules-5.15.0-125-generic"}
    assert len(plan.automatic) + len(plan.needs_approval) == len(updates)


def test_apt_get_simulate_synthetic_fixture() -> None:
    planned = parse_apt_get_simulate(fixture("apt-get-simulate-synthetic.txt"))
    assert [u.name for u in planned] == ["linux-image-6.1.0-28-amd64", "linux-image-amd64", "libssl3", "openssl"]
    new = planned[0]
    assert new.current == "" and new.candidate == "6.1.119-1" and new.kind == "kernel"
    assert planned[2].source == "Debian:12.8/stable, Debian-Security:12/stable-security"
    assert planned[2].kind == "security"


def test_dpkg_query_with_status_column() -> None:
    assert parse_dpkg_query(fixture("dpkg-query-status-synthetic.txt")) == {
        "bash": "5.2.15-2+b7", "libc6": "2.36-9+deb12u8", "held-pkg": "2.0-1"}
    assert parse_dpkg_query("") == {} and parse_dpkg_query("garbage line\n") == {}


# ---------------------------------------------------------------- policy

@pytest.mark.parametrize(("current", "candidate", "kind"), [
    ("1.2.3", "1.2.4", "patch"), ("1.2.3", "1.3.0", "minor"), ("1.2.3", "2.0.0", "major"),
    ("4.17.1", "5.3.0", "major"), ("4.17.20", "4.18.1", "minor"), ("2.1.2", "2.1.3", "patch"),
    ("^1.2.3", "1.4.0", "minor"), ("~1.2.3", "1.2.9", "patch"), ("v1.0.0", "v2.0.0", "major"), ("=1.0.0", "1.0.1", "patch"),
    ("0.2.3", "0.3.0", "major"), ("^0.2.3", "0.2.9", "patch"), ("0.14.9", "0.15.0", "major"),
    ("0.0.3", "0.0.4", "major"), ("0.9.0", "1.0.0", "major"),
    ("1.2.3", "1.3.0-beta.1", "other"), ("1.2.3", "2.0.0-rc.1", "major"), ("1.2.3-rc.1", "1.2.3", "patch"),
    ("1.2.3-alpha.1", "1.2.3-alpha.2", "other"), ("1.2.3-rc.1", "1.2.4", "patch"),
    ("1.2.3", "1.2.3", "other"), ("2.0.0", "1.9.9", "other"), ("1.2.3", "1.2.3+build.5", "other"),
    ("1.2.3", "git+https://example.org/x.git", "other"), ("4.x", "5.0.0", "other"), ("^4", "4.1.0", "minor"),
])
def test_classify_semver(current: str, candidate: str, kind: str) -> None:
    assert classify_semver(current, candidate) == kind


@pytest.mark.parametrize(("name", "kernel"), [
    ("linux-image-amd64", True), ("linux-image-6.1.0-28-amd64", True), ("linux-headers-amd64", True),
    ("linux-modules-5.15.0-125-generic", True), ("linux-modules-extra-5.15.0-125-generic", True),
    ("linux-generic", True), ("linux-generic-hwe-22.04", True), ("linux-image-generic", True),
    ("linux-signed-image-amd64", True), ("linux-aws", True), ("linux", True), ("linux-lts", True),
    ("kernel", True), ("kernel-core", True), ("kernel-modules-extra", True),
    ("linux-libc-dev", False), ("linux-perf", False), ("linux-tools-common", False), ("linux-firmware", False),
    ("linux-base", False), ("kernel-headers", False), ("libkernelfoo", False), ("openssl", False),
    # Ubuntu flavours and driver modules are kernels too; their tools are not
    ("linux-gke", True), ("linux-nvidia", True), ("linux-ibm", True), ("linux-intel-iotg", True),
    ("linux-restricted-modules-6.8.0-45-generic", True), ("linux-objects-nvidia-535-6.8.0-45-generic", True),
    ("linux-image-unsigned-6.8.0-45-generic", True), ("linux-oem-6.8", True),
    ("linux-cloud-tools-common", False), ("linux-aws-tools-6.8.0-1015", False), ("linux-hwe-6.8-tools-6.8.0-45", False),
    ("linux-kbuild-6.1", False), ("linux-compiler-gcc-12-x86", False), ("linux-doc", False), ("linux-source-6.1", False),
    ("linux-libc-dev-amd64-cross", False),
])
def test_is_kernel(name: str, kernel: bool) -> None:
    assert is_kernel(name) is kernel


@pytest.mark.parametrize(("name", "current", "candidate", "origin", "kind"), [
    ("linux-image-amd64", "6.1.115-1", "6.1.119-1", "stable-security", "kernel"),  # kernel beats security
    ("linux-image-amd64", "6.1.115-1", "6.1.119-1", "stable", "kernel"),
    ("openssl", "3.0.14-1~deb12u2", "3.0.15-1~deb12u1", "stable-security", "security"),
    ("openssl", "3.0.14-1~deb12u2", "4.0.0-1~deb12u1", "bookworm-security", "security"),
    ("libc6", "2.36-9+deb12u8", "2.36-9+deb12u9", "stable,stable-security", "security"),
    ("tzdata", "2025b-0+deb12u2", "2026f-0+deb12u1", "Debian-Security:12/oldstable-security", "security"),
    ("openssl", "3.0.14-1~deb12u2", "3.0.15-1~deb12u1", "stable-updates", "other"),
    ("openssl", "3.0.14-1~deb12u2", "4.0.0-1", "stable", "major"),
    ("login", "1:4.13+dfsg1-1+deb12u1", "1:4.13+dfsg1-1+deb12u2", "stable", "other"),
    ("login", "1:4.13-1", "1:5.0-1", "stable", "major"),  # epoch kept, upstream major changes
    ("libfoo1", "1:3.5-2", "2:1.0-1", "stable", "major"),  # epoch change
    ("libfoo1", "3.5-2", "1:3.6-1", "stable", "major"),  # epoch appears
    ("bash", "5.2.15-2+b8", "5.2.15-2+b13", "oldstable", "other"),
    ("nodejs", "20.18.0-1nodesource1", "22.11.0-1nodesource1", "nodistro", "major"),
    ("postgresql-client-common", "248.pgdg120+1", "262.pgdg120+1", "bookworm-pgdg", "major"),
    ("python3-xmltodict", "0.13.0-1", "0.13.0-1.1~deb12u1", "oldstable", "other"),
    ("weird", "abc-1", "xyz-1", "stable", "other"),
])
def test_apt_kind(name: str, current: str, candidate: str, origin: str, kind: str) -> None:
    assert apt_kind(name, current, candidate, origin) == kind


@pytest.mark.parametrize(("manager", "kind", "approval"), [
    ("apt", "security", False), ("apt", "other", False), ("apt", "patch", False), ("apt", "minor", False),
    ("apt", "major", True), ("apt", "kernel", True), ("sandbox", "kernel", True), ("sandbox", "security", False),
    ("npm", "patch", False), ("npm", "minor", False), ("npm", "major", True), ("npm", "other", True),
])
def test_needs_approval(manager: str, kind: str, approval: bool) -> None:
    u = upd(manager, kind)
    assert needs_approval(u) is approval and u.needs_approval is approval


def test_split_plan_with_approvals() -> None:
    kernel = PackageUpdate("apt", "linux-image-amd64", "6.1.115-1", "6.1.119-1", "kernel", "stable-security")
    sec = PackageUpdate("apt", "openssl", "3.0.14-1", "3.0.15-1", "security", "stable-security")
    express = PackageUpdate("npm", "express", "4.17.1", "5.3.0", "major")
    lodash = PackageUpdate("npm", "lodash", "4.17.20", "4.18.1", "minor")
    everything = [kernel, sec, express, lodash]

    to_apply, held = split_plan(everything, [])
    assert to_apply == [sec, lodash]
    assert [h.update for h in held] == [kernel, express]
    assert "kernel" in held[0].reason and "'apt:linux-image-amd64'" in held[0].reason
    assert "major" in held[1].reason and "4.17.1 → 5.3.0" in held[1].reason

    to_apply, held = split_plan(everything, {"apt:linux-image-amd64", "npm:express=5.3.0"})
    assert to_apply == everything and held == []
    # a versioned approval is for that candidate only
    to_apply, held = split_plan(everything, ["npm:express=5.2.0", "apt:linux-image-amd64=6.1.115-1"])
    assert to_apply == [sec, lodash] and len(held) == 2
    # approving the wrong manager's id approves nothing
    assert split_plan([express], ["apt:express"])[0] == []


def test_model_checks() -> None:
    with pytest.raises(ValueError, match="unknown update kind"):
        upd("apt", "critical")
    u = upd("apt", "kernel", name="linux-image-amd64", current="6.1.115-1", candidate="6.1.119-1")
    assert u.versioned_id == "apt:linux-image-amd64=6.1.119-1"
    assert u.describe() == "apt:linux-image-amd64 6.1.115-1 → 6.1.119-1 (kernel)"
    assert UpdatePlan("h").updates == [] and UpdatePlan("h", [u]).item_ids == ["apt:linux-image-amd64"]
    assert str(PackageError("boom", host="web1")) == "web1: boom"


# ---------------------------------------------------------------- AptDriver

needs_apt = pytest.mark.skipif(not (shutil.which("apt") and shutil.which("dpkg-query")), reason="not a Debian/Ubuntu host")


@needs_apt
def test_apt_driver_on_this_machine_read_only() -> None:
    host = ReadOnlyLocalHost()
    driver = AptDriver(host)
    assert isinstance(driver, PackageDriver) and driver.simulate_only
    updates = driver.upgradable()
    assert isinstance(updates, list) and all(u.manager == "apt" for u in updates)
    have = driver.installed(["bash", "dpkg", "no-such-package-upkeep"])
    assert set(have) == {"bash", "dpkg"}
    assert len(snapshot(driver)) > 10
    assert driver.simulate([]) == []
    if updates:
        assert updates[0].name in driver.simulate([updates[0].name])
    with pytest.raises(PackageError, match="simulate_only"):
        driver.apply(updates[:1] or [upd("apt", "security", name="bash")])
    with pytest.raises(PackageError, match="simulate_only"):
        driver.rollback({"bash": have["bash"]})


def test_apt_driver_commands() -> None:
    host = FakeHost(lambda argv: (0, "Listing...\nbash/stable 5.2-2 amd64 [upgradable from: 5.2-1]\n", ""))
    driver = AptDriver(host, simulate_only=False)
    [bash] = driver.upgradable()
    assert host.calls[-1] == ["env", "LC_ALL=C", "apt", "list", "--upgradable"]
    driver.apply([bash])
    argv = host.calls[-1]
    assert argv[:3] == ["env", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"]
    assert argv[3:7] == ["apt-get", "install", "-y", "-q"] and "--only-upgrade" in argv
    assert argv[-1] == "bash=5.2-2" and "Dpkg::Options::=--force-confold" in argv
    driver.rollback({"bash": "5.2-1"})
    assert "--allow-downgrades" in host.calls[-1] and host.calls[-1][-1] == "bash=5.2-1"
    driver.simulate(["openssl", "libc6:i386"])
    assert host.calls[-1] == ["env", "LC_ALL=C", "apt-get", "-s", "install", "--only-upgrade", "openssl", "libc6:i386"]
    driver.installed(["bash"])
    assert host.calls[-1][2:5] == ["dpkg-query", "-W", "-f"] and host.calls[-1][-1] == "bash"
    n = len(host.calls)
    driver.apply([])
    assert len(host.calls) == n  # nothing to do, nothing run
    with pytest.raises(PackageError, match="invalid package name"):
        driver.apply([upd("apt", "other", name="-oAPT::Foo=1")])
    with pytest.raises(PackageError, match="invalid version"):
        driver.rollback({"bash": "1.0 --reinstall"})
    with pytest.raises(PackageError, match="cannot apply npm:lodash"):
        driver.apply([upd("npm", "minor", name="lodash")])
    assert len(host.calls) == n


def test_apt_driver_failures() -> None:
    def answer(argv: list[str]) -> tuple[int, str, str]:
        if "dpkg-query" in argv:  # some names unknown: exit 1, the others still printed
            return 1, "bash\t5.2-1\tii \n", "dpkg-query: no packages found matching nope\n"
        return 100, "", "E: Unable to locate package nope\n"

    driver = AptDriver(FakeHost(answer, name="web3"), simulate_only=False)
    assert driver.installed(["bash", "nope"]) == {"bash": "5.2-1"}
    with pytest.raises(PackageError, match=r"web3: apt-get -s install failed \(exit 100\).*Unable to locate"):
        driver.simulate(["nope"])
    with pytest.raises(PackageError, match="web3: apt-get install"):
        driver.apply([upd("apt", "security", name="nope")])


# ---------------------------------------------------------------- npm

def test_npm_outdated_real_fixture() -> None:
    updates = parse_npm_outdated(fixture("npm-outdated.json"))
    kinds = {u.name: (u.current, u.candidate, u.kind) for u in updates}
    assert kinds == {
        "express": ("4.17.1", "5.3.0", "major"), "left-pad": ("1.2.0", "1.3.0", "minor"),
        "lodash": ("4.17.20", "4.18.1", "minor"), "ms": ("2.1.2", "2.1.3", "patch"),
        "semver": ("6.3.2", "7.8.6", "major"), "uuid": ("8.3.2", "14.0.3", "major"),
    }
    assert all(u.manager == "npm" and u.source == "upkeep-npm-fixture" for u in updates)
    to_apply, held = split_plan(updates)
    assert {u.name for u in to_apply} == {"left-pad", "lodash", "ms"}
    assert {h.update.name for h in held} == {"express", "semver", "uuid"}


def test_npm_outdated_synthetic_fixture() -> None:
    kinds = {u.name: u.kind for u in parse_npm_outdated(fixture("npm-outdated-synthetic.json"))}
    assert kinds == {"react": "major", "tiny-lib": "major", "zero-patch": "patch",
                     "@scope/widget": "other", "multi": "patch"}
    assert parse_npm_outdated("") == [] and parse_npm_outdated("{}\n") == []
    with pytest.raises(PackageError, match="E404"):
        parse_npm_outdated('{"error": {"code": "E404", "summary": "Not Found"}}')
    with pytest.raises(PackageError, match="not JSON"):
        parse_npm_outdated("npm ERR! oops")


def test_npm_ls_fixture() -> None:
    assert parse_npm_ls(fixture("npm-ls.json")) == {
        "express": "4.17.1", "left-pad": "1.2.0", "lodash": "4.17.20", "ms": "2.1.2", "semver": "6.3.2", "uuid": "8.3.2"}
    listing = '{"dependencies": {"a": {"missing": true, "required": "1.0.0"}, "b": {"version": "2.0.0"}}}'
    assert parse_npm_ls(listing) == {"b": "2.0.0"}


def test_npm_prune_is_described_for_the_report() -> None:
    assert describe_prune("\nup to date in 825ms\n") == "nothing extraneous" == describe_prune("")
    assert describe_prune("\nremoved 2 packages in 1.2s\n") == "removed 2 packages"


def test_npm_driver_commands() -> None:
    outdated = fixture("npm-outdated.json")
    host = FakeHost(lambda argv: (1, outdated, "") if "outdated" in argv else (0, "https://npm.example/\n", "")
                    if "config" in argv else (0, fixture("npm-ls.json"), ""))
    driver = NpmDriver(host, "/srv/app")
    assert isinstance(driver, PackageDriver)
    updates = driver.outdated()  # exit code 1 means "something is outdated", not an error
    assert host.calls[-2] == ["npm", "config", "get", "registry", "--prefix", "/srv/app"]
    assert {u.source for u in updates} == {"registry https://npm.example/"}  # where the versions come from
    assert host.calls[-1] == ["npm", "outdated", "--json", "--prefix", "/srv/app"] and len(updates) == 6
    assert driver.installed(["ms", "nope"]) == {"ms": "2.1.2"}
    assert host.calls[-1] == ["npm", "ls", "--json", "--depth=0", "--prefix", "/srv/app"]
    ms = next(u for u in updates if u.name == "ms")
    mark = len(host.calls)
    driver.apply([ms, PackageUpdate("npm", "@scope/widget", "2.1.0", "2.1.1", "patch")])
    saved = "/srv/app/.upkeep-rollback"
    assert host.calls[mark:] == [  # the manifests saved first: what a rollback restores
        ["test", "-f", "/srv/app/package-lock.json"], ["mkdir", "-p", "--", saved],
        ["rm", "-f", "--", f"{saved}/package.json", f"{saved}/package-lock.json"],
        ["cp", "-p", "--", "/srv/app/package.json", "/srv/app/package-lock.json", f"{saved}/"],
        ["npm", "install", "--save-exact", "--no-audit", "--no-fund", "--prefix", "/srv/app", "ms@2.1.3", "@scope/widget@2.1.1"]]
    mark = len(host.calls)
    driver.rollback({"ms": "2.1.2"})  # the saved lockfile brings ms 2.1.2 back (npm ls says so): nothing else to do
    assert host.calls[mark:] == [
        ["test", "-f", f"{saved}/package-lock.json"],
        ["cp", "-p", "--", f"{saved}/package.json", f"{saved}/package-lock.json", "/srv/app/"],
        ["npm", "ci", "--no-audit", "--no-fund", "--prefix", "/srv/app"],
        ["npm", "ls", "--json", "--depth=0", "--prefix", "/srv/app"]]
    nothing_saved = FakeHost(lambda argv: (1, "", "") if argv[0] == "test" else (0, fixture("npm-ls.json"), ""))
    NpmDriver(nothing_saved, "/srv/app").rollback({"ms": "2.1.1"})  # no lockfile saved: the exact version, by name
    assert nothing_saved.calls[-1][-1] == "ms@2.1.1" and not any("ci" in c for c in nothing_saved.calls)
    with pytest.raises(PackageError, match="invalid npm package name"):
        driver.apply([upd("npm", "patch", name="--global")])
    with pytest.raises(PackageError, match="invalid npm version"):
        driver.rollback({"ms": "latest; rm -rf /"})
    with pytest.raises(PackageError, match="invalid npm app_dir"):
        NpmDriver(host, "--global")
    broken = NpmDriver(FakeHost(lambda argv: (0, "https://npm.example/", "") if "config" in argv
                                else (254, "", "npm error code ENOENT"), name="app2"), "/srv/app")
    with pytest.raises(PackageError, match="app2: npm outdated failed"):
        broken.outdated()


# ---------------------------------------------------------------- SandboxDriver

INSTALLED = {"openssl": "3.0.14-1", "linux-image-amd64": "6.1.115-1", "curl": "7.88.1-10", "vim": "9.0"}
AVAILABLE = {"openssl": {"version": "3.0.15-1", "kind": "security"},
             "linux-image-amd64": {"version": "6.1.119-1", "kind": "kernel"},
             "curl": "7.88.1-11", "vim": {"version": "9.0", "kind": "other"},
             "not-installed": {"version": "1.0", "kind": "other"}}


@pytest.fixture()
def sandbox(tmp_path: Path) -> SandboxDriver:
    host = LocalHost("sandbox1")
    seed(host, str(tmp_path), INSTALLED, AVAILABLE)
    return SandboxDriver(host, str(tmp_path))


def test_sandbox_apply_and_rollback(sandbox: SandboxDriver, tmp_path: Path) -> None:
    assert isinstance(sandbox, PackageDriver)
    updates = sandbox.upgradable()
    assert [(u.name, u.candidate, u.kind) for u in updates] == [
        ("curl", "7.88.1-11", "other"), ("linux-image-amd64", "6.1.119-1", "kernel"), ("openssl", "3.0.15-1", "security")]
    plan = UpdatePlan("sandbox1", updates)
    assert [u.name for u in plan.needs_approval] == ["linux-image-amd64"]
    before = snapshot(sandbox)
    assert before == INSTALLED
    sandbox.apply(plan.automatic)
    assert sandbox.installed() == {**INSTALLED, "curl": "7.88.1-11", "openssl": "3.0.15-1"}
    assert sandbox.installed(["openssl"]) == {"openssl": "3.0.15-1"}
    assert json.loads((tmp_path / "packages" / "installed.json").read_text())["openssl"] == "3.0.15-1"
    assert [u.name for u in sandbox.upgradable()] == ["linux-image-amd64"]
    sandbox.rollback(before)
    assert sandbox.installed() == INSTALLED


def test_sandbox_fault_injection(sandbox: SandboxDriver, tmp_path: Path) -> None:
    updates = sandbox.upgradable()
    set_fault(sandbox.host, str(tmp_path), "apply")
    assert (tmp_path / "packages" / "fail-apply").exists()
    with pytest.raises(PackageError, match="sandbox1") as exc:
        sandbox.apply(updates)
    assert exc.value.host == "sandbox1"
    assert sandbox.installed() == INSTALLED  # all or nothing
    set_fault(sandbox.host, str(tmp_path), "apply", enabled=False)
    sandbox.apply(updates)
    set_fault(sandbox.host, str(tmp_path), "rollback")
    with pytest.raises(PackageError, match="rollback failed on host sandbox1"):
        sandbox.rollback(INSTALLED)
    seed(sandbox.host, str(tmp_path), INSTALLED, AVAILABLE)  # reseeding clears faults
    sandbox.rollback(INSTALLED)
    assert sandbox.installed() == INSTALLED
    with pytest.raises(ValueError):
        set_fault(sandbox.host, str(tmp_path), "upgrade")


def test_sandbox_hold_makes_apply_wait_before_changing_anything(sandbox: SandboxDriver, tmp_path: Path) -> None:
    import threading

    updates = sandbox.upgradable()
    set_fault(sandbox.host, str(tmp_path), "apply", kind="hold")
    applying = threading.Thread(target=sandbox.apply, args=(updates,), daemon=True)
    applying.start()
    holding = tmp_path / "packages" / "holding-apply"
    deadline = time.monotonic() + 10
    while not holding.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holding.exists() and applying.is_alive() and sandbox.installed() == INSTALLED  # waiting, nothing changed
    set_fault(sandbox.host, str(tmp_path), "apply", enabled=False, kind="hold")
    applying.join(10)
    assert not applying.is_alive() and not holding.exists() and sandbox.installed() != INSTALLED
    with pytest.raises(ValueError, match="hold-rollback"):
        set_fault(sandbox.host, str(tmp_path), "rollback", kind="hold")


def test_sandbox_as_npm_and_bad_data(tmp_path: Path) -> None:
    host = LocalHost("sandbox2")
    seed(host, str(tmp_path), {"express": "4.17.1", "lodash": "4.17.20"}, {"express": "5.0.0", "lodash": "4.18.1"})
    driver = SandboxDriver(host, str(tmp_path), manager="npm")
    to_apply, held = split_plan(driver.upgradable())
    assert [u.item_id for u in to_apply] == ["npm:lodash"] and [h.update.item_id for h in held] == ["npm:express"]
    with pytest.raises(PackageError, match="cannot apply apt:lodash"):
        driver.apply([upd("apt", "minor", name="lodash")])
    seed(host, str(tmp_path), {"a": "1"}, {"a": {"version": "2", "kind": "urgent"}})
    with pytest.raises(PackageError, match="unknown kind 'urgent'"):
        driver.upgradable()
    (tmp_path / "packages" / "installed.json").write_text("[1, 2]")
    with pytest.raises(PackageError, match="JSON object"):
        driver.installed()


def test_a_security_run_plans_security_fixes_kernels_from_a_security_suite_included() -> None:
    from upkeep.packages import in_scope

    kernel = PackageUpdate("apt", "linux-image-amd64", "6.1.115-1", "6.1.119-1", "kernel", "bookworm-security")
    point_kernel = PackageUpdate("apt", "linux-image-amd64", "6.1.115-1", "6.1.119-1", "kernel", "bookworm")
    sec = PackageUpdate("apt", "openssl", "3.0.14-1", "3.0.15-1", "security", "stable-security")
    sandbox_sec = PackageUpdate("sandbox", "openssl", "3.0.14-1", "3.0.15-1", "security")
    minor = PackageUpdate("npm", "express", "4.17.1", "4.18.0", "minor", "npm")
    everything = [kernel, point_kernel, sec, sandbox_sec, minor]
    assert in_scope(everything, "security") == [kernel, sec, sandbox_sec]
    assert in_scope(everything, "all") == everything
    assert kernel.needs_approval  # in scope, still waits for its approval
    with pytest.raises(ValueError, match="unknown update scope 'Security'"):
        in_scope(everything, "Security")  # type: ignore[arg-type]  # an invalid scope, on purpose


def test_an_approval_request_lists_every_move_of_an_item_and_accepts_versioned_ids() -> None:
    from upkeep.packages import approval_request

    k1 = PackageUpdate("apt", "linux-image-amd64", "6.1.115-1", "6.1.119-1", "kernel", "bookworm-security")
    k2 = PackageUpdate("apt", "linux-image-amd64", "6.1.112-1", "6.1.119-1", "kernel", "bookworm-security")
    ssl = PackageUpdate("apt", "openssl", "3.0.14-1", "3.0.15-1", "security", "bookworm-security")
    items, valid = approval_request({"web1": [k1, ssl], "web2": [k1], "web3": [k2]})
    assert items == {"apt:linux-image-amd64": "apt:linux-image-amd64 6.1.112-1 → 6.1.119-1 (kernel) on web3; "
                                              "apt:linux-image-amd64 6.1.115-1 → 6.1.119-1 (kernel) on web1, web2"}
    assert valid == {"apt:linux-image-amd64", "apt:linux-image-amd64=6.1.119-1"}  # openssl needs no approval
    to_apply, held = split_plan([k1, ssl], ["apt:linux-image-amd64=6.1.119-1"])
    assert to_apply == [k1, ssl] and not held


def test_npm_wanted_goes_ahead_while_a_major_latest_waits_for_approval() -> None:
    text = json.dumps({"express": {"current": "4.17.1", "wanted": "4.21.2", "latest": "5.1.0", "dependent": "app"},
                       "ms": {"current": "2.1.2", "wanted": "2.1.3", "latest": "2.1.3", "dependent": "app"}})
    updates = parse_npm_outdated(text)
    assert [(u.name, u.candidate, u.kind) for u in updates] == [
        ("express", "4.21.2", "minor"), ("express", "5.1.0", "major"), ("ms", "2.1.3", "patch")]
    to_apply, held = split_plan(updates)
    assert [(u.name, u.candidate) for u in to_apply] == [("express", "4.21.2"), ("ms", "2.1.3")]
    assert [(h.update.name, h.update.candidate) for h in held] == [("express", "5.1.0")]
    to_apply, held = split_plan(updates, ["npm:express"])  # the major approved: only it is applied
    assert [(u.name, u.candidate) for u in to_apply] == [("express", "5.1.0"), ("ms", "2.1.3")] and not held

