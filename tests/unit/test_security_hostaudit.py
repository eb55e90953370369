"""Permission and sshd audits on real commands' output: `find` over a directory planted here, `sshd -T` of a
configuration written here."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from upkeep.security.hostaudit import permission_argv, permission_findings, permission_items, sshd_findings


def test_planted_suid_and_world_writable_are_found_then_silent_once_approved(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "helper"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o4755)
    upload = tmp_path / "upload"
    upload.mkdir()
    upload.chmod(0o777)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # sticky: fine
    (tmp_path / "plain.txt").write_text("x")
    out = subprocess.run(permission_argv([str(tmp_path)]), capture_output=True, text=True, check=True).stdout
    items = permission_items(out)
    owner = pwd.getpwuid(os.getuid()).pw_name
    assert items == {f"{tool} suid": f"4755 {owner}", f"{upload} world-writable directory without sticky bit": f"777 {owner}"}
    found = permission_findings(items, None, "host1")
    assert [(f.severity, f.title) for f in found] == [("high", f"suid: {tool}"),
                                                      ("medium", f"world-writable directory without sticky bit: {upload}")]
    assert permission_findings(items, set(items), "host1") == []  # approved baseline: silent
    with pytest.raises(ValueError, match="absolute"):
        permission_argv(["relative/dir"])


def test_sshd_effective_configuration(tmp_path: Path) -> None:
    if not Path("/usr/sbin/sshd").exists() or not shutil.which("ssh-keygen"):
        pytest.skip("OpenSSH server not installed")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hk")], check=True)
    (tmp_path / "cfg").write_text(f"HostKey {tmp_path / 'hk'}\nPermitRootLogin yes\nPasswordAuthentication yes\n"
                                  "KbdInteractiveAuthentication no\nCiphers aes128-cbc,aes256-gcm@openssh.com\n"
                                  "MACs hmac-sha1,hmac-sha2-256-etm@openssh.com\n")
    proc = subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(tmp_path / "cfg")], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"sshd -T refused here: {proc.stderr.strip()[:200]}")
    found = sshd_findings(proc.stdout, "host1")
    assert sorted(f.key for f in found) == ["ciphers weak", "macs weak", "passwordauthentication yes", "permitrootlogin yes"]
    assert {f.title for f in found if f.key.endswith("weak")} == {"weak SSH Ciphers offered: aes128-cbc",
                                                                 "weak SSH MACs offered: hmac-sha1"}
    hardened = proc.stdout.replace("permitrootlogin yes", "permitrootlogin no").replace("passwordauthentication yes",
                                                                                          "passwordauthentication no")
    assert sorted(f.key for f in sshd_findings(hardened, "host1")) == ["ciphers weak", "macs weak"]
