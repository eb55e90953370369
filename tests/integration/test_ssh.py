"""SSH host access against real sshd test hosts: keys verified, timeouts real, input inert."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.stack import Stack
from upkeep.config import parse_inventory
from upkeep.errors import CommandError, CommandTimeoutError, ConfigError, HostKeyError, HostUnreachableError
from upkeep.hosts import HostPool, SSHHost

pytestmark = pytest.mark.stack


def ssh_host(stack: Stack, i: int = 0, **overrides: object) -> SSHHost:
    assert stack.fleet is not None
    h = stack.fleet.hosts[i]
    kwargs: dict = dict(port=h.port, user="upkeep-sbx", known_hosts=stack.fleet.known_hosts,
                        key_file=stack.fleet.client_key, connect_timeout=3, command_timeout=10)
    kwargs.update(overrides)
    return SSHHost(h.name, str(kwargs.pop("address", h.address)), **kwargs)


def test_command_runs_and_connection_is_reused(stack: Stack) -> None:
    host = ssh_host(stack)
    try:
        first = host.run(["sh", "-c", "echo $UPKEEP_SANDBOX_HOST; id -un"])
        assert first.stdout.split() == ["host1", "upkeep-sbx"]
        transport = host._client.get_transport()  # type: ignore[union-attr]  # connected by the run above
        assert host.run(["true"]).ok
        assert host._client.get_transport() is transport  # type: ignore[union-attr]  # still connected
        with pytest.raises(CommandError, match="exited 3"):
            host.run(["sh", "-c", "exit 3"])
        assert host.run(["sh", "-c", "echo oops >&2; exit 4"], check=False).exit_code == 4
        assert host.run(["cat"], stdin=b"from stdin").stdout == "from stdin"
    finally:
        host.close()


def test_files_and_resources(stack: Stack) -> None:
    host = ssh_host(stack, 1)
    root = stack.fleet.hosts[1].root  # type: ignore[union-attr]  # the test stack has its sshd hosts
    try:
        host.write_file(f"{root}/note.txt", b"written over sftp", mode=0o600)
        assert host.read_file(f"{root}/note.txt") == b"written over sftp"
        assert oct((root / "note.txt").stat().st_mode & 0o777) == "0o600"
        usage = host.resources()
        assert 0 <= usage.cpu_percent <= 100 and 0 < usage.memory_percent < 100
        assert usage.memory_total_bytes > 0 and usage.disk("/") is not None
    finally:
        host.close()


def test_unknown_host_key_is_refused(stack: Stack, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    lines = stack.fleet.known_hosts.read_text().splitlines()  # type: ignore[union-attr]  # the test stack has its sshd hosts
    other.write_text("\n".join(lines[1:]) + "\n")  # everything but host1
    with pytest.raises(HostKeyError, match="is not in .*known_hosts"):
        ssh_host(stack, 0, known_hosts=other).run(["true"])


def test_changed_host_key_is_refused(stack: Stack, tmp_path: Path) -> None:
    lines = stack.fleet.known_hosts.read_text().splitlines()  # type: ignore[union-attr]  # the test stack has its sshd hosts
    host1_addr, _, _ = lines[0].split()
    _, keytype, key2 = lines[1].split()  # host2's key claimed for host1: a "changed" key
    other = tmp_path / "known_hosts"
    other.write_text(f"{host1_addr} {keytype} {key2}\n")
    with pytest.raises(HostKeyError, match="CHANGED"):
        ssh_host(stack, 0, known_hosts=other).run(["true"])


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A TCP server that accepts and never speaks (a host whose sshd hangs)."""
    srv = socket.socket()
    srv.bind(("127.0.0.250", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield "127.0.0.250", srv.getsockname()[1]
    stop.set()
    t.join()
    for s in held:
        s.close()
    srv.close()


def test_unreachable_host_times_out_within_the_timeout(stack: Stack, silent_server: tuple[str, int]) -> None:
    address, port = silent_server
    host = ssh_host(stack, 0, address=address, port=port, connect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(HostUnreachableError):
        host.run(["true"])
    assert time.monotonic() - started < 2.5
    refused = ssh_host(stack, 0, address="127.0.0.251", connect_timeout=1.0)
    with pytest.raises(HostUnreachableError, match="cannot connect"):
        refused.run(["true"])


def test_command_timeout_is_enforced(stack: Stack) -> None:
    host = ssh_host(stack)
    try:
        started = time.monotonic()
        with pytest.raises(CommandTimeoutError):
            host.run(["sleep", "5"], timeout=0.5)
        assert time.monotonic() - started < 2
    finally:
        host.close()


@pytest.mark.parametrize("evil", ["x; touch {marker}", "$(touch {marker})", "`touch {marker}`", "a' ; touch '{marker}",
                                  "x && touch {marker} #"])
def test_hostile_words_are_inert(stack: Stack, inventory, evil: str, tmp_path: Path) -> None:
    marker = f"/tmp/pwned-{uuid.uuid4().hex}"
    word = evil.format(marker=marker)
    pool = HostPool(inventory.environment("development"), inventory.ssh)
    try:
        out = pool.get("host1").run(["echo", word]).stdout
        assert out == word + "\n"
        assert not Path(marker).exists()
    finally:
        pool.close()


def test_hostile_names_are_refused_by_the_config() -> None:
    base = {"window": {"always": True}, "emergency": "anytime"}
    with pytest.raises(ConfigError, match=r"hosts\[0\].name: String should match pattern"):
        parse_inventory({"environments": {"dev": {**base, "hosts": [{"name": "x; touch /tmp/pwned", "address": "h"}]}}})
    with pytest.raises(ConfigError, match=r"services.\$\(id\) \(the key itself\): String should match pattern"):
        parse_inventory({"environments": {"dev": {**base, "services": {"$(id)": {
            "health_url": "http://h/", "start": ["true"], "stop": ["true"]}}}}})
