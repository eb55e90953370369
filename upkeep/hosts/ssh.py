"""Hosts over SSH (paramiko), with verified host keys and real timeouts.

* host keys are checked against known_hosts with `RejectPolicy`: unknown or changed keys are refused;
* commands are argv lists joined with `shlex.join`, so every word reaches the remote shell quoted;
* one connection per host is opened lazily and reused for every command of a run.
"""

from __future__ import annotations

import io
import select
import shlex
import socket
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import paramiko

from upkeep.errors import AuthenticationError, CommandError, CommandTimeoutError, HostError, HostKeyError, HostUnreachableError
from upkeep.hosts.base import CommandResult, ResourceUsage
from upkeep.hosts.procfs import PROBE_ARGV, parse_probe

T = TypeVar("T")
_PARSED: dict[tuple[str, Path], tuple[tuple[int, int, int], Any]] = {}
_PARSED_LOCK = threading.Lock()


def _parsed(kind: str, path: Path, parse: Callable[[Path], T]) -> T:
    """`parse(path)`, memoised per version of the file (inode, size, mtime): re-read only when it changes."""
    st = path.stat()
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    with _PARSED_LOCK:
        cached = _PARSED.get((kind, path))
        if cached is None or cached[0] != stamp:
            cached = _PARSED[(kind, path)] = (stamp, parse(path))
        return cast(T, cached[1])  # the entry of `kind` is what `parse` returned


def _load_host_keys(path: Path) -> paramiko.HostKeys:
    keys = paramiko.HostKeys()
    keys.load(str(path))  # O(lines²) in paramiko, GIL held: ~8 ms for 100 lines, so once per file version
    return keys


def known_host_keys(path: Path) -> paramiko.HostKeys:
    """The parsed known_hosts file (shared; callers copy out the entries they need)."""
    return _parsed("known_hosts", path, _load_host_keys)


def private_key(path: Path) -> paramiko.PKey:
    """The private key at `path` (paramiko's key_filename= re-reads it once per key type it tries)."""
    return _parsed("private_key", path, paramiko.PKey.from_path)


