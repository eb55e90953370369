"""The security routines on the real stack: sshd hosts read over SSH (through real sudo where `become` says so),
the stand-in serving HTTPS with certificates made here, the monitoring store (SecantusDB) keeping findings and
approved baselines, approvals answered through Prefect's run input as the UI does."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo
import pytest
import yaml

from flows.certificates import certificates
from flows.security_audit import security_audit
from flows.security_check import security_check
from flows.security_review import security_review
from sandbox.npmregistry import FIXTURE_DEPENDENCIES
from sandbox.security import public_key
from sandbox.sshd import USER
from sandbox.stack import Stack
from sandbox.tls import install, issue, load_ca
from tests.helpers import answered, clear_security_store, findings_of, inventory_variant, report_of, slack_calls, standin

pytestmark = pytest.mark.stack
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def fresh_store(stack: Stack) -> None:
    """Each test starts with no findings and no approved baseline in the monitoring store."""
    clear_security_store(stack)


@pytest.fixture
def first_packages(stack: Stack) -> None:
    """Every host's apt root back at the first versions (em-tool 1.0, vulnerable), whatever earlier tests installed."""
    stack.seed_apt()


def security(stack: Stack, tmp_path: Path, name: str = "sec.yaml", env: str = "development", **changes: Any) -> str:
    data = yaml.safe_load(stack.inventory_path.read_text())
    sec = {**data["environments"][env]["security"], **changes}
    return inventory_variant(stack, tmp_path / name, env, security=sec)


# -- certificates -------------------------------------------------------------------------------------------------
@pytest.fixture
def tls(stack: Stack) -> Iterator[dict[str, Any]]:
    """On host1's stand-in, by SNI: a certificate 10 days from expiry (of 90: due), one with a 6-day lifetime and 5
    days left (not due: a third of its lifetime is 2 days), one valid 90 days, one for another name, one whose
    chain does not reach the CA; and a renewed one waiting in `renewed/`."""
    ca = load_ca(stack.tls_ca_dir)
    host = stack.fleet.hosts[0]
    tls_dir = host.root / "tls"
    owner = (os.stat(tls_dir).st_uid, os.stat(tls_dir).st_gid)
    cases = {
        "expiring.test": issue(ca, ["expiring.test"], NOW - timedelta(days=80), NOW + timedelta(days=10)),
        "short.test": issue(ca, ["short.test"], NOW - timedelta(days=1), NOW + timedelta(days=5)),
        "fresh.test": issue(ca, ["fresh.test"], NOW - timedelta(days=1), NOW + timedelta(days=89)),
        "wrong.test": issue(ca, ["other.test"], NOW - timedelta(days=1), NOW + timedelta(days=89)),
        "broken.test": issue(None, ["broken.test"], NOW - timedelta(days=1), NOW + timedelta(days=89)),
    }
    for name, (cert, key) in cases.items():
        install(tls_dir, name, cert, key, owner)
    cert, key = issue(ca, ["expiring.test"], NOW, NOW + timedelta(days=90))
    install(tls_dir / "renewed", "expiring.test", cert, key, owner)
    standin(stack, 0, "reload-tls")  # the stand-in reads its certificates at start and on reload
    yield {"host": host, "dir": tls_dir, "port": stack.ports["standin_tls"], "ca": str(stack.tls_ca_file)}
    for name in cases:
        for suffix in (".pem", ".key"):
            (tls_dir / f"{name}{suffix}").unlink(missing_ok=True)
            (tls_dir / "renewed" / f"{name}{suffix}").unlink(missing_ok=True)
    standin(stack, 0, "reload-tls")


def cert_checks(stack: Stack, tls: dict[str, Any], renew: list[str]) -> list[dict[str, Any]]:
    ctl = ["/usr/bin/python3", str(stack.tools / "standinctl.py"), f"http://{{address}}:{stack.ports['standin']}",
           "reload-tls"]
    base = {"host": "host1", "port": tls["port"], "ca_file": tls["ca"]}
    out = [{"name": n.split(".")[0], "server_name": n, **base} for n in ("short.test", "fresh.test", "wrong.test", "broken.test")]
    out.append({"name": "expiring", "server_name": "expiring.test", "renew": renew, "reload": ctl, **base})
    return out


