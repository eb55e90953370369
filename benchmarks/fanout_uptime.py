"""Fan-out benchmark: `uptime` on N SSH hosts with Upkeep, Ansible (ad hoc) and a parallel OpenSSH loop.

    .venv/bin/python -m benchmarks.fanout_uptime [--hosts 20 100] [--repeats 5] [--forks N]

Starts its own sshd fleet (one `sshd -D` per host on 127.0.0.10.., see sandbox/sshd.py), runs every
tool `--repeats` times per host count (interleaved: repeat → host count → tool, tool order rotated each
repeat), prints median/min wall-clock seconds, the ratios against Upkeep and the target checks, and writes
the raw samples to benchmarks/results/. Every tool opens fresh connections in every timed run.
See benchmarks/README.md for what exactly is compared and the fairness notes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks._cpu import CpuMeter, become_subreaper, reap
from benchmarks._fleet import running_fleet, scratch_dir
from benchmarks._report import SampleStats, loadavg, write_results
from sandbox.sshd import USER, SshdFleet, SshdHost

TOOLS = ("upkeep", "ansible", "ssh-loop")
DEFAULT_FORKS_CAP = 50
#: Minimum speed-up of Upkeep over Ansible, by host count (the targets of the brief).
ANSIBLE_TARGETS = {20: 8.0, 100: 10.0}
#: Upkeep must be no slower than the parallel OpenSSH loop: ssh-loop/upkeep ≥ this.
SSH_LOOP_TARGET = 1.0
COMMAND = "uptime"


class BenchError(RuntimeError):
    """A tool run did not succeed on every host; its timing would be meaningless."""


@dataclass(frozen=True)
class Setup:
    """Everything a tool run needs besides the host count."""

    fleet: SshdFleet
    forks_by_hosts: dict[int, int]
    work: Path
    ansible_pipelining: bool

    def hosts(self, n: int) -> list[SshdHost]:
        return self.fleet.hosts[:n]

    def forks(self, n: int) -> int:
        """The concurrency every tool uses at N hosts."""
        return self.forks_by_hosts[n]


@dataclass(frozen=True)
class Sample:
    """One timed run: wall seconds, and CPU seconds on the controller side and on the hosts' side."""

    wall: float
    controller_cpu: float
    host_cpu: float


@dataclass
class Series(SampleStats):
    """The timed samples of one tool at one host count."""

    tool: str
    hosts: int
    samples: list[Sample] = field(default_factory=list)

    @property
    def controller_cpu(self) -> float:
        return self.median_of("controller_cpu")

    @property
    def host_cpu(self) -> float:
        return self.median_of("host_cpu")


# -- Upkeep ---------------------------------------------------------------------------------------
def run_upkeep(setup: Setup, n: int) -> float:
    """fan_out of `uptime` over N fresh SSHHost objects: connect + run + close, all timed."""
    from upkeep.hosts.fanout import fan_out
    from upkeep.hosts.ssh import SSHHost

    def action(host: SSHHost) -> str:
        try:
            return host.run([COMMAND]).stdout
        finally:
            host.close()

    started = time.perf_counter()
    hosts = [
        SSHHost(h.name, h.address, port=h.port, user=USER, known_hosts=setup.fleet.known_hosts,
                key_file=setup.fleet.client_key, connect_timeout=30.0)
        for h in setup.hosts(n)
    ]
    result = fan_out(hosts, action, max_concurrency=setup.forks(n), max_errors=None)
    elapsed = time.perf_counter() - started
    bad = {name: o.message for name, o in result.outcomes.items()
           if o.status.value != "succeeded" or "load average" not in (o.value or "")}
    if bad:
        raise BenchError(f"upkeep: {result.summary()}; first problems: {dict(list(bad.items())[:3])}")
    return elapsed


# -- Ansible --------------------------------------------------------------------------------------
def ansible_inventory(setup: Setup, n: int) -> Path:
    """An INI inventory of the first N hosts, host keys verified against the fleet's known_hosts."""
    path = setup.work / f"inventory-{n}.ini"
    ssh_args = f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={setup.fleet.known_hosts}"
    lines = ["[fleet]"]
    lines += [f"{h.name} ansible_host={h.address} ansible_port={h.port}" for h in setup.hosts(n)]
    lines += [
        "", "[all:vars]", f"ansible_user={USER}", f"ansible_ssh_private_key_file={setup.fleet.client_key}",
        f"ansible_ssh_common_args='{ssh_args}'", "ansible_python_interpreter=/usr/bin/python3", "",
    ]
    path.write_text("\n".join(lines))
    return path


