"""Fan-out over real sshd hosts: per-host map, error budget, concurrency measured on the hosts."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from sandbox.stack import Stack
from upkeep.errors import FanOutError, HostUnreachableError
from upkeep.hosts import SSHHost, Status, fan_out

pytestmark = pytest.mark.stack

# Records start/end on the host's clock, sleeps for the host's configured delay (constant script).
PROBE = [
    "/bin/sh", "-c",
    'echo "start $(date +%s.%N) $UPKEEP_SANDBOX_HOST" >> "$0"; '
    'sleep "$(cat "$UPKEEP_HOST_ROOT/delay" 2>/dev/null || echo 0.3)"; '
    'echo "end $(date +%s.%N) $UPKEEP_SANDBOX_HOST" >> "$0"; echo done',
]


def max_overlap(log: Path) -> int:
    """The most hosts running at the same instant, from the hosts' own start/end records."""
    events = []
    for line in log.read_text().splitlines():
        kind, ts, _host = line.split()
        events.append((float(ts), 1 if kind == "start" else -1))
    running = peak = 0
    for _ts, delta in sorted(events, key=lambda e: (e[0], e[1])):
        running += delta
        peak = max(peak, running)
    return peak


@pytest.fixture
def fleet(stack: Stack, tmp_path: Path):
    """The 5 sandbox hosts + one that is down, in a fixed order, and a shared record file."""
    assert stack.fleet is not None
    shared = Path(stack.base) / f"fanout-{tmp_path.name}"
    shared.mkdir()
    os.chown(shared, pwd.getpwnam("upkeep-sbx").pw_uid, -1)
    hosts = [
        SSHHost(h.name, h.address, port=h.port, user="upkeep-sbx", known_hosts=stack.fleet.known_hosts,
                key_file=stack.fleet.client_key, connect_timeout=2)
        for h in stack.fleet.hosts
    ]
    down = SSHHost("down", "127.0.0.252", port=stack.fleet.port, user="upkeep-sbx",
                   known_hosts=stack.fleet.known_hosts, key_file=stack.fleet.client_key, connect_timeout=2)
    slow = stack.fleet.hosts[4].root / "delay"
    slow.write_text("1.5\n")
    ordered = [hosts[0], down, hosts[1], hosts[2], hosts[3], hosts[4]]
    yield ordered, shared / "records.log"
    slow.unlink()
    for h in ordered:
        h.close()


def probe(log: Path):
    def action(host: SSHHost) -> str:
        return host.run([*PROBE, str(log)]).stdout.strip()

    return action


def test_per_host_map_with_one_down_and_one_slow(fleet) -> None:
    hosts, log = fleet
    result = fan_out(hosts, probe(log), max_concurrency=3, max_errors=None)
    assert list(result.outcomes) == ["host1", "down", "host2", "host3", "host4", "host5"]
    assert set(result.succeeded) == {"host1", "host2", "host3", "host4", "host5"}
    assert set(result.failed) == {"down"}
    assert isinstance(result.failed["down"].error, HostUnreachableError)
    assert result.succeeded["host5"].value == "done"
    assert result.succeeded["host5"].duration >= 1.5 > result.succeeded["host1"].duration
    assert max_overlap(log) <= 3
    with pytest.raises(FanOutError) as exc:
        result.raise_on_failure()
    assert exc.value.result is result and "down:" in str(exc.value)


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_concurrency_never_exceeds_the_limit(fleet, limit: int) -> None:
    hosts, log = fleet
    up = [h for h in hosts if h.name != "down"]
    result = fan_out(up, probe(log), max_concurrency=limit)
    assert len(result.succeeded) == 5
    assert max_overlap(log) == limit  # reached, and never exceeded


def test_error_budget_count_stops_new_hosts(fleet) -> None:
    hosts, log = fleet
    result = fan_out(hosts, probe(log), max_concurrency=1, max_errors=0)
    assert result.stopped_early
    assert [h for h, o in result.outcomes.items() if o.status is Status.SUCCEEDED] == ["host1"]
    assert set(result.skipped) == {"host2", "host3", "host4", "host5"}
    assert "not started" in result.skipped["host2"].message
    started = {line.split()[2] for line in log.read_text().splitlines()}
    assert started == {"host1"}  # the skipped hosts were never touched


def test_error_budget_percentage(fleet, stack: Stack) -> None:
    hosts, log = fleet
    # 20% of 6 hosts = 1 failure tolerated: one host down, everyone else still runs
    result = fan_out(hosts, probe(log), max_concurrency=1, max_errors="20%")
    assert not result.stopped_early and len(result.succeeded) == 5
    # a second failing host exceeds the budget: nothing after it starts
    second = SSHHost("down2", "127.0.0.253", port=stack.fleet.port, user="upkeep-sbx",  # type: ignore[union-attr]  # has sshd
                     known_hosts=stack.fleet.known_hosts, key_file=stack.fleet.client_key,  # type: ignore[union-attr]  # has sshd
                     connect_timeout=2)
    with_two = [hosts[0], hosts[1], second, hosts[2], hosts[3]]
    result = fan_out(with_two, probe(log), max_concurrency=1, max_errors="20%")  # 20% of 5 = 1
    assert result.stopped_early
    assert set(result.failed) == {"down", "down2"} and set(result.skipped) == {"host2", "host3"}


def test_running_hosts_finish_before_the_combined_error(fleet) -> None:
    hosts, log = fleet
    # host5 (slow) is still running when 'down' fails: it completes and is reported
    order = [hosts[5], hosts[1], hosts[0], hosts[2]]
    result = fan_out(order, probe(log), max_concurrency=2, max_errors=0)
    assert result.outcomes["host5"].status is Status.SUCCEEDED
    assert result.outcomes["down"].status is Status.FAILED
    assert result.stopped_early and result.outcomes["host2"].status is Status.SKIPPED
    with pytest.raises(FanOutError, match="1 succeeded|2 succeeded"):
        result.raise_on_failure()
