"""The access review (pure): who can log in, who may sudo, which keys open which account — as items compared with
the last approved review — and the week's security events from the log analysis' daily summaries.

An item is one line a reviewer can read and approve: `account alice (uid 1001, /bin/bash)`,
`sudo /etc/sudoers.d/ops: alice ALL=(ALL) NOPASSWD: ALL`, `key alice SHA256:… ssh-ed25519 alice@laptop`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from upkeep.security.findings import Finding, Severity

_KEY_TYPES = ("ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-")


@dataclass(frozen=True)
class Account:
    user: str
    uid: int
    home: str
    shell: str


def login_accounts(passwd: str, nologin_shells: Sequence[str]) -> list[Account]:
    """The accounts of a passwd file whose shell lets them log in."""
    out = []
    for line in passwd.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 7 or line.startswith("#") or not parts[2].isdigit():
            continue
        shell = parts[6] or "/bin/sh"
        if shell not in nologin_shells:
            out.append(Account(parts[0], int(parts[2]), parts[5], shell))
    return out


def sudoers_lines(files: Mapping[str, str]) -> list[str]:
    """`path: rule` for every rule of the sudoers files (comments and blank lines dropped, continued lines joined;
    `#include` / `@includedir` kept: they are directives, not comments)."""
    out = []
    for path, text in sorted(files.items()):
        joined = text.replace("\\\n", " ")
        for raw in joined.splitlines():
            line = " ".join(raw.split())
            if not line or (line.startswith("#") and not line.startswith(("#include", "#includedir"))):
                continue
            out.append(f"{path}: {line}")
    return out


def key_fingerprints(authorized_keys: str) -> list[str]:
    """`SHA256:<fingerprint> <type> <comment>` of every key line (options before the type are skipped; a line
    whose key does not decode is reported as such, never dropped)."""
    out = []
    for raw in authorized_keys.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        at = next((i for i, w in enumerate(words) if w.startswith(_KEY_TYPES)), None)
        if at is None or at + 1 >= len(words):
            out.append(f"unparsed line: {line[:60]}")
            continue
        try:
            blob = base64.b64decode(words[at + 1], validate=True)
        except (binascii.Error, ValueError):
            out.append(f"undecodable {words[at]} key: {line[:60]}")
            continue
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        comment = " ".join(words[at + 2:])
        out.append(f"SHA256:{digest} {words[at]}{' ' + comment if comment else ''}")
    return out


def access_items(accounts: Iterable[Account], sudoers: Iterable[str], keys: Mapping[str, Sequence[str]]) -> list[str]:
    """Every item of a host's access, sorted: accounts, sudo rules, keys per account."""
    items = [f"account {a.user} (uid {a.uid}, {a.shell})" for a in accounts]
    items += [f"sudo {line}" for line in sudoers]
    items += [f"key {user} {fp}" for user, fps in keys.items() for fp in fps]
    return sorted(set(items))


def _severity(item: str) -> Severity:
    if item.startswith("sudo ") or item.startswith("account root") or " (uid 0," in item:
        return "high"
    return "medium"


def access_findings(items: Sequence[str], baseline: Iterable[str] | None, host: str) -> list[Finding]:
    """What changed since the approved review: items added (a finding until approved) and removed (info); nothing
    without an approved review yet (the first review proposes every item)."""
    if baseline is None:
        return []
    before, now = set(baseline), set(items)
    out = [Finding("access", host, f"added {i}", _severity(i), f"access granted since the approved review: {i}", i,
                   "approve the review if this access is intended, else remove it") for i in sorted(now - before)]
    out += [Finding("access", host, f"removed {i}", "info", f"access removed since the approved review: {i}", i,
                    "approve the review to record the removal") for i in sorted(before - now)]
    return out


def log_findings(summaries: Sequence[Mapping[str, Any]], environment: str, failed_logins_min: int = 20) -> list[Finding]:
    """The week's security events from the log analysis' daily summaries (`security`): bursts of denied responses
    (high), sources with many failed logins (medium), new sources on admin paths (medium), probes of suspicious
    paths (low). Keyed by day and source, so each event is reported once and then ages as persisting."""
    out = []
    for s in summaries:
        day, sec = s.get("day") or "?", s.get("security") or {}
        for b in sec.get("bursts", []):
            out.append(Finding("logs", environment, f"burst {day} {b['ip']}", "high",
                               f"{b['ip']}: {b['responses']:,} denied responses ({b['statuses']}) on {day}",
                               f"between {b.get('start')} and {b.get('end')}", "block the source, or find the client "
                               "misbehaving (rate limits, an expired credential)"))
        for ip, n in sec.get("auth_failures", {}).items():
            if n >= failed_logins_min:
                out.append(Finding("logs", environment, f"failed-logins {day} {ip}", "medium",
                                   f"{ip}: {n:,} failed logins on {day}", "", "block the source if it is not a user"))
        for ip, n in sec.get("admin_new", {}).items():
            out.append(Finding("logs", environment, f"admin-source {day} {ip}", "medium",
                               f"new source {ip} on admin paths on {day}: {n:,} requests", "not seen on the days before",
                               "confirm who it is; restrict admin paths to known networks"))
        for p in sec.get("suspicious", []):
            out.append(Finding("logs", environment, f"probe {day} {p['ip']} {p['path']}", "low",
                               f"{p['ip']} probed {p['path']} ({p['requests']:,} requests) on {day}", "",
                               "nothing to do if it was refused; block repeat offenders"))
    return out