def ansible_env(scratch: Path, pipelining: bool) -> dict[str, str]:
    """The inherited environment minus any ANSIBLE_*, plus a private home/temp/ControlPath dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({
        "ANSIBLE_HOME": str(scratch / "home"),
        "ANSIBLE_LOCAL_TEMP": str(scratch / "tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(scratch / "cp"),  # fresh per run: no master reused across runs
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PIPELINING": str(pipelining),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_STDOUT_CALLBACK": "default",
    })
    return env


ONELINE = re.compile(r"^(?P<host>\S+) \| (?P<status>[A-Z]+) \| rc=(?P<rc>-?\d+) \|")


def check_ansible_output(stdout: str, n: int) -> None:
    """Every host must report CHANGED with rc=0 in `-o` (one-line) mode."""
    ok = {m["host"] for m in map(ONELINE.match, stdout.splitlines()) if m and m["status"] == "CHANGED" and m["rc"] == "0"}
    if len(ok) != n:
        raise BenchError(f"ansible: {len(ok)}/{n} hosts returned rc=0; output tail:\n{stdout[-2000:]}")


MASTER_PID = re.compile(r"Master running \(pid=(\d+)\)")


def mux(sock: Path, op: str) -> str:
    """`ssh -O op` on one ControlMaster socket; returns ssh's message (stderr)."""
    proc = subprocess.run(["ssh", "-F", "/dev/null", "-S", str(sock), "-O", op, "benchmark-master"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
    return proc.stderr


def close_control_masters(cp_dir: Path) -> None:
    """Stop the ControlPersist masters this run left behind: `ssh -O exit` per socket, then reap each by PID
    (they were reparented to this process, a child subreaper, so their CPU counts as the controller's)."""
    if not cp_dir.is_dir():
        return
    for sock in cp_dir.iterdir():
        found = MASTER_PID.search(mux(sock, "check"))
        mux(sock, "exit")
        if found:
            reap(int(found[1]))


def run_ansible(setup: Setup, n: int) -> float:
    """`ansible all -m command -a uptime -f FORKS -o` as a fresh process; its startup is timed too."""
    inventory = setup.work / f"inventory-{n}.ini"
    scratch = scratch_dir("upkeep-bench-ansible-")
    argv = [str(Path(sys.executable).parent / "ansible"), "all", "-i", str(inventory), "-m", "command",
            "-a", COMMAND, "-f", str(setup.forks(n)), "-o"]
    try:
        started = time.perf_counter()
        proc = subprocess.run(argv, env=ansible_env(scratch, setup.ansible_pipelining), cwd=scratch,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise BenchError(f"ansible exited {proc.returncode}: {proc.stderr[-1500:]}\n{proc.stdout[-1500:]}")
        check_ansible_output(proc.stdout, n)
        return elapsed
    finally:
        close_control_masters(scratch / "cp")
        shutil.rmtree(scratch, ignore_errors=True)


# -- plain OpenSSH loop ---------------------------------------------------------------------------
def ssh_argv(fleet: SshdFleet, host: SshdHost) -> list[str]:
    """One non-interactive `ssh … uptime`, host key verified, no user config, no connection sharing."""
    return [
        "ssh", "-F", "/dev/null", "-i", str(fleet.client_key), "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={fleet.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ControlMaster=no", "-o", "ControlPath=none",
        "-p", str(host.port), f"{USER}@{host.address}", COMMAND,
    ]


def run_ssh_loop(setup: Setup, n: int) -> float:
    """N `ssh` processes, at most FORKS at once (a thread pool of subprocess.run); all must exit 0."""
    argvs = [ssh_argv(setup.fleet, h) for h in setup.hosts(n)]

    def one(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=setup.forks(n)) as pool:
        done = list(pool.map(one, argvs))
    elapsed = time.perf_counter() - started
    bad = [(p.args[-2], p.returncode, p.stderr.strip()) for p in done if p.returncode != 0 or "load average" not in p.stdout]
    if bad:
        raise BenchError(f"ssh-loop: {len(bad)}/{n} hosts failed; first: {bad[:3]}")
    return elapsed


RUNNERS: dict[str, Callable[[Setup, int], float]] = {"upkeep": run_upkeep, "ansible": run_ansible, "ssh-loop": run_ssh_loop}


# -- schedule, report -----------------------------------------------------------------------------
def rotated(tools: Sequence[str], k: int) -> list[str]:
    """The tool order of repeat k (rotated so no tool always runs first, right after another)."""
    k %= len(tools)
    return [*tools[k:], *tools[:k]]


SETTLE = 0.3  # seconds for the hosts' sshd children to exit and be reaped before host CPU is read


def measured(setup: Setup, tool: str, n: int) -> Sample:
    """One run of `tool` on N hosts, with the CPU used on both sides (read after the tool cleaned up)."""
    meter = CpuMeter(setup.fleet.pids())
    meter.start()
    wall = RUNNERS[tool](setup, n)
    time.sleep(SETTLE)
    return Sample(wall, *meter.stop())


def show(label: str, tool: str, n: int, s: Sample) -> None:
    print(f"  {label:<12} {tool:<9} {n:>4} hosts  {s.wall:7.3f}s   cpu: controller {s.controller_cpu:6.2f}s, "
          f"hosts {s.host_cpu:6.2f}s", flush=True)


def run_all(setup: Setup, counts: Sequence[int], repeats: int, tools: Sequence[str],
            warmup: bool) -> dict[tuple[str, int], Series]:
    """Interleaved schedule: for each repeat, for each host count, every tool once."""
    series = {(t, n): Series(t, n) for n in counts for t in tools}
    if warmup:
        for tool in tools:
            show("warm-up", tool, min(counts), measured(setup, tool, min(counts)))
    for r in range(repeats):
        for n in counts:
            for tool in rotated(tools, r):
                sample = measured(setup, tool, n)
                series[(tool, n)].samples.append(sample)
                show(f"repeat {r + 1}/{repeats}", tool, n, sample)
    return series


def ratio(series: dict[tuple[str, int], Series], tool: str, n: int) -> float | None:
    """median(tool) / median(upkeep) at N hosts (None if either was not run)."""
    if (tool, n) not in series or ("upkeep", n) not in series:
        return None
    return series[(tool, n)].median / series[("upkeep", n)].median


def checks(series: dict[tuple[str, int], Series], counts: Sequence[int]) -> list[dict[str, object]]:
    """The target checks that apply to the host counts and tools that were run."""
    out: list[dict[str, object]] = []
    for n in counts:
        a = ratio(series, "ansible", n)
        if a is not None and n in ANSIBLE_TARGETS:
            out.append({"check": f"Upkeep >= {ANSIBLE_TARGETS[n]:g}x faster than Ansible at {n} hosts",
                        "measured": round(a, 2), "pass": a >= ANSIBLE_TARGETS[n]})
        s = ratio(series, "ssh-loop", n)
        if s is not None:
            out.append({"check": f"Upkeep no slower than the ssh loop at {n} hosts (ssh-loop/upkeep >= {SSH_LOOP_TARGET:g})",
                        "measured": round(s, 2), "pass": s >= SSH_LOOP_TARGET})
    return out


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def print_table(series: dict[tuple[str, int], Series], counts: Sequence[int], tools: Sequence[str]) -> None:
    print(f"\n{'tool':<9} {'hosts':>5} {'median s':>9} {'min s':>8} {'ansible/upkeep':>15} {'ssh-loop/upkeep':>16}"
          f"   {'ctrl cpu s':>10} {'host cpu s':>10}")
    for n in counts:
        for tool in tools:
            s = series[(tool, n)]
            extra = ((fmt_ratio(ratio(series, "ansible", n)), fmt_ratio(ratio(series, "ssh-loop", n)))
                     if tool == "upkeep" else ("", ""))
            print(f"{tool:<9} {n:>5} {s.median:>9.3f} {s.min:>8.3f} {extra[0]:>15} {extra[1]:>16}"
                  f"   {s.controller_cpu:>10.2f} {s.host_cpu:>10.2f}")
    print("(median/min: wall seconds; ctrl/host cpu: median CPU seconds of the tool's side and of the sshd/remote side,"
          " both on this machine's cores)")


def print_checks(results: list[dict[str, object]]) -> None:
    print("\ntargets:")
    for c in results:
        print(f"  {'PASS' if c['pass'] else 'FAIL'}  {c['check']}: measured {c['measured']}x")


def import_cost() -> float:
    """Seconds a fresh interpreter needs to import Upkeep's SSH fan-out (not in Upkeep's timed region)."""
    code = "import upkeep.hosts.ssh, upkeep.hosts.fanout"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    return time.perf_counter() - started


def versions() -> dict[str, str]:
    import paramiko

    ansible = subprocess.run([str(Path(sys.executable).parent / "ansible"), "--version"], capture_output=True, text=True)
    ssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True)
    return {"python": platform.python_version(), "paramiko": paramiko.__version__,
            "ansible": ansible.stdout.splitlines()[0] if ansible.stdout else "?", "openssh": ssh.stderr.strip(),
            "cpus": str(os.cpu_count()), "platform": platform.platform()}


def save_results(args: argparse.Namespace, series: dict[tuple[str, int], Series],
                  results: list[dict[str, object]], extra: dict[str, object]) -> Path:
    payload = {
        "command": COMMAND, "hosts": args.hosts, "repeats": args.repeats, "forks_option": args.forks,
        "ansible_pipelining": args.ansible_pipelining, "warmup": not args.no_warmup, **extra,
        "series": [{**asdict(s), "median": s.median, "min": s.min, "controller_cpu_median": s.controller_cpu,
                    "host_cpu_median": s.host_cpu} for s in series.values()],
        "ratios": {str(n): {"ansible/upkeep": ratio(series, "ansible", n), "ssh-loop/upkeep": ratio(series, "ssh-loop", n)}
                   for n in args.hosts},
        "checks": results,
    }
    return write_results("fanout_uptime", payload)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hosts", type=int, nargs="+", default=[20, 100], help="host counts to run (default: 20 100)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per tool and host count (default: 5)")
    p.add_argument("--forks", type=int, default=None,
                   help=f"concurrency for every tool (default: min(N, {DEFAULT_FORKS_CAP}) per host count N)")
    p.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS), help="tools to run (default: all)")
    p.add_argument("--ansible-pipelining", action="store_true", help="ANSIBLE_PIPELINING=True (default: Ansible's default, off)")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run of each tool")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target check fails")
    args = p.parse_args(argv)
    if any(n < 1 for n in args.hosts) or args.repeats < 1 or (args.forks is not None and args.forks < 1):
        p.error("--hosts, --repeats and --forks must be positive")
    args.hosts = sorted(set(args.hosts))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tools = [t for t in TOOLS if t in args.tools]
    biggest = max(args.hosts)
    forks_by_n = {n: args.forks or min(n, DEFAULT_FORKS_CAP) for n in args.hosts}
    print(f"fanout_uptime: `{COMMAND}` on {args.hosts} hosts, {args.repeats} repeats, tools {tools}")
    print(f"  forks (same for every tool): {forks_by_n}; ansible pipelining: {args.ansible_pipelining}")
    load_before = loadavg()
    print(f"  load average before: {load_before} on {os.cpu_count()} CPUs (other work on the machine adds noise)")
    if not become_subreaper():
        print("  warning: cannot become a child subreaper; Ansible's ControlPersist masters' CPU is not counted")
    work = scratch_dir("upkeep-bench-work-")
    try:
        with running_fleet(biggest) as fleet:
            print(f"  sshd fleet: {biggest} hosts on 127.0.0.10.., port {fleet.port}", flush=True)
            setup = Setup(fleet, forks_by_n, work, args.ansible_pipelining)
            for n in args.hosts:
                ansible_inventory(setup, n)
            series = run_all(setup, args.hosts, args.repeats, tools, warmup=not args.no_warmup)
    except BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(series, args.hosts, tools)
    load_after = loadavg()
    print(f"load average after: {load_after}")
    results = checks(series, args.hosts)
    print_checks(results)
    startup = import_cost()
    print(f"\nnote: a fresh interpreter importing upkeep.hosts.ssh+fanout takes {startup:.3f}s; it is NOT in Upkeep's "
          "timed region (Ansible's process start-up is in Ansible's).")
    path = save_results(args, series, results,
                         {"forks_by_hosts": {str(n): f for n, f in forks_by_n.items()},
                          "upkeep_import_seconds": round(startup, 3), "versions": versions(),
                          "loadavg_before": load_before, "loadavg_after": load_after})
    print(f"results: {path}")
    return 1 if args.strict and not all(c["pass"] for c in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
