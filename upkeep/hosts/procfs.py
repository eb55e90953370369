"""Resource usage of a remote host from `/proc` and `df`, with no agent on the host.

`PROBE_ARGV` is a constant script (no input is ever put into it); `parse_probe` is pure.
"""

from __future__ import annotations

from upkeep.hosts.base import DiskUsage, IOCounters, ResourceUsage

SAMPLE_SECONDS = 0.2
PROBE_ARGV = [
    "/bin/sh", "-c",
    "head -n1 /proc/stat; sleep 0.2; head -n1 /proc/stat; echo '--'; cat /proc/loadavg; echo '--'; "
    "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; echo '--'; "
    "{ LC_ALL=C df -P -k -x tmpfs -x devtmpfs -x overlay 2>/dev/null || LC_ALL=C df -P -k; }; "
    "LC_ALL=C df -P -k /; "  # the root filesystem always, even an overlay (a container's root)
    "echo '--'; ls /sys/block; echo '--'; cat /proc/diskstats; echo '--'; cat /proc/net/dev",
]
SECTOR = 512  # /proc/diskstats counts 512-byte sectors whatever the device's own sector size
_VIRTUAL = ("loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd")  # not disks, or counted again below another device


def _cpu_times(line: str) -> tuple[int, int]:
    """(idle, total) jiffies from the aggregate `cpu` line of /proc/stat."""
    values = [int(v) for v in line.split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return idle, sum(values[:8])


def cpu_percent(first: str, second: str) -> float:
    idle1, total1 = _cpu_times(first)
    idle2, total2 = _cpu_times(second)
    dt = total2 - total1
    return 0.0 if dt <= 0 else round(100.0 * (1 - (idle2 - idle1) / dt), 1)


def parse_meminfo(text: str) -> tuple[int, float]:
    """(total bytes, percent used) from MemTotal / MemAvailable lines."""
    fields = {k.strip(): int(v.split()[0]) * 1024 for k, v in (ln.split(":", 1) for ln in text.splitlines() if ":" in ln)}
    total, available = fields["MemTotal"], fields["MemAvailable"]
    return total, round(100.0 * (total - available) / total, 1)


def parse_df(text: str) -> list[DiskUsage]:
    """`df -P -k` output → DiskUsage per mount (first occurrence of each mount wins)."""
    disks: dict[str, DiskUsage] = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 6 or not parts[1].isdigit():
            continue
        mount = " ".join(parts[5:])
        total, used, free = (int(p) * 1024 for p in parts[1:4])
        disks.setdefault(mount, DiskUsage(mount=mount, total_bytes=total, used_bytes=used, free_bytes=free))
    return list(disks.values())


def parse_diskstats(text: str, disks: set[str]) -> tuple[int, int]:
    """(bytes read, bytes written) since boot over the whole `disks` (from /sys/block), partitions and
    virtual devices (loop, device-mapper, md RAID: counted again on their members) left out."""
    read = written = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 10 or parts[2] not in disks or parts[2].startswith(_VIRTUAL):
            continue
        read += int(parts[5]) * SECTOR
        written += int(parts[9]) * SECTOR
    return read, written


def parse_net_dev(text: str) -> tuple[int, int]:
    """(bytes received, bytes sent) since boot over every interface but loopback."""
    rx = tx = 0
    for line in text.splitlines():
        name, sep, counters = line.partition(":")
        fields = counters.split()
        if not sep or name.strip() == "lo" or len(fields) < 9 or not fields[0].isdigit():
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def parse_io(block: str, diskstats: str, net_dev: str) -> IOCounters:
    """IOCounters from `ls /sys/block`, /proc/diskstats and /proc/net/dev."""
    read, written = parse_diskstats(diskstats, set(block.split()))
    rx, tx = parse_net_dev(net_dev)
    return IOCounters(read, written, rx, tx)


def parse_probe(host: str, output: str) -> ResourceUsage:
    """Parse the output of PROBE_ARGV (an older probe without the I/O part parses too, without `io`)."""
    stat, loadavg, meminfo, df, *io = (part.strip("\n") for part in output.split("--\n", 6))
    first, second = stat.splitlines()[:2]
    total, mem_pct = parse_meminfo(meminfo)
    return ResourceUsage(
        host=host,
        cpu_percent=cpu_percent(first, second),
        memory_percent=mem_pct,
        memory_total_bytes=total,
        load_1m=float(loadavg.split()[0]),
        disks=parse_df(df),
        io=parse_io(*io) if len(io) == 3 else None,
    )
