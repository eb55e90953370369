"""Host audits into the findings schema (pure parsers, and the argv that gathers their input; never a shell).

* permissions: SUID / SGID files, and world-writable files or directories without the sticky bit, under
  configured roots (`find -xdev`), compared with the last approved baseline: what the baseline lists is
  approved and silent, anything else is a finding;
* sshd: the effective configuration (`sshd -T`): root login, password or keyboard-interactive
  authentication, and weak ciphers, MACs and key exchanges.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from upkeep.security.findings import Finding, Severity


def permission_argv(roots: Sequence[str]) -> list[str]:
    """`find` over `roots` printing `mode owner type path` of every SUID/SGID file and world-writable file or
    directory without the sticky bit (one filesystem each: -xdev)."""
    if not roots or any(not r.startswith("/") for r in roots):
        raise ValueError("permission audit roots must be absolute paths")
    return ["find", *roots, "-xdev", "(", "-perm", "-4000", "-o", "-perm", "-2000", "-o",
            "(", "-type", "d", "-perm", "-0002", "!", "-perm", "-1000", ")", "-o", "(", "-type", "f", "-perm", "-0002", ")",
            ")", "-printf", "%m %u %y %p\\n"]


def _what(mode: int, is_dir: bool) -> str:
    if mode & 0o4000:
        return "suid"
    if mode & 0o2000:
        return "sgid"
    return "world-writable directory without sticky bit" if is_dir else "world-writable file"


def permission_items(output: str) -> dict[str, str]:
    """`path kind` → `mode owner` from permission_argv's output (kind: suid, sgid, world-writable file or
    directory without sticky bit)."""
    out = {}
    for line in output.splitlines():
        parts = line.split(" ", 3)
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        mode, owner, ftype, path = int(parts[0], 8), parts[1], parts[2], parts[3]
        kind = _what(mode, ftype == "d")
        out[f"{path} {kind}"] = f"{parts[0]} {owner}"
    return out


def permission_findings(items: dict[str, str], baseline: Iterable[str] | None, host: str) -> list[Finding]:
    """Findings for what is not in the approved baseline (every item when no baseline was approved yet)."""
    approved = set(baseline or ())
    out = []
    for key, mode_owner in sorted(items.items()):
        if key in approved:
            continue
        severity: Severity = "high" if key.endswith(" suid") else "medium"
        path = key.rsplit(" ", 1)[0] if key.endswith((" suid", " sgid")) else key.split(" world-writable")[0]
        out.append(Finding("permissions", host, key, severity, f"{key.split(' ', 1)[1]}: {path}",
                           f"mode {mode_owner}; not in the approved baseline",
                           "remove the bit (chmod u-s / g-s / o-w, or +t on a shared directory), or approve the baseline"))
    return out


WEAK = {
    "ciphers": ("cbc", "arcfour", "3des", "blowfish", "cast128"),
    "macs": ("md5", "hmac-sha1", "umac-64", "ripemd"),
    "kexalgorithms": ("diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"),
}


def sshd_findings(effective: str, host: str) -> list[Finding]:
    """From `sshd -T` (lowercase keys, one per line): root login allowed, password or keyboard-interactive login,
    and each weak algorithm offered."""
    conf: dict[str, str] = {}
    for line in effective.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and key not in conf:
            conf[key.lower()] = value.strip()
    out = []
    if conf.get("permitrootlogin", "").lower() == "yes":
        out.append(Finding("sshd", host, "permitrootlogin yes", "high", "root may log in with a password over SSH",
                           "PermitRootLogin yes", "PermitRootLogin no (or prohibit-password) in sshd_config"))
    for key in ("passwordauthentication", "kbdinteractiveauthentication"):
        if conf.get(key, "").lower() == "yes":
            out.append(Finding("sshd", host, f"{key} yes", "medium", f"SSH accepts {key.removesuffix('authentication')} logins",
                               f"{key} yes", f"{key} no: keys only"))
    names = {"ciphers": "Ciphers", "macs": "MACs", "kexalgorithms": "KexAlgorithms"}
    for key, weak in WEAK.items():
        bad = [a for a in conf.get(key, "").split(",") if a and any(w in a.lower() for w in weak)]
        if bad:  # one finding per setting: a reviewer fixes the line, not each algorithm
            out.append(Finding("sshd", host, f"{key} weak", "medium", f"weak SSH {names[key]} offered: {', '.join(bad)}",
                               f"{key}: {conf[key]}", f"remove {', '.join(bad)} from {names[key]} in sshd_config"))
    return out