class SSHHost:
    """A Host reached over SSH."""

    def __init__(
        self,
        name: str,
        address: str,
        *,
        port: int = 22,
        user: str = "root",
        known_hosts: str | Path = "~/.ssh/known_hosts",
        key_file: str | Path | None = None,
        pkey: paramiko.PKey | None = None,
        connect_timeout: float = 10.0,
        command_timeout: float = 300.0,
        keepalive: float = 15.0,
    ) -> None:
        self.name = name
        self.address, self.port, self.user = address, port, user
        self.known_hosts = Path(known_hosts).expanduser()
        self.key_file = Path(key_file).expanduser() if key_file else None
        self.pkey = pkey
        self.connect_timeout, self.command_timeout, self.keepalive = connect_timeout, command_timeout, keepalive
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    # -- connection -------------------------------------------------------------------------------
    def _connected(self) -> paramiko.SSHClient:
        with self._lock:
            client = self._client
            transport = client.get_transport() if client else None
            if client is None or transport is None or not transport.is_active():
                client = self._client = self._connect()
            return client

    def _connect(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if not self.known_hosts.is_file():
            raise HostKeyError(self.name,
                               f"known_hosts file {self.known_hosts} does not exist; create it with the host's verified key")
        # Only this host's entries: the same RejectPolicy / BadHostKey checks, without re-parsing the whole file.
        lookup_name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        for keytype, key in (known_host_keys(self.known_hosts).lookup(lookup_name) or {}).items():
            client.get_host_keys().add(lookup_name, keytype, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        t = self.connect_timeout
        try:
            sock = socket.create_connection((self.address, self.port), timeout=t)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stall on small SSH packets
            client.connect(
                hostname=self.address, port=self.port, username=self.user, sock=sock,
                pkey=self.pkey or (private_key(self.key_file) if self.key_file else None),
                timeout=t, banner_timeout=t, auth_timeout=t, channel_timeout=t,
                look_for_keys=False, allow_agent=False,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyError(
                self.name,
                f"host key of {self.address}:{self.port} CHANGED (known {exc.expected_key.get_fingerprint().hex()}, "
                f"offered {exc.key.get_fingerprint().hex()}); refusing to connect. If the change is expected, "
                f"verify the new key out of band and replace its line in {self.known_hosts}",
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise AuthenticationError(self.name, f"authentication as {self.user!r} failed: check the key and user") from exc
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise HostKeyError(
                    self.name,
                    f"host key of {self.address}:{self.port} is not in {self.known_hosts}; add the verified key "
                    f"(e.g. `ssh-keyscan -p {self.port} {self.address}` checked against the host's fingerprint)",
                ) from exc
            raise HostUnreachableError(
                self.name, f"SSH handshake with {self.address}:{self.port} failed within {t:g}s: {exc}") from exc
        except TimeoutError as exc:
            client.close()
            raise HostUnreachableError(self.name, f"{self.address}:{self.port} did not answer within {t:g}s") from exc
        except OSError as exc:
            client.close()
            raise HostUnreachableError(self.name, f"cannot connect to {self.address}:{self.port}: {exc}") from exc
        transport = client.get_transport()
        if transport is not None and self.keepalive:
            transport.set_keepalive(max(1, int(self.keepalive)))
        return client

    # -- commands ---------------------------------------------------------------------------------
    def run(
        self, argv: Sequence[str], *, timeout: float | None = None, check: bool = True, stdin: bytes | None = None
    ) -> CommandResult:
        args = [str(a) for a in argv]
        limit = timeout or self.command_timeout
        started = time.monotonic()
        transport = self._connected().get_transport()
        assert transport is not None
        try:
            chan = transport.open_session(timeout=self.connect_timeout)
            chan.exec_command(shlex.join(args))
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = self._drain(chan, started + limit, args)
            code = chan.recv_exit_status()
        except (paramiko.SSHException, OSError) as exc:
            raise HostError(self.name, f"connection lost while running {args[0]!r}: {exc}") from exc
        finally:
            if "chan" in locals():
                chan.close()
        result = CommandResult(
            host=self.name, argv=args, exit_code=code, stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"), duration=time.monotonic() - started,
        )
        if check and not result.ok:
            raise CommandError(self.name, args, code, result.stderr)
        return result

    def _drain(self, chan: paramiko.Channel, deadline: float, args: list[str]) -> tuple[bytes, bytes]:
        out, err = bytearray(), bytearray()
        while True:
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                if chan.eof_received or chan.closed:
                    return bytes(out), bytes(err)
            left = deadline - time.monotonic()
            if left <= 0:
                raise CommandTimeoutError(self.name, f"{args[0]!r} did not finish within its timeout")
            select.select([chan], [], [], min(left, 1.0))

    # -- files ------------------------------------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        try:
            with self._connected().open_sftp() as sftp, sftp.open(path, "rb") as fh:
                return fh.read()
        except (OSError, paramiko.SSHException) as exc:
            raise HostError(self.name, f"cannot read {path}: {exc}") from exc

    def open_file(self, path: str) -> BinaryIO:
        """Read over SFTP with read-ahead (requests pipelined, not one round trip per block)."""
        try:
            sftp = self._connected().open_sftp()
            try:
                fh = sftp.open(path, "rb")
                fh.prefetch()
            except BaseException:
                sftp.close()
                raise
        except (OSError, paramiko.SSHException) as exc:
            raise HostError(self.name, f"cannot read {path}: {exc}") from exc
        return cast(BinaryIO, _SFTPReader(sftp, fh))

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        tmp = f"{path}.upkeep-tmp"
        try:
            with self._connected().open_sftp() as sftp:
                with sftp.open(tmp, "wb") as fh:
                    fh.write(data)
                sftp.chmod(tmp, stat.S_IMODE(mode))
                sftp.posix_rename(tmp, path)
        except (OSError, paramiko.SSHException) as exc:
            raise HostError(self.name, f"cannot write {path}: {exc}") from exc

    def resources(self) -> ResourceUsage:
        return parse_probe(self.name, self.run(PROBE_ARGV, timeout=max(5.0, self.connect_timeout)).stdout)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class _SFTPReader(io.RawIOBase):
    """An SFTP file whose close also closes its SFTP session."""

    def __init__(self, sftp: paramiko.SFTPClient, fh: paramiko.SFTPFile) -> None:
        self._sftp, self._fh = sftp, fh

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._fh.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return bytes(self._fh.read(size if size is not None and size >= 0 else None))

    def close(self) -> None:
        if not self.closed:
            try:
                self._fh.close()
            finally:
                self._sftp.close()
        super().close()
