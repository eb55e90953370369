"""Pure decisions: the window guard, disk verdicts, /proc parsing, the run report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from upkeep.config.loader import load_inventory
from upkeep.decisions.disk import disk_verdicts
from upkeep.decisions.guard import guard_decision, step_allowed
from upkeep.hosts.base import DiskUsage, ResourceUsage
from upkeep.hosts.procfs import PROBE_ARGV, cpu_percent, parse_df, parse_meminfo, parse_probe
from upkeep.report import RoutineReport

# The guide's windows, as the example inventory holds them (the one source of the checked-in prefect.yaml).
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "upkeep.yaml"
PRESETS = {name: env.window.to_window() for name, env in load_inventory(EXAMPLE).environments.items()}

SUNDAY_0230 = datetime(2026, 11, 29, 2, 30, tzinfo=UTC)
MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_guard_inside_and_outside_the_window() -> None:
    prod = PRESETS["production"]
    assert guard_decision(prod, "approval", SUNDAY_0230, emergency=False).action == "proceed"
    outside = guard_decision(prod, "approval", MONDAY_NOON, emergency=False)
    assert outside.action == "skip" and "next opens 2026-12-06T02:00:00+00:00" in outside.reason
    late = guard_decision(prod, "approval", SUNDAY_0230 + timedelta(hours=1, minutes=20), emergency=False)
    assert late.action == "skip" and "past cutoff" in late.reason


def test_guard_emergency_policies() -> None:
    assert guard_decision(PRESETS["production"], "approval", MONDAY_NOON, emergency=True).action == "ask_approval"
    staging = guard_decision(PRESETS["staging"], "notify", MONDAY_NOON, emergency=True)
    assert staging.action == "notify_and_proceed" and staging.override
    assert guard_decision(PRESETS["development"], "anytime", MONDAY_NOON, emergency=False).action == "proceed"


def test_step_allowed_rechecks_the_cutoff_unless_overridden() -> None:
    prod = PRESETS["production"]
    assert step_allowed(prod, SUNDAY_0230, override=False)[0]
    assert not step_allowed(prod, SUNDAY_0230 + timedelta(minutes=80), override=False)[0]
    assert step_allowed(prod, MONDAY_NOON, override=True)[0]


def test_disk_verdicts() -> None:
    usage = ResourceUsage("h", 1.0, 2.0, 100, 0.1, [DiskUsage("/", 100, 90, 10), DiskUsage("/data", 100, 10, 90)])
    (root,) = disk_verdicts(usage, 15)
    assert not root.ok and root.free_percent == 10.0
    assert [v.ok for v in disk_verdicts(usage, 5, paths=("/", "/data"))] == [True, True]


def test_disk_verdicts_watch_the_filesystem_holding_each_path_once() -> None:
    usage = ResourceUsage("h", 1.0, 2.0, 100, 0.1, [DiskUsage("/", 100, 50, 50), DiskUsage("/var", 100, 99, 1),
                                                    DiskUsage("/var/lib/docker", 100, 0, 100)])
    verdicts = disk_verdicts(usage, 10)  # "/", "/var", "/boot" (on "/")
    assert [(v.mount, v.ok) for v in verdicts] == [("/", True), ("/var", False)]


def test_disk_verdicts_fail_what_was_not_measured() -> None:
    usage = ResourceUsage("h", 1.0, 2.0, 100, 0.1, [DiskUsage("/data", 100, 10, 90)])  # no root reported
    (root,) = disk_verdicts(usage, 5, paths=("/",))
    assert not root.ok and not root.measured and "not measured" in root.detail


PROBE_OUTPUT = """cpu  100 0 100 800 0 0 0 0 0 0
cpu  150 0 150 900 0 0 0 0 0 0
--
0.52 0.40 0.33 1/123 4567
--
MemTotal:       16000000 kB
MemAvailable:    4000000 kB
--
Filesystem     1024-blocks      Used Available Capacity Mounted on
/dev/sda1        100000000  60000000  40000000      60% /
/dev/sdb1         50000000  10000000  40000000      20% /var/lib/mongo
"""


def test_procfs_probe_parsing() -> None:
    usage = parse_probe("web-1", PROBE_OUTPUT)
    assert usage.cpu_percent == 50.0  # 100 busy of 200 jiffies
    assert usage.memory_percent == 75.0 and usage.memory_total_bytes == 16000000 * 1024
    assert usage.load_1m == 0.52
    assert usage.disk("/var/lib/mongo").free_bytes == 40000000 * 1024  # type: ignore[union-attr]  # mounted in the fixture
    assert cpu_percent("cpu 1 1 1 1", "cpu 1 1 1 1") == 0.0
    assert parse_meminfo("MemTotal: 100 kB\nMemAvailable: 100 kB")[1] == 0.0
    assert parse_df("header\nbogus line\n") == []


def test_procfs_probe_reports_an_overlay_root_from_its_own_df() -> None:
    # a container: the first df leaves out overlay filesystems, the probe's `df -P -k /` adds the root
    output = PROBE_OUTPUT.replace("/dev/sda1        100000000  60000000  40000000      60% /\n", "") + (
        "Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
        "overlay          100000000  99000000   1000000      99% /\n")
    usage = parse_probe("box-1", output)
    root = usage.disk("/")
    assert root is not None and root.free_bytes == 1000000 * 1024
    assert [v.ok for v in disk_verdicts(usage, 5, paths=("/",))] == [False]
    assert "LC_ALL=C df -P -k /" in PROBE_ARGV[-1]


def test_report_markdown_and_rows() -> None:
    report = RoutineReport("clear_cache", "production")
    report.add("execute", "clear-cache", "done", host="api-1", detail="ok | fine", seconds=0.25)
    report.add("execute", "clear-cache", "failed", host="api-2", detail="exited 1")
    report.notes.append("Override outside the maintenance window — approved by **alice**")
    from upkeep.report import StageRecord

    report.stages.append(StageRecord("execute", status="failed", seconds=1.0, error="1 failed"))
    md = report.markdown()
    assert "## execute: failed in 1.00s" in md and "| clear-cache | api-1 | done | 0.25s | ok \\| fine |" in md
    assert "approved by **alice**" in md and "1 done, 1 failed" in md
    assert report.host_rows()[1] == {"stage": "execute", "step": "clear-cache", "host": "api-2", "status": "failed",
                                     "seconds": None, "detail": "exited 1"}


def test_a_snapshot_parses_as_the_full_probe_with_the_cpu_share_since_the_previous_reading() -> None:
    import subprocess

    from upkeep.hosts.procfs import SNAPSHOT_ARGV, last_stat_line, parse_snapshot

    full = subprocess.run(PROBE_ARGV, capture_output=True, text=True, check=True).stdout  # this machine's /proc
    snap = subprocess.run(SNAPSHOT_ARGV, capture_output=True, text=True, check=True).stdout
    before, now = parse_probe("here", full), parse_snapshot("here", snap, last_stat_line(full))
    usage, line = now
    assert line.startswith("cpu ")  # the next snapshot's previous reading
    assert usage.memory_total_bytes == before.memory_total_bytes and usage.disks[0].mount == before.disks[0].mount
    assert usage.io is not None and before.io is not None and usage.io.disk_read_bytes >= before.io.disk_read_bytes
    previous = "cpu  100 0 100 800 0 0 0 0 0 0"  # 1000 jiffies, 80 % idle
    synthetic = snap.replace(snap.split("\n", 1)[0], "cpu  200 0 200 1600 0 0 0 0 0 0", 1)  # +1000, 800 idle
    assert parse_snapshot("here", synthetic, previous)[0].cpu_percent == 20.0

    from upkeep.hosts.procfs import comparable

    assert comparable(previous, "cpu  200 0 200 1600 0 0 0 0 0 0")
    assert not comparable(previous, "cpu  50 0 20 100 0 0 0 0 0 0")  # counters went back: rebooted, or another host
    assert not comparable(previous, previous) and not comparable(previous, "cpu  x")
