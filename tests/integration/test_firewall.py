"""Firewall review on a real nftables ruleset, loaded in a network namespace this test makes (the machine's own
firewall untouched): the same ruleset reloaded (new handles, counters) is no finding; a changed rule is."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

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
