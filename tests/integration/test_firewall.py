"""Firewall review on a real nftables ruleset, loaded in a network namespace this test makes (the machine's own
firewall untouched): the same ruleset reloaded (new handles, counters) is no finding; a changed rule is."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from upkeep.security.firewall import firewall_findings, normalise_nft

RULESET = """table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    tcp dport 22 accept
    tcp dport { 80, 443 } counter accept
  }
}
"""


@pytest.fixture
def netns() -> Iterator[str]:
    if not shutil.which("nft") or not shutil.which("ip"):
        pytest.skip("nftables / iproute2 not installed (bash sandbox/setup.sh installs them)")
    name = f"upkeep-fw-{uuid.uuid4().hex[:8]}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot create a network namespace here (needs root)")
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


def nft(ns: str, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "nft", *args], input=stdin, capture_output=True, text=True,
                          check=True).stdout


def handles(listing: str) -> set[str]:
    return {line.rsplit("# handle ", 1)[1].strip() for line in listing.splitlines() if "accept # handle" in line}


def load(ns: str, ruleset: str) -> list[str]:
    nft(ns, "flush", "ruleset")
    nft(ns, "-f", "-", stdin=ruleset)
    return normalise_nft(nft(ns, "-j", "list", "ruleset"))


def test_a_changed_rule_is_reported_and_a_reload_is_not(netns: str) -> None:
    baseline = load(netns, RULESET)
    assert baseline[0] == "table inet filter" and '"policy": "drop"' in baseline[1] and len(baseline) == 5
    # the same rules again, re-added after a flush of the chain: every rule gets a new handle
    before = nft(netns, "-a", "list", "chain", "inet", "filter", "input")
    nft(netns, "flush", "chain", "inet", "filter", "input")
    for rule in ("ct state established,related accept", "tcp dport 22 accept", "tcp dport { 80, 443 } counter accept"):
        nft(netns, "add", "rule", "inet", "filter", "input", *rule.split())
    after = nft(netns, "-a", "list", "chain", "inet", "filter", "input")
    assert handles(before).isdisjoint(handles(after))
    assert firewall_findings(normalise_nft(nft(netns, "-j", "list", "ruleset")), baseline, "fw1") == []
    changed = load(netns, RULESET.replace("tcp dport 22 accept", "tcp dport 2222 accept"))
    found = firewall_findings(changed, baseline, "fw1")
    assert [f.key.split(" ", 1)[0] for f in found] == ["removed", "added"]
    assert '"right": 22}' in found[0].key and '"right": 2222}' in found[1].key and found[0].severity == "high"
    assert firewall_findings(changed, None, "fw1") == []  # no approved baseline yet: nothing to compare with


@pytest.mark.stack
def test_the_audit_proposes_the_ruleset_then_reports_only_a_changed_rule(netns: str, stack: Any, tmp_path: Path) -> None:
    """The security audit over a host whose ruleset is the namespace's (a local host: commands run here, as root),
    its baseline approved through Prefect's run input as the UI does."""
    from flows.security_audit import security_audit
    from tests.helpers import answered, clear_security_store, findings_of, inventory_variant

    clear_security_store(stack)
    data = yaml.safe_load(stack.inventory_path.read_text())
    env = data["environments"]["development"]
    (tmp_path / "fw").mkdir()
    hosts = [*env["hosts"], {"name": "fw", "address": "127.0.0.1", "transport": "local", "vars": {"root": str(tmp_path / "fw")}}]
    security = {"firewall": "nft", "firewall_command": ["ip", "netns", "exec", netns, "nft", "-j", "list", "ruleset"],
                "sshd": [], "audit_roots": []}
    cfg = inventory_variant(stack, tmp_path / "fw.yaml", "development", hosts=hosts, security=security)

    def audit(approve: bool = False) -> Any:
        return security_audit(environment="development", config=cfg, approve=approve, hosts=["fw"], return_state=True)

    load(netns, RULESET)
    first = audit()
    assert first.is_completed(), first.message
    assert first.result()["proposed"] == ["firewall:fw"]  # nothing to compare with yet: proposed, not accused
    assert "firewall rule" not in findings_of(first)
    approved = answered(lambda: audit(approve=True), "security-audit", {"approver": "net-nina", "approved": ["firewall:fw"]})
    assert approved.is_completed() and approved.result()["proposed"] == ["firewall:fw"]
    load(netns, RULESET)  # the same ruleset loaded again: new handles, counters at zero
    again = audit()
    assert again.result()["proposed"] == [] and "firewall rule" not in findings_of(again)
    load(netns, RULESET.replace("tcp dport 22 accept", "tcp dport 2222 accept"))
    changed = audit()
    found = findings_of(changed)
    assert "| high | fw | firewall rule added since the approved baseline |" in found
    assert "| high | fw | firewall rule removed since the approved baseline |" in found
    assert changed.result()["proposed"] == ["firewall:fw"]
