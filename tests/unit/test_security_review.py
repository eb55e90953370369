"""The access review, the audit's findings and proposals, the findings report and renewal outcomes (pure)."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from upkeep.errors import SecurityInputError
from upkeep.security.access import access_findings, access_items, key_fingerprints, log_findings, login_accounts, sudoers_lines
from upkeep.security.audit import audit_findings, describe_change, proposals
from upkeep.security.certcheck import CertResult
from upkeep.security.certs import CertFacts, judge
from upkeep.security.findings import Finding, Waiver, reconcile
from upkeep.security.firewall import normalise_iptables
from upkeep.security.gather import HostAudit
from upkeep.security.renewal import renewal_outcome
from upkeep.security.report import at_least, markdown, rows, state_markdown, summary
from upkeep.security.sources import parse_feed, read_feed
from upkeep.security.store import Baseline

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1001:1001:Alice:/home/alice:/bin/bash
svc:x:999:999::/srv/svc:/bin/false
# a comment
broken line
"""


def test_accounts_with_a_login_shell_only() -> None:
    accounts = login_accounts(PASSWD, ["/usr/sbin/nologin", "/bin/false"])
    assert [(a.user, a.uid) for a in accounts] == [("root", 0), ("alice", 1001)]


def test_sudoers_rules_without_comments_with_continuations_and_includes() -> None:
    files = {"/etc/sudoers": "# comment\nDefaults env_reset\nroot ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n"
                             "#includedir /etc/sudoers.d\n",
             "/etc/sudoers.d/ops": "alice ALL=(ALL) \\\n   NOPASSWD: /usr/bin/apt-get\n\n"}
    assert sudoers_lines(files) == [
        "/etc/sudoers: Defaults env_reset", "/etc/sudoers: root ALL=(ALL:ALL) ALL", "/etc/sudoers: @includedir /etc/sudoers.d",
        "/etc/sudoers: #includedir /etc/sudoers.d", "/etc/sudoers.d/ops: alice ALL=(ALL) NOPASSWD: /usr/bin/apt-get"]


