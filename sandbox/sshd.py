"""OpenSSH test hosts: one `sshd -D` per host on 127.0.0.x, each with its own host key.

Logins are as a dedicated unprivileged user (`upkeep-sbx`, shell /bin/sh) so that no
`~/.bashrc` runs per command; each host gets its own directory (inventory var `root`).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sandbox.procs import Proc, SandboxError, port_open, spawn, stop_pid, untraversable, wait_until

SSHD = Path("/usr/sbin/sshd")
USER = "upkeep-sbx"
CONFIG = """\
ListenAddress {address}:{port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 200:30:400
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
SetEnv UPKEEP_SANDBOX_HOST={name} UPKEEP_HOST_ROOT={root}
"""


@dataclass
class SshdHost:
    name: str
    address: str
    port: int
    root: Path
    host_key: Path
    proc: Proc | None = None


def require_openssh() -> None:
    """Fail with the fix when sshd or the sandbox user is missing."""
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        raise SandboxError("OpenSSH server is not installed: run `sandbox/setup.sh` (apt-get install openssh-server)")
    try:
        pwd.getpwnam(USER)
    except KeyError as exc:
        raise SandboxError(f"sandbox user {USER!r} is missing: run `sandbox/setup.sh`") from exc


def keygen(path: Path, comment: str) -> None:
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)


class SshdFleet:
    """N sshd hosts at 127.0.0.{first}.. on one port, sharing one client key."""

    def __init__(self, base: Path, count: int, *, port: int, first_octet: int = 10, prefix: str = "host") -> None:
        if not 1 <= count <= 240 or first_octet + count > 255:
            raise SandboxError("sshd hosts: count must fit in 127.0.0.2–127.0.0.254")
        self.base, self.port = base, port
        self.client_key = base / "client_key"
        self.known_hosts = base / "known_hosts"
        self.authorized_keys = base / "authorized_keys"
        self.hosts = [
            SshdHost(f"{prefix}{i + 1}", f"127.0.0.{first_octet + i}", port, base / "hosts" / f"{prefix}{i + 1}",
                     base / "keys" / f"{prefix}{i + 1}_ed25519")
            for i in range(count)
        ]

    def prepare(self) -> None:
        """Keys, known_hosts, authorized_keys, per-host directories and configs."""
        require_openssh()
        self.base.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.base.chmod(0o755)
        if (closed := untraversable(self.base)) is not None:
            raise SandboxError(f"the test hosts' user {USER} cannot enter {closed} (mode {oct(closed.stat().st_mode & 0o777)}): "
                               "choose a sandbox directory outside it (--base), e.g. under /var/tmp")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        (self.base / "keys").mkdir(parents=True, exist_ok=True)
        keygen(self.client_key, "upkeep-sandbox-client")
        self.authorized_keys.write_text(Path(f"{self.client_key}.pub").read_text())
        self.authorized_keys.chmod(0o644)
        uid, gid = pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid
        lines = []
        for h in self.hosts:
            keygen(h.host_key, h.name)
            h.root.mkdir(parents=True, exist_ok=True)
            os.chown(h.root, uid, gid)
            pub = Path(f"{h.host_key}.pub").read_text().split()[:2]
            lines.append(f"[{h.address}]:{h.port} {' '.join(pub)}")
            (self.base / "keys" / f"{h.name}.conf").write_text(CONFIG.format(
                address=h.address, port=h.port, host_key=h.host_key, pid_file=self.base / "keys" / f"{h.name}.pid",
                authorized_keys=self.authorized_keys, user=USER, name=h.name, root=h.root,
            ))
        self.known_hosts.write_text("\n".join(lines) + "\n")

    def start(self, logs: Path) -> None:
        for h in self.hosts:
            h.proc = spawn(f"sshd-{h.name}", [str(SSHD), "-D", "-e", "-f", str(self.base / "keys" / f"{h.name}.conf")],
                           logs / f"sshd-{h.name}.log")
        for h in self.hosts:
            wait_until(partial(port_open, h.address, h.port), timeout=15, what=f"sshd {h.name}", proc=h.proc)

    def stop(self) -> None:
        for h in self.hosts:
            if h.proc is not None:
                stop_pid(h.proc.pid, timeout=5)
                h.proc = None

    def pids(self) -> list[int]:
        return [h.proc.pid for h in self.hosts if h.proc is not None]
