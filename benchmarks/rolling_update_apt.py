"""Rolling update on the real apt path: Upkeep's `system_update` vs an Ansible playbook (apt module), N hosts.

    PYTHONPATH=. .venv/bin/python -m benchmarks.rolling_update_apt [--hosts 20] [--forks 5] [--repeats 3]
                                                                   [--serial N] [--verbose]

Starts its own stack (Prefect server, an sshd fleet of N hosts) in a fresh 0755 temp dir; every host has an
isolated apt/dpkg root (`{root}/apt`) on the local repository of `sandbox/aptrepo.py` (DEMO_SUITES). Before every
run all roots are reset (`make_root`: em-tool 1.0, no package lists), untimed. Three sides, the same concurrency:

* `upkeep`:  `system_update(environment="development")` in this process; the inventory variant updates with apt alone
  (`sources: [{manager: apt, root: "{root}/apt"}]`, `backup_first: false`, `approvals: hold`, no smoke tests, no
  services) and `max_concurrency: FORKS`. Per host: pre (disk + dpkg-query), plan (apt-get update, apt list
  --upgradable), execute (apt-get install em-tool=1.2, dpkg-query), post (apt-get -s autoremove, apt-get clean);
* `hosts`:   the hosts' own work, no Prefect: the same `AptDriver` calls over fresh `SSHHost`s, stage by stage with
  the same `fan_out(max_concurrency=FORKS)` (as benchmarks/rolling_update.py's `plain` side);
* `ansible`: `ansible-playbook -f FORKS benchmarks/ansible/rolling_update_apt.yml` as a fresh process: apt module
  `name=em-tool=1.2 update_cache=yes only_upgrade=yes`, then `autoremove=yes clean=yes`, APT_CONFIG per host.

After every run each root must have em-tool 1.2 installed and the machine's own dpkg status must be unchanged.
Prints the medians, the ratio upkeep/ansible (the in-process call, against ansible-playbook's whole process) and the
orchestration per host-stage = (flow run − hosts) / (N × 4 stages), target ≤ 15 ms; the flow run is Running → final state
as the Prefect API records it (the call's extra, flow-run creation and a 0–1 s heartbeat join, is per run; shown too).
Everything started is stopped by PID in `finally`. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._cpu import CpuMeter, tree_cpu
from benchmarks._fleet import scratch_dir
from benchmarks._report import begin_run, interrupt_on_sigterm, loadavg, target_check, write_results
from benchmarks.fanout_uptime import ansible_env, close_control_masters
from benchmarks.health_check import ENVIRONMENT, flow_run, median, start_stack, stop_stack, versions, write_variant
from benchmarks.rolling_update import cpu_text, run_flow, stage_seconds
from sandbox.sshd import USER

PACKAGE, VERSION = "em-tool", "1.2"  # DEMO_SUITES: 1.0 installed, 1.2 in stable-security (no approval needed)
STAGES = ("pre", "plan", "execute", "post")
TARGET_MS = 15.0
SIDES = ("upkeep", "hosts", "ansible")
PLAYBOOK = Path(__file__).resolve().parent / "ansible" / "rolling_update_apt.yml"
ANSIBLE_VENV = Path(os.environ.get("UPKEEP_ANSIBLE_VENV", "/var/tmp/upkeep-ansible"))
MACHINE_STATUS = Path("/var/lib/dpkg/status")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def ansible_playbook() -> Path:
    """ansible-playbook beside this interpreter (the `bench` extra: `make bench`), else in $UPKEEP_ANSIBLE_VENV."""
    for candidate in (Path(sys.executable).parent / "ansible-playbook", ANSIBLE_VENV / "bin" / "ansible-playbook"):
        if candidate.exists():
            return candidate
    raise SystemExit(f"ansible-playbook not found beside {sys.executable} nor in {ANSIBLE_VENV}/bin: `make bench` "
                     "installs it (the `bench` extra: pip install -e '.[bench]') and python3-apt, which the targets need "
                     "(or point UPKEEP_ANSIBLE_VENV at a venv that has ansible-core)")


def apt_conf(root: Path) -> str:
    """`root_options(root, privileged=False)` written as an apt.conf (for APT_CONFIG): Upkeep's settings. apt reads
    APT_CONFIG *before* the machine's apt.conf.d (Upkeep's `-o` come after it), and with `Dir` moved it would look
    for the parts in the root: they are named absolutely, so both sides end with the same `apt-config dump`."""
    from upkeep.packages.apt import root_options

    scalars: list[str] = []
    lists: dict[str, list[str]] = {}
    for option in root_options(str(root), privileged=False)[1::2]:  # "-o", "Key=value" pairs
        key, value = option.split("=", 1)
        if key.endswith("::"):
            lists.setdefault(key[:-2], []).append(f'"{value}";')
        else:
            scalars.append(f'{key} "{value}";')
    scalars += ['Dir::Etc::parts "/etc/apt/apt.conf.d/";', 'Dir::Etc::main "/etc/apt/apt.conf";']
    return "\n".join([*scalars, *(f"{key} {{ {' '.join(items)} }};" for key, items in lists.items())]) + "\n"


def machine_digest() -> str:
    return hashlib.sha256(MACHINE_STATUS.read_bytes()).hexdigest()


class Fleet:
    """The stack's hosts and their apt roots: reset before a run, checked after it."""

    def __init__(self, stack: Any, work: Path) -> None:
        from sandbox.aptrepo import DEMO_SUITES, build_repo

        self.hosts = stack.fleet.hosts
        self.repo = build_repo(stack.base / "aptrepo-demo", DEMO_SUITES)
        self.roots = {h.name: h.root / "apt" for h in self.hosts}
        self.machine = machine_digest()
        user = pwd.getpwnam(USER)
        self.owner = (user.pw_uid, user.pw_gid)
        self.inventory = work / "ansible-inventory.ini"
        ssh_args = f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={stack.fleet.known_hosts}"
        self.inventory.write_text("\n".join([
            "[fleet]", *(f"{h.name} ansible_host={h.address} ansible_port={h.port} apt_root={self.roots[h.name]}"
                         for h in self.hosts),
            "", "[all:vars]", f"ansible_user={USER}",
            f"ansible_ssh_private_key_file={stack.fleet.client_key}", f"ansible_ssh_common_args='{ssh_args}'",
            "ansible_python_interpreter=/usr/bin/python3", ""]))

    def reset(self) -> float:
        from sandbox.aptrepo import INSTALLED, make_root

        started = time.perf_counter()
        for root in self.roots.values():
            make_root(root, self.repo, self.owner)
            (root / "apt.conf").write_text(apt_conf(root))
        self.check("reset", INSTALLED[PACKAGE])
        return time.perf_counter() - started

    def check(self, side: str, version: str = VERSION) -> None:
        """Every root has `version` installed; the machine's own dpkg database is untouched."""
        from sandbox.standin import dpkg_installed

        got = {n: dpkg_installed((r / "var/lib/dpkg/status").read_text()).get(PACKAGE) for n, r in self.roots.items()}
        bad = {n: v for n, v in got.items() if v != version}
        if bad:
            raise RuntimeError(f"{side}: {len(bad)} root(s) without {PACKAGE} {version}: {dict(list(bad.items())[:3])}")
        if machine_digest() != self.machine:
            raise RuntimeError(f"{side}: the machine's own {MACHINE_STATUS} changed")