def test_key_fingerprints_are_those_ssh_keygen_prints(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", str(key)], check=True)
    expected = subprocess.run(["ssh-keygen", "-lf", str(key) + ".pub"], capture_output=True, text=True, check=True).stdout
    pub = (key.with_suffix(".pub")).read_text().strip()
    text = f"# keys\n{pub}\ncommand=\"/bin/true\",no-pty {pub}\nssh-rsa !!!notbase64 x\ngarbage\n"
    fps = key_fingerprints(text)
    assert fps[0] == fps[1] == f"{expected.split()[1]} ssh-ed25519 alice@laptop"  # options before the type skipped
    assert fps[2].startswith("undecodable ssh-rsa key") and fps[3].startswith("unparsed line")


def test_access_changes_since_the_approved_review() -> None:
    accounts = login_accounts(PASSWD, ["/usr/sbin/nologin", "/bin/false"])
    items = access_items(accounts, ["/etc/sudoers.d/ops: alice ALL=(ALL) ALL"], {"alice": ["SHA256:abc ssh-ed25519 a@b"]})
    assert items == ["account alice (uid 1001, /bin/bash)", "account root (uid 0, /bin/bash)",
                     "key alice SHA256:abc ssh-ed25519 a@b", "sudo /etc/sudoers.d/ops: alice ALL=(ALL) ALL"]
    assert access_findings(items, None, "h1") == []  # the first review proposes, it does not accuse
    before = [i for i in items if not i.startswith("sudo")] + ["key bob SHA256:old ssh-rsa bob"]
    found = {f.key: f.severity for f in access_findings(items, before, "h1")}
    assert found == {"added sudo /etc/sudoers.d/ops: alice ALL=(ALL) ALL": "high",
                     "removed key bob SHA256:old ssh-rsa bob": "info"}


def test_log_findings_from_the_daily_summaries() -> None:
    day = {"day": "2026-12-05", "security": {
        "auth_failures": {"203.0.113.9": 45, "198.51.100.1": 3},
        "bursts": [{"ip": "203.0.113.9", "responses": 120, "start": "2026-12-05T03:00:00Z", "end": "2026-12-05T03:01:00Z",
                    "statuses": "401"}],
        "suspicious": [{"path": "/.env", "ip": "192.0.2.7", "requests": 2}],
        "admin_new": {"192.0.2.50": 14}}}
    found = {(f.key, f.severity) for f in log_findings([day, {"day": "2026-12-04"}], "production")}
    assert found == {("burst 2026-12-05 203.0.113.9", "high"), ("failed-logins 2026-12-05 203.0.113.9", "medium"),
                     ("admin-source 2026-12-05 192.0.2.50", "medium"), ("probe 2026-12-05 192.0.2.7 /.env", "low")}


def _baseline(kind: str, host: str, items: list[str]) -> Baseline:
    return Baseline(kind, host, tuple(items), "sec-carol", NOW - timedelta(days=30))


def test_the_audit_accuses_only_what_is_outside_the_approved_baselines_and_proposes_the_rest() -> None:
    suid = "/srv/h1/opt/tool suid"
    ww = "/srv/h1/share world-writable directory without sticky bit"
    audits = {
        "h1": HostAudit(permissions={suid: "4755 root", ww: "777 app"}, ruleset=["table inet filter", "rule a"],
                        access=["account alice (uid 1001, /bin/bash)"], errors=["sshd: exited 255: permission denied"]),
        "h2": HostAudit(permissions={}, ruleset=["table inet filter"], access=[]),
    }
    none_yet = audit_findings(audits, {})
    assert {f.key for f in none_yet if f.host == "h1"} == {suid, ww, "unread sshd"}  # no baseline: every item is new
    baselines = {"permissions": {"h1": _baseline("permissions", "h1", [suid]), "h2": None},
                 "firewall": {"h1": _baseline("firewall", "h1", ["table inet filter", "rule a"]),
                              "h2": _baseline("firewall", "h2", ["table inet filter", "rule b"])}}
    found = audit_findings(audits, baselines)
    assert {(f.host, f.source, f.key) for f in found} == {
        ("h1", "permissions", ww), ("h1", "audit", "unread sshd"), ("h2", "firewall", "removed rule b")}
    proposed = proposals(audits, baselines, ["permissions", "firewall"])
    assert proposed == {"permissions": {"h1": sorted([suid, ww])}, "firewall": {"h2": ["table inet filter"]}}
    assert describe_change("firewall", ["table inet filter"], baselines["firewall"]["h2"]).startswith(
        "firewall: 0 added, 1 removed since approved by sec-carol on 2026-11-06 12:00 UTC (2 items): - rule b")


def test_the_report_says_counts_ages_and_waivers_in_sentences_and_tables() -> None:
    old = Finding("permissions", "h1", "/x suid", "high", "suid: /x", fix="chmod u-s /x")
    cve = Finding("debian-osv", "h2", "openssl CVE-1", "critical", "openssl 3.0.1: CVE-1", fix="install openssl 3.0.2")
    hidden = Finding("npm-audit", "h1", "app lodash GHSA-1", "high", "lodash: prototype pollution")
    first = reconcile([], [old], NOW - timedelta(days=12))
    waiver = Waiver("npm-audit:*:app lodash *", "no fix upstream", "dev-dan", date(2026, 12, 31))
    expired = Waiver("tls:*", "old", "ops", date(2026, 12, 1))
    rec = reconcile(first.records(), [old, cve, hidden], NOW, [waiver, expired])
    text = summary(rec, NOW)
    assert text == ("**2 open finding(s)**: 1 critical, 1 high. 1 new since the last run, 1 persisting (the oldest open "
                    "for 12 d), 0 fixed. 1 hidden by 1 waiver(s) in force. **1 waiver(s) expired**: their findings "
                    "count again.")
    md = markdown("Security audit", rec, NOW)
    assert "| h1 | 0 | 1 | 0 | 0 | 0 | 0 |" in md and "| h2 | 1 | 0 | 0 | 0 | 0 | 1 |" in md
    assert "| critical | h2 | openssl 3.0.1: CVE-1 | install openssl 3.0.2 |" in md
    assert "| high | h1 | suid: /x | 12 d |" in md
    assert "| `npm-audit:*:app lodash *` | dev-dan | no fix upstream | 2026-12-31 | 1 |" in md
    assert "### Expired waivers" in md and "| `tls:*` | ops | old | 2026-12-01 |" in md
    assert "Finding(" not in md and "datetime" not in md  # sentences and cells, never a repr
    assert [r["status"] for r in rows(rec)] == ["new", "persisting", "waived"]
    assert at_least("critical", "high") and not at_least("medium", "high")


def _facts(fp: str, days_left: float, lifetime: float = 90) -> CertFacts:
    end = NOW + timedelta(days=days_left)
    return CertFacts("CN=api", ("api.test",), end - timedelta(days=lifetime), end, "EC secp256r1", True, "sha256", fp, True)


def test_a_renewal_takes_effect_only_when_a_new_sound_certificate_is_observed() -> None:
    def result(f: CertFacts) -> CertResult:
        return CertResult("api", "h1", "h1:443", f, judge(f, "api.test", NOW))
    before = result(_facts("aa", 5))
    assert before.due and [f.key for f in before.findings()] == ["api renewal"]
    assert renewal_outcome(before, result(_facts("aa", 5)))[1].startswith("the same certificate is still served")
    assert renewal_outcome(before, result(_facts("bb", 90)))[0]
    wrong = CertResult("api", "h1", "h1:443", _facts("cc", 90), judge(_facts("cc", 90), "other.test", NOW))
    ok, why = renewal_outcome(before, wrong)
    assert not ok and "not valid for other.test" in why
    assert renewal_outcome(before, CertResult("api", "h1", "h1:443", None, None, "connection refused"))[0] is False


def test_iptables_save_is_compared_without_counters_or_dates() -> None:
    a = "# Generated on Mon\n*filter\n:INPUT DROP [12:3456]\n[5:300] -A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
    b = "# Generated on Tue\n*filter\n:INPUT DROP [99:1]\n[0:0] -A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
    assert normalise_iptables(a) == normalise_iptables(b) == ["*filter", ":INPUT DROP",
                                                             "-A INPUT -p tcp --dport 22 -j ACCEPT", "COMMIT"]


def test_a_feed_is_a_list_an_object_or_a_zip_and_anything_else_is_a_clear_error() -> None:
    entry = {"id": "DSA-1", "affected": []}
    assert parse_feed(json.dumps([entry]).encode(), "f") == [entry]
    assert parse_feed(json.dumps({"vulns": [entry]}).encode(), "f") == [entry]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("DSA-1.json", json.dumps(entry))
    assert parse_feed(buf.getvalue(), "all.zip") == [entry]
    with pytest.raises(SecurityInputError, match="vulnerability feed f: not JSON"):
        parse_feed(b"<html>", "f")
    with pytest.raises(SecurityInputError, match="expected OSV entries"):
        parse_feed(b"42", "f")


def test_the_access_under_review_groups_hosts_and_marks_changes() -> None:
    approved = _baseline("access", "h1", ["account alice (uid 1001, /bin/bash)", "key bob SHA256:x ssh-rsa bob"])
    alice = "account alice (uid 1001, /bin/bash)"
    md = state_markdown("Access under review", {"h1": [alice, "sudo /etc/sudoers: alice ALL=(ALL) ALL"], "h2": [alice],
                                                "h3": [alice]}, {"h1": approved, "h2": None, "h3": None})
    assert "**h2, h3** — none approved yet" in md
    assert "**h1** — last approved: approved by sec-carol on 2026-11-06 12:00 UTC (2 items)" in md
    assert "| new | sudo /etc/sudoers: alice ALL=(ALL) ALL |" in md and "| removed | key bob SHA256:x ssh-rsa bob |" in md
    assert "|  | account alice (uid 1001, /bin/bash) |" in md


def test_a_feed_is_read_from_a_url_or_a_file_and_a_missing_one_is_a_clear_error(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("DSA-1.json", json.dumps({"id": "DSA-1", "affected": []}))

    class Feed(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            """Silent."""

        def do_GET(self) -> None:
            body = buf.getvalue() if self.path == "/Debian/all.zip" else b"not here"
            self.send_response(200 if self.path == "/Debian/all.zip" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert read_feed(f"{url}/Debian/all.zip") == ([{"id": "DSA-1", "affected": []}], None)
        with pytest.raises(SecurityInputError, match=r"cannot download \(HTTP Error 404"):
            read_feed(f"{url}/Debian/none.zip")
    finally:
        server.shutdown()
        server.server_close()
    (tmp_path / "feed.json").write_text("[]")
    entries, age = read_feed(str(tmp_path / "feed.json"))
    assert entries == [] and age is not None and 0 <= age < 60
    with pytest.raises(SecurityInputError, match="cannot read the file"):
        read_feed(str(tmp_path / "missing.json"))