RENEW = ["/bin/cp", "{root}/tls/renewed/expiring.test.pem", "{root}/tls/renewed/expiring.test.key", "{root}/tls/"]


def test_certificates_are_judged_and_a_due_one_is_renewed_reloaded_and_served(stack: Stack, tls: dict[str, Any],
                                                                              tmp_path: Path) -> None:
    cfg = security(stack, tmp_path, certificates=cert_checks(stack, tls, RENEW))
    state = certificates(environment="development", config=cfg, return_state=True)
    assert state.is_completed(), state.message
    text = report_of(state.state_details.flow_run_id).data
    assert "| certificate | expiring | done |" in text and "renewal due" in text
    assert "| renew | expiring | done |" in text and "| renewal | expiring | done |" in text
    found = findings_of(state)
    assert "certificate wrong: not valid for wrong.test (names: other.test)" in found
    assert "certificate broken: chain does not verify" in found
    assert "certificate short" not in found and "certificate fresh" not in found  # 5 of 6 days left is not due
    assert "certificate expiring" not in found  # renewed: its findings are gone with the old certificate
    # what the stand-in serves now: the renewed certificate
    from upkeep.security.certs import fetch_chain
    served = fetch_chain(tls["host"].address, tls["port"], "expiring.test", tls["ca"])
    assert served.not_after > NOW + timedelta(days=80)


def test_a_renew_command_that_changes_nothing_fails_the_run(stack: Stack, tls: dict[str, Any], tmp_path: Path) -> None:
    cfg = security(stack, tmp_path, certificates=cert_checks(stack, tls, ["/bin/true"]))
    state = certificates(environment="development", config=cfg, return_state=True)
    assert state.is_failed() and "the same certificate is still served" in state.message, state.message
    text = report_of(state.state_details.flow_run_id).data
    assert "| renewal | expiring | failed |" in text
    assert "certificate expiring: renewal due" in findings_of(state)  # still reported


# -- the audit: permissions against the approved baseline, waivers -----------------------------------------------
@pytest.fixture
def planted(stack: Stack) -> Iterator[dict[str, Path]]:
    """A SUID file and a world-writable directory without the sticky bit under host1's audit root."""
    srv = stack.fleet.hosts[0].root / "srv"
    suid, ww = srv / "bin" / "helper", srv / "upload"
    suid.write_text("#!/bin/sh\n")
    suid.chmod(0o4755)
    ww.mkdir(exist_ok=True)
    ww.chmod(0o777)
    yield {"suid": suid, "ww": ww}
    suid.unlink(missing_ok=True)
    ww.rmdir()


