"""What the security routines read on each sandbox host, under its root (the machine's own /etc untouched): a
passwd file, sudoers with an include directory, authorized_keys per account, a directory tree for the permission
audit, a host key the login user may read for `sshd -T`, and an OSV feed naming the demo's apt packages."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

# OSV entries for the sandbox's apt repository (sandbox/aptrepo.py): em-tool 1.0 is vulnerable, fixed by the 1.2 of
# stable-security; linux-image-em was fixed before the installed version (not a finding); another release ignored.
FEED = [
    {"id": "DSA-9901-1", "aliases": ["CVE-2026-41001"], "summary": "em-tool: path traversal in the export command",
     "database_specific": {"severity": "high"},
     "affected": [{"package": {"ecosystem": "Debian:12", "name": "em-tool"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}]}]},
    {"id": "DSA-9902-1", "aliases": ["CVE-2025-40002"], "summary": "linux-image-em: an old bug",
     "affected": [{"package": {"ecosystem": "Debian:12", "name": "linux-image-em"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "6.1.9"}]}]}]},
    {"id": "DSA-9903-1", "aliases": ["CVE-2026-40003"], "summary": "em-agent on another release",
     "affected": [{"package": {"ecosystem": "Debian:11", "name": "em-agent"},
                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.9"}]}]}]},
]
ACCOUNTS = {"alice": 1001, "deploy": 1002}


def public_key(comment: str) -> str:
    """A fresh ed25519 public key line (`ssh-ed25519 AAAA… comment`)."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + f" {comment}"


def _write(path: Path, text: str, owner: tuple[int, int], mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    os.chown(path, *owner)


def seed_access(root: Path, owner: tuple[int, int]) -> None:
    """passwd (root, alice and deploy with a shell, daemon without), sudoers including sudoers.d (deploy may run
    apt-get as root), one key per account with a shell — the state the first review approves."""
    lines = [f"root:x:0:0:root:{root}/root:/bin/bash", "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin"]
    lines += [f"{u}:x:{uid}:{uid}:{u}:{root}/home/{u}:/bin/bash" for u, uid in ACCOUNTS.items()]
    _write(root / "etc" / "passwd", "\n".join(lines) + "\n", owner)
    _write(root / "etc" / "sudoers", f"Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n@includedir {root}/etc/sudoers.d\n",
           owner, 0o440)
    _write(root / "etc" / "sudoers.d" / "deploy", "deploy ALL=(root) NOPASSWD: /usr/bin/apt-get\n", owner, 0o440)
    for user in ACCOUNTS:
        _write(root / "home" / user / ".ssh" / "authorized_keys", public_key(f"{user}@sandbox") + "\n", owner, 0o600)


def seed_audit_tree(root: Path, owner: tuple[int, int]) -> None:
    """`{root}/srv`, the permission audit's root: ordinary files and a shared directory with the sticky bit (no
    finding), so that what a test plants is all there is."""
    srv = root / "srv"
    _write(srv / "bin" / "report", "#!/bin/sh\n", owner, 0o755)
    shared = srv / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    shared.chmod(0o1777)
    os.chown(shared, *owner)


def seed_sshd_key(root: Path, owner: tuple[int, int]) -> Path:
    """A host key the login user can read, so `sshd -T -h KEY` prints the effective configuration without root
    (sshd refuses to print it without a loadable host key)."""
    path = root / "sshd-audit.key"
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sshd-audit", "-f", str(path)], check=True)
    for p in (path, path.with_suffix(".key.pub")):
        if p.exists():
            os.chown(p, *owner)
    return path


def write_feed(path: Path) -> Path:
    path.write_text(json.dumps(FEED, indent=1))
    path.chmod(0o644)
    return path


def seed_security(root: Path, owner: tuple[int, int]) -> None:
    seed_access(root, owner)
    seed_audit_tree(root, owner)
    seed_sshd_key(root, owner)
