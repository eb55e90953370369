"""Resource usage of a remote host from `/proc` and `df`, with no agent on the host.

`PROBE_ARGV` is a constant script (no input is ever put into it); `parse_probe` is pure. It reads
/proc/stat twice 0.2 s apart for the CPU share. `SNAPSHOT_ARGV` reads everything once, with shell
builtins where it can (2 `df` processes instead of ~10 processes and a sleep): for a caller that kept
the previous /proc/stat line of the host (the probe agent), the CPU share is the average since then
(`parse_snapshot`), which for a check a minute apart is the minute's average rather than 0.2 s of it.
"""

from __future__ import annotations

from dataclasses import replace

from upkeep.hosts.base import DiskUsage, IOCounters, ResourceUsage

SAMPLE_SECONDS = 0.2
PROBE_ARGV = [
    "/bin/sh", "-c",
    "head -n1 /proc/stat; sleep 0.2; head -n1 /proc/stat; echo '--'; cat /proc/loadavg; echo '--'; "
    "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; echo '--'; "
    "{ LC_ALL=C df -P -k -x tmpfs -x devtmpfs -x overlay 2>/dev/null || LC_ALL=C df -P -k; }; "
    "LC_ALL=C df -P -k /; "  # the root filesystem always, even an overlay (a container's root)
    "{ LC_ALL=C df -P -i -x tmpfs -x devtmpfs -x overlay 2>/dev/null || LC_ALL=C df -P -i; }; LC_ALL=C df -P -i /; "
    "echo '--'; ls /sys/block; echo '--'; cat /proc/diskstats; echo '--'; cat /proc/net/dev",
]
_DF = ("{ LC_ALL=C df -P -k -x tmpfs -x devtmpfs -x overlay 2>/dev/null || LC_ALL=C df -P -k; }; "
       "LC_ALL=C df -P -k /; "
       "{ LC_ALL=C df -P -i -x tmpfs -x devtmpfs -x overlay 2>/dev/null || LC_ALL=C df -P -i; }; LC_ALL=C df -P -i /; ")
SNAPSHOT_ARGV = [
    "/bin/sh", "-c",
    "read -r l < /proc/stat; printf '%s\\n' \"$l\" --; read -r l < /proc/loadavg; printf '%s\\n' \"$l\" --; "
    "while read -r k v u; do case $k in MemTotal:|MemAvailable:) printf '%s %s %s\\n' \"$k\" \"$v\" \"$u\";; esac; "
    "done < /proc/meminfo; echo '--'; " + _DF + "echo '--'; for d in /sys/block/*; do printf '%s\\n' \"${d##*/}\"; done; "
    "echo '--'; while IFS= read -r l; do printf '%s\\n' \"$l\"; done < /proc/diskstats; echo '--'; "
    "while IFS= read -r l; do printf '%s\\n' \"$l\"; done < /proc/net/dev",
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
    """`df -P -k` output, then optionally `df -P -i` (told apart by their header lines) → DiskUsage per mount
    (first occurrence of each mount wins), with its inode table when the `-i` part lists the mount."""
    disks: dict[str, DiskUsage] = {}
    inodes: dict[str, tuple[int, int]] = {}
    in_inodes = False
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "Filesystem":
            in_inodes = parts[1] == "Inodes"
            continue
        if len(parts) < 6 or not parts[1].isdigit():
            continue
        mount = " ".join(parts[5:])
        if in_inodes:
            inodes.setdefault(mount, (int(parts[1]), int(parts[2])))
            continue
        total, used, free = (int(p) * 1024 for p in parts[1:4])
        disks.setdefault(mount, DiskUsage(mount=mount, total_bytes=total, used_bytes=used, free_bytes=free))
    return [replace(d, inodes_total=inodes[d.mount][0], inodes_used=inodes[d.mount][1]) if d.mount in inodes else d
            for d in disks.values()]


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
    return _parse(host, output, None)[0]


def parse_snapshot(host: str, output: str, previous_stat: str) -> tuple[ResourceUsage, str]:
    """Parse the output of SNAPSHOT_ARGV, the CPU share since `previous_stat` (the /proc/stat `cpu` line of
    an earlier probe); the usage and this probe's `cpu` line (the next one's `previous_stat`)."""
    return _parse(host, output, previous_stat)


def comparable(previous_stat: str, stat: str) -> bool:
    """True when `stat` continues `previous_stat`: no counter went back (a reboot, or another machine behind
    the address) and some time passed; else a CPU share between them would be nonsense."""
    try:
        before, after = [int(v) for v in previous_stat.split()[1:8]], [int(v) for v in stat.split()[1:8]]
    except ValueError:
        return False
    return len(before) == len(after) and all(a >= b for a, b in zip(after, before, strict=True)) and sum(after) > sum(before)


def last_stat_line(output: str) -> str:
    """The last /proc/stat `cpu` line of a PROBE_ARGV or SNAPSHOT_ARGV output."""
    return output.split("--\n", 1)[0].strip("\n").splitlines()[-1]


def _parse(host: str, output: str, previous_stat: str | None) -> tuple[ResourceUsage, str]:
    stat, loadavg, meminfo, df, *io = (part.strip("\n") for part in output.split("--\n", 6))
    lines = stat.splitlines()
    first, second = (previous_stat, lines[0]) if previous_stat is not None else (lines[0], lines[1])
    total, mem_pct = parse_meminfo(meminfo)
    return ResourceUsage(
        host=host,
        cpu_percent=cpu_percent(first, second),
        memory_percent=mem_pct,
        memory_total_bytes=total,
        load_1m=float(loadavg.split()[0]),
        disks=parse_df(df),
        io=parse_io(*io) if len(io) == 3 else None,
    ), second