@pytest.mark.usefixtures("first_packages")
def test_planted_files_are_new_then_approved_into_the_baseline_then_silent(stack: Stack, planted: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    cfg = security(stack, tmp_path)
    first = security_audit(environment="development", config=cfg, approve=False, return_state=True)
    assert first.is_completed(), first.message
    found = findings_of(first)
    assert f"| high | host1 | suid: {planted['suid']} |" in found
    assert f"| medium | host1 | world-writable directory without sticky bit: {planted['ww']} |" in found
    # the vulnerable package from the feed, with its CVE and the fix (every host has em-tool 1.0)
    assert "| high | host1 | em-tool 1.0: CVE-2026-41001 | install em-tool 1.2 (security-patches) |" in found
    assert "linux-image-em" not in found and "em-agent" not in found  # fixed before / another release
    report = report_of(first.state_details.flow_run_id).data
    assert "| audit | host1 | done |" in report and "special-permission item(s)" in report

    approve = lambda: security_audit(environment="development", config=cfg, return_state=True)  # noqa: E731
    second = answered(approve, "security-audit", {"approver": "sec-carol", "approved": ["permissions:host1"]})
    assert second.is_completed(), second.message
    assert "approved by **sec-carol**: permissions:host1" in report_of(second.state_details.flow_run_id).data

    third = security_audit(environment="development", config=cfg, approve=False, return_state=True)
    found = findings_of(third)
    assert str(planted["suid"]) not in found and str(planted["ww"]) not in found  # approved: silent, not "fixed"
    assert "CVE-2026-41001" in found and "| high | host1 | em-tool 1.0: CVE-2026-41001 |" in found  # persisting
    with pymongo.MongoClient(stack.mongo_uri) as client:
        base = client["upkeep_monitoring"].security_baselines.find_one({"kind": "permissions", "host": "host1"})
    assert base["approved_by"] == "sec-carol" and f"{planted['suid']} suid" in base["items"]


def test_a_waiver_hides_a_finding_until_it_expires_then_it_returns(stack: Stack, planted: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    pattern = f"permissions:host1:{planted['suid']} suid"
    waiver = {"pattern": pattern, "reason": "vendor helper, replaced next quarter", "owner": "ops-bob"}
    live = security(stack, tmp_path, "live.yaml", waivers=[{**waiver, "expires": str(date.today() + timedelta(days=1))}])
    state = security_audit(environment="development", config=live, approve=False, return_state=True)
    found = findings_of(state)
    assert f"suid: {planted['suid']}" not in found.split("### Waivers in force")[0]
    assert f"| `{pattern}` | ops-bob | vendor helper, replaced next quarter |" in found and "| 1 |" in found
    expired = security(stack, tmp_path, "expired.yaml", waivers=[{**waiver, "expires": str(date.today() - timedelta(days=1))}])
    state = security_audit(environment="development", config=expired, approve=False, return_state=True)
    found = findings_of(state)
    assert f"| high | host1 | suid: {planted['suid']} |" in found and "### Expired waivers" in found
    report = report_of(state.state_details.flow_run_id).data
    assert f"waiver `{pattern}` (owner ops-bob) expired on" in report


def test_the_applications_dependencies_are_audited_by_npm_against_the_registrys_advisories(stack: Stack,
                                                                                           tmp_path: Path) -> None:
    stack.seed_npm(FIXTURE_DEPENDENCIES)  # em-client 1.0.0: the registry has an advisory below 1.0.1
    try:
        state = security_audit(environment="development", config=security(stack, tmp_path), approve=False,
                               return_state=True)
    finally:
        stack.seed_npm()
    assert state.is_completed(), state.message
    found = findings_of(state)
    for host in ("host1", "host2"):  # the application hosts (role api), not the others
        assert f"| high | {host} | em-client <1.0.1: em-client forwards credentials on cross-host redirects | npm audit fix |" \
            in found
        assert f"| low | {host} | @em/logfmt <=2.3.1: @em/logfmt log injection through newline characters | no fix " \
               "available yet: remove the dependency or add a waiver |" in found
    assert not [line for line in found.splitlines() if "| host3 |" in line and "em-client" in line]  # no application


@pytest.mark.usefixtures("first_packages")
def test_an_unreadable_part_is_reported_and_the_rest_still_counts(stack: Stack, tmp_path: Path) -> None:
    cfg = security(stack, tmp_path, access={"passwd": "/etc/shadow"})  # root only: the login user cannot read it
    state = security_audit(environment="development", config=cfg, approve=False, return_state=True)
    assert state.is_completed(), state.message
    found = findings_of(state)
    assert "| medium | host1 | access could not be audited on host1 |" in found
    assert "CVE-2026-41001" in found  # the other parts still read


# -- the weekly review: access approved in the UI -----------------------------------------------------------------
def test_the_access_review_is_approved_then_a_new_key_and_sudo_rule_are_reported(stack: Stack, tmp_path: Path) -> None:
    cfg = security(stack, tmp_path, become_reads=True)
    cfg = inventory_variant(stack, Path(cfg), "development", become={"method": "sudo", "user": USER})  # real sudo path
    review = lambda: security_review(environment="development", config=cfg, return_state=True)  # noqa: E731
    hosts = [h.name for h in stack.fleet.hosts]
    first = answered(review, "security-review", {"approver": "sec-carol", "approved": [f"access:{h}" for h in hosts],
                                                 "reason": "week 49"})
    assert first.is_completed(), first.message
    text = report_of(first.state_details.flow_run_id).data
    assert "approved by **sec-carol**" in text
    root = stack.fleet.hosts[1].root
    keys = root / "home" / "alice" / ".ssh" / "authorized_keys"
    before_keys, sudoers = keys.read_text(), root / "etc" / "sudoers.d" / "alice"
    keys.write_text(before_keys + public_key("mallory@somewhere") + "\n")
    sudoers.write_text("alice ALL=(ALL) NOPASSWD: ALL\n")
    os.chown(sudoers, keys.stat().st_uid, keys.stat().st_gid)
    try:
        second = answered(review, "security-review", {"approver": "sec-carol", "approved": []})
        found = findings_of(second)
        assert "access granted since the approved review: sudo " in found and "alice ALL=(ALL) NOPASSWD: ALL" in found
        assert "mallory@somewhere" in found and "| host2 |" in found
        assert "the access review was not approved" in report_of(second.state_details.flow_run_id).data
    finally:
        keys.write_text(before_keys)
        sudoers.unlink()


@pytest.mark.usefixtures("first_packages")
def test_the_daily_check_lists_pending_security_updates_and_notifies_critical_ones(stack: Stack, tmp_path: Path) -> None:
    cfg = security(stack, tmp_path, notify_at="high")
    calls = len(slack_calls(stack))
    state = security_check(environment="development", config=cfg, return_state=True)
    assert state.is_completed(), state.message
    found = findings_of(state)
    assert "security update em-tool 1.0 → 1.2 (CVE-2026-41001)" in found
    said = [c for c in slack_calls(stack)[calls:] if "security-check" in str(c)]
    assert said and "new high-or-worse finding(s)" in str(said[-1])
    again = security_check(environment="development", config=cfg, return_state=True)
    assert "1 persisting" in report_of(again.state_details.flow_run_id).data or "persisting" in findings_of(again)


def test_the_review_reads_the_weeks_security_events_from_the_log_analysis_summaries(stack: Stack, tmp_path: Path) -> None:
    """Yesterday's summary in the log archive (as log-analysis stores it) carries a burst and a new admin source."""
    from upkeep.resources import Resources

    day = (datetime.now(UTC) - timedelta(days=1)).date()
    summary = {"version": 1, "day": day.isoformat(), "security": {
        "auth_failures": {"203.0.113.9": 45}, "suspicious": [],
        "bursts": [{"ip": "203.0.113.9", "responses": 120, "start": f"{day}T03:00:00Z", "end": f"{day}T03:01:00Z",
                    "statuses": "401"}],
        "admin_new": {"192.0.2.50": 14}}}
    with Resources.from_config(str(stack.inventory_path), "development") as res:
        archive = res.log_archive()
        assert archive is not None
        archive.ensure_bucket()
        key = archive.analysis_key(day, "summary-json.json")
        archive.s3.put_object(Bucket=archive.bucket, Key=key, Body=json.dumps(summary).encode())
    try:
        state = answered(lambda: security_review(environment="development", return_state=True), "security-review",
                         {"approver": "sec-carol", "approved": []})
    finally:
        with Resources.from_config(str(stack.inventory_path), "development") as res:
            res.log_archive().s3.delete_object(Bucket=archive.bucket, Key=key)  # type: ignore[union-attr]
    assert state.is_completed(), state.message
    found = findings_of(state)
    assert f"| high | development | 203.0.113.9: 120 denied responses (401) on {day} |" in found
    assert f"| medium | development | 203.0.113.9: 45 failed logins on {day} |" in found
    assert f"| medium | development | new source 192.0.2.50 on admin paths on {day}: 14 requests |" in found
    assert "log analysis summaries missing for" in found and day.isoformat() not in found.split("missing for")[1].split("\n")[0]


def test_a_certificate_file_on_a_host_is_judged_too(stack: Stack, tmp_path: Path) -> None:
    base = {"host": "host1", "ca_file": str(stack.tls_ca_file)}
    cfg = security(stack, tmp_path, certificates=[
        {"name": "api-file", "file": "{root}/tls/api.upkeep.test.pem", "server_name": "api.upkeep.test", **base},
        {"name": "api-file-wrong-name", "file": "{root}/tls/api.upkeep.test.pem", "server_name": "www.example.test", **base},
        {"name": "missing", "file": "{root}/tls/nothing.pem", "server_name": "api.upkeep.test", **base}])
    state = security_check(environment="development", config=cfg, return_state=True)
    assert state.is_completed(), state.message
    text = report_of(state.state_details.flow_run_id).data
    root = stack.fleet.hosts[0].root
    assert "| certificate | api-file | done |" in text and f"host1:{root}/tls/api.upkeep.test.pem: ok; until" in text
    found = findings_of(state)
    assert "certificate api-file-wrong-name: not valid for www.example.test (names: api.upkeep.test)" in found
    assert "| high | host1 | certificate missing: not read |" in found
    assert "certificate api-file:" not in found