# -- the sides --------------------------------------------------------------------------------------
def run_hosts(variant: Path) -> tuple[float, dict[str, float]]:
    """The flow's per-host apt work, stage by stage, no Prefect: wall seconds and wall per stage."""
    from upkeep.config import load_inventory
    from upkeep.config.render import host_path
    from upkeep.decisions.disk import disk_verdicts
    from upkeep.errors import UpkeepError
    from upkeep.hosts.fanout import fan_out
    from upkeep.hosts.pool import build_host
    from upkeep.packages import AptDriver, in_scope, split_plan

    started = time.perf_counter()
    inv = load_inventory(variant)  # timed: the flow run loads it too
    env = inv.environment(ENVIRONMENT)
    (src,) = env.updates.sources
    cfgs = {h.name: h for h in env.hosts}
    hosts = {n: build_host(c, inv.ssh) for n, c in cfgs.items()}
    drivers = {n: AptDriver(h, simulate_only=False, root=host_path(src.root or "", cfgs[n], "root"),
                            cache_valid_time=src.cache_valid_time.total_seconds(), autoremove=src.autoremove, clean=src.clean)
               for n, h in hosts.items()}
    walls: dict[str, float] = {}

    def stage(name: str, action: Callable[[AptDriver], Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        result = fan_out(drivers, action, max_concurrency=env.max_concurrency, max_errors=env.max_errors).raise_on_failure()
        walls[name] = time.perf_counter() - t0
        return {n: o.value for n, o in result.succeeded.items()}

    def pre(d: AptDriver) -> dict[str, str]:
        if not all(v.ok for v in disk_verdicts(d.host.resources(), env.updates.min_free_percent)):
            raise UpkeepError(f"{d.host.name}: low disk")
        return d.installed()

    def plan(d: AptDriver) -> list[Any]:
        d.refresh()
        return in_scope(d.upgradable(), "all")

    def execute(d: AptDriver) -> dict[str, str]:
        chosen, _held = split_plan(plans[d.host.name], [])
        d.apply(chosen)
        return d.installed([x.name for x in chosen])

    try:
        stage("pre", pre)
        plans = stage("plan", plan)
        stage("execute", execute)
        stage("post", lambda d: d.cleanup())
    finally:
        for h in hosts.values():
            h.close()
    return time.perf_counter() - started, walls


def run_ansible(playbook: Path, fleet: Fleet, forks: int, serial: int | None) -> tuple[float, str]:
    """The playbook as a fresh process (its start-up timed); every host must end ok=2, failed=0."""
    scratch = scratch_dir("upkeep-bench-ansible-")
    argv = [str(playbook), "-i", str(fleet.inventory), "-f", str(forks), str(PLAYBOOK), "-e", f"em_tool_version={VERSION}",
            *(["-e", f"rollout_serial={serial}"] if serial else [])]
    try:
        started = time.perf_counter()
        proc = subprocess.run(argv, env=ansible_env(scratch, False), cwd=scratch, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - started
    finally:
        close_control_masters(scratch / "cp")
        shutil.rmtree(scratch, ignore_errors=True)
    recap = {m[1]: tuple(int(x) for x in m.groups()[1:]) for m in RECAP.finditer(proc.stdout)}
    good = [h for h, (ok, changed, unreachable, failed) in recap.items() if ok == 2 and changed >= 1 and not unreachable + failed]
    if proc.returncode != 0 or len(good) != len(fleet.hosts):
        raise RuntimeError(f"ansible-playbook exited {proc.returncode}, {len(good)}/{len(fleet.hosts)} hosts ok:\n"
                           f"{proc.stdout[-2500:]}\n{proc.stderr[-1500:]}")
    return wall, f"{len(good)} hosts ok=2 failed=0"


# -- main -------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--hosts", type=int, default=20, help="sshd hosts (default 20)")
    p.add_argument("--forks", type=int, default=5, help="Upkeep's max_concurrency = Ansible's forks (default 5)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each side (default 3)")
    p.add_argument("--serial", type=int, default=None, help="Ansible `serial` batches (default none: one batch)")
    p.add_argument("--verbose", action="store_true", help="keep Prefect's console logs (default: warnings only)")
    args = p.parse_args(argv)
    if not 1 <= args.hosts <= 240 or args.repeats < 1 or args.forks < 1:
        p.error("--hosts must be 1..240, --repeats and --forks positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    playbook = ansible_playbook()
    ansible_version = subprocess.run([str(playbook), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"rolling_update_apt benchmark: {args.hosts} hosts, forks/max_concurrency {args.forks}, {args.repeats} repeats "
          f"(+1 warm-up each side); {ansible_version}, serial {args.serial or 'none (one batch)'}")
    load_before = begin_run(args.verbose)
    stack = None
    walls: dict[str, list[float]] = {s: [] for s in SIDES}
    runs: list[float] = []
    stage_walls: dict[str, list[dict[str, float]]] = {"upkeep": [], "hosts": []}
    cpus: dict[str, list[dict[str, float]]] = {s: [] for s in SIDES}
    samples: list[dict[str, Any]] = []
    try:
        stack = start_stack("upkeep-bench-rua-", args.hosts, ("prefect", "sshd"))

        def change(env: dict[str, Any]) -> None:
            env["max_concurrency"] = args.forks
            env["updates"] = {"sources": [{"manager": "apt", "root": "{root}/apt"}], "min_free_percent": 5,
                              "backup_first": False, "approvals": "hold", "on_unreachable": "stop", "smoke_tests": []}

        variant = write_variant(stack, "upkeep-bench-update-apt.yaml", change)
        fleet = Fleet(stack, stack.base)
        server_pids = [p.pid for p in stack.procs if p.name == "prefect"]
        assert stack.fleet is not None
        meter = CpuMeter(stack.fleet.pids())

        def one(side: str, label: str, record: bool) -> None:
            reset_s = fleet.reset()
            server0 = tree_cpu(server_pids)
            meter.start()
            extra: dict[str, Any] = {}
            if side == "upkeep":
                wall, result, fr_id = run_flow(variant)
                extra = {"run_s": flow_run(fr_id).total_run_time.total_seconds(), "stages_s": stage_seconds(fr_id),
                         "flow_run_id": str(fr_id)}
                said = (f"(run {extra['run_s']:.3f}s) stages " + ", ".join(f"{k} {v:.2f}s" for k, v in extra["stages_s"].items())
                        + f"; {len(result)} hosts updated")
            elif side == "hosts":
                wall, extra["stages_s"] = run_hosts(variant)
                said = "stages " + ", ".join(f"{k} {v:.2f}s" for k, v in extra["stages_s"].items())
            else:
                wall, said = run_ansible(playbook, fleet, args.forks, args.serial)
            time.sleep(0.3)  # let the server and the hosts finish what the run sent them
            controller, hosts_cpu = meter.stop()
            cpu = {"client": controller, "server": tree_cpu(server_pids) - server0, "hosts": hosts_cpu}
            fleet.check(side)
            print(f"  {label:<12} {side:<8} {wall:7.3f}s  {said}  (reset {reset_s:.1f}s)\n{'':<23}CPU-s {cpu_text(cpu)}",
                  flush=True)
            if record:
                walls[side].append(wall)
                cpus[side].append(cpu)
                if side in stage_walls:
                    stage_walls[side].append(extra["stages_s"])
                if side == "upkeep":
                    runs.append(extra["run_s"])
                samples.append({"side": side, "label": label, "wall": wall, "cpu_s": cpu, **extra})

        for side in SIDES:
            one(side, "warm-up", False)
        for r in range(args.repeats):
            for side in SIDES[r % 3:] + SIDES[:r % 3]:  # rotated: no side always first or after the same one
                one(side, f"repeat {r + 1}/{args.repeats}", True)
        vers = {**versions(), "ansible": ansible_version}
    finally:
        stop_stack(stack)
    load_after = loadavg()

    med = {s: median(w) for s, w in walls.items()}
    run_med = median(runs)
    host_stages = args.hosts * len(STAGES)
    per_hs = (run_med - med["hosts"]) / host_stages * 1000
    per_hs_call = (med["upkeep"] - med["hosts"]) / host_stages * 1000
    print(f"\n{'side':<24} {'median s':>9} {'min s':>8} {'max s':>8}")
    for s in SIDES:
        print(f"{s:<24} {med[s]:>9.3f} {min(walls[s]):>8.3f} {max(walls[s]):>8.3f}")
    print(f"{'upkeep: the flow run':<24} {run_med:>9.3f} {min(runs):>8.3f} {max(runs):>8.3f}   (Prefect API: Running -> final)")
    print(f"ratio upkeep/ansible = {med['upkeep']:.3f} / {med['ansible']:.3f} = {med['upkeep'] / med['ansible']:.2f} "
          f"(Ansible takes {med['ansible'] / med['upkeep']:.2f}x Upkeep's time; the flow run instead of the call: "
          f"{run_med / med['ansible']:.2f})")
    print(f"orchestration per host-stage = (flow run - hosts) / ({args.hosts} hosts x {len(STAGES)} stages) = "
          f"({run_med:.3f} - {med['hosts']:.3f}) / {host_stages} = {per_hs:.1f} ms")
    rounds: dict[str, dict[str, Any]] = {}
    for x in samples:
        rounds.setdefault(x["label"], {})[x["side"]] = x
    paired = [(r["upkeep"]["run_s"] - r["hosts"]["wall"]) / host_stages * 1000 for r in rounds.values()]
    print(f"  the same per round (flow run - hosts of the same round), median: {median(paired):.1f} ms "
          f"({', '.join(f'{x:.1f}' for x in paired)})")
    print(f"  with the in-process call instead of the run: {per_hs_call:.1f} ms (per run, not per host-stage: flow-run creation "
          "and the join of Prefect's heartbeat thread, which sleeps in 1 s steps)")
    stage_med = {side: {st: median([x.get(st, 0.0) for x in xs]) for st in STAGES} for side, xs in stage_walls.items()}
    print("  per stage, median s upkeep (report) vs hosts -> ms per host: " + "; ".join(
        f"{st} {stage_med['upkeep'][st]:.2f} vs {stage_med['hosts'][st]:.2f} -> "
        f"{(stage_med['upkeep'][st] - stage_med['hosts'][st]) / args.hosts * 1000:.0f}" for st in STAGES))
    med_cpu = {side: {k: median([c[k] for c in cs]) for k in ("client", "server", "hosts")} for side, cs in cpus.items()}
    print("  CPU-s per run (median; the CPUs are shared by all): " + "; ".join(f"{s}: {cpu_text(c)}" for s, c in med_cpu.items()))
    print(f"load average after: {load_after}")
    check = target_check(f"orchestration per host-stage <= {TARGET_MS:g} ms ({args.hosts} hosts, forks {args.forks})",
                         round(per_hs, 2), per_hs <= TARGET_MS, f"measured {per_hs:.1f} ms (the call: {per_hs_call:.1f} ms)")
    path = write_results("rolling_update_apt", {
        "hosts": args.hosts, "forks": args.forks, "serial": args.serial, "repeats": args.repeats, "package": PACKAGE,
        "version": VERSION, "samples": samples, "median_s": med, "flow_run_median_s": run_med,
        "ratio_upkeep_over_ansible": med["upkeep"] / med["ansible"], "orchestration_ms_per_host_stage": per_hs,
        "orchestration_ms_per_host_stage_call": per_hs_call,
        "orchestration_ms_per_host_stage_by_round": paired, "stage_median_s": stage_med, "cpu_s_median": med_cpu,
        "checks": [check], "versions": vers, "loadavg_before": load_before, "loadavg_after": load_after,
    })
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
