"""Full security audit at scale: `security_audit` over N sshd hosts, beside Lynis `--quick` on one host, same run.

    PYTHONPATH=. .venv/bin/python -m benchmarks.security_audit [--hosts 100] [--forks 50] [--repeats 3]
                                                              [--roots srv usr-bin] [--feed-entries 20000]
                                                              [--vulnerable 12] [--peers lynis lynis-overlap]
                                                              [--no-lynis] [--no-warmup] [--verbose] [--strict]

Starts its own stack (Prefect server, SecantusDB as the monitoring store that keeps the findings, an sshd fleet of
N hosts on 127.0.0.10..) in a fresh 0755 temp dir. Every host's root has the security routines' inputs (seeded by
the stack: `sandbox.security.seed_security`: passwd, sudoers + sudoers.d, authorized_keys, `{root}/srv`, a host key
for `sshd -T`) and gets a copy of this machine's real dpkg status file (`{root}/var/lib/dpkg/status`); the
vulnerability feed is a synthesized OSV file of `--feed-entries` Debian entries, `--vulnerable` of them affecting
installed packages. One environment per `--roots` choice (the permission audit's roots: `srv` = `{root}/srv`;
`usr-bin` = `{root}/srv` + `/usr/bin`; `usr` = `{root}/srv` + `/usr`), each with its own findings in the store,
then (after one untimed warm-up of each side) `--repeats` rounds, side order rotated each round, of:

* `upkeep[<roots>]`: `security_audit(environment=..., config=VARIANT, approve=False)` in this process — wall of the
  call, and the flow run as the Prefect API records it (Running -> final state);
* `lynis`: `lynis audit system --quick --no-colors --quiet` on this machine (one host), as a fresh process;
* `lynis-overlap`: the same with `--tests-from-group` of the groups that overlap Upkeep's audit parts.

Every Upkeep run is checked in the store: every host audited, no part unread, the expected package findings.
Prints the medians, Upkeep's wall for N hosts, Lynis's for 1, the ratio per host and the target check
(Upkeep < 60 s for 100 hosts); writes benchmarks/results/security_audit-<UTC time>.json. Everything started is
stopped by PID in `finally` (also on SIGTERM / Ctrl-C). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from benchmarks._cpu import CpuMeter, tree_cpu
from benchmarks._fleet import scratch_dir
from benchmarks._report import begin_run, interrupt_on_sigterm, loadavg, write_results
from benchmarks.health_check import ENVIRONMENT, breakdown, flow_run, median, start_stack, stop_stack, task_runs, versions
from benchmarks.rolling_update import stage_seconds
from sandbox.sshd import USER

TARGET_SECONDS = 60.0
TARGET_HOSTS = 100
DEFAULT_FORKS = 50  # benchmarks/fanout_uptime.py at 100 hosts: min(N, 50)
ROOTS: dict[str, list[str]] = {"srv": ["{root}/srv"], "usr-bin": ["{root}/srv", "/usr/bin"], "usr": ["{root}/srv", "/usr"]}
MACHINE_STATUS = Path("/var/lib/dpkg/status")
STATUS_IN_ROOT = "var/lib/dpkg/status"  # {root}/var/lib/dpkg/status: the host's dpkg status, where dpkg keeps it
SCOPE = "security-audit"  # the findings store's scope of the flow (upkeep.routines.SECURITY_AUDIT.id)
LYNIS = ["audit", "system", "--quick", "--no-colors", "--quiet"]
#: Lynis's test groups that overlap the parts of Upkeep's audit (sshd, accounts and sudo, firewall, packages,
#: file permissions): the `lynis-overlap` peer runs only these.
LYNIS_OVERLAP = ["--tests-from-group", "ssh authentication firewalls ports_packages file_permissions"]
PEERS = {"lynis": LYNIS, "lynis-overlap": [*LYNIS, *LYNIS_OVERLAP]}


# -- inputs -----------------------------------------------------------------------------------------
def synth_feed(status: str, entries: int, vulnerable: int, seed: int = 17) -> list[dict[str, Any]]:
    """OSV entries in the shape of OSV's Debian export (DSA/DLA ids, CVE aliases, one `affected` per Debian release,
    an ECOSYSTEM range with the fixed version). Of `entries`: `vulnerable` name an installed (binary or source) package with a fix
    above its installed version (findings); 30 % name an installed package fixed at or before the installed version
    (read and compared, no finding); the rest name packages that are not installed (skipped by name). Every entry
    also lists Debian:11 (another release: skipped by ecosystem). Fixed seed: the same feed every run."""
    from upkeep.security.sources import dpkg_sources

    rnd = random.Random(seed)
    # the names an advisory may carry, at the version Upkeep compares: binary packages and the source packages they
    # were built from (Debian's OSV entries name sources)
    installed = sorted((name, version) for name, (version, _) in dpkg_sources(status).items())
    if vulnerable > len(installed):
        raise SystemExit(f"--vulnerable {vulnerable}: the dpkg status lists only {len(installed)} installed packages")
    hit = rnd.sample(installed, vulnerable)
    out: list[dict[str, Any]] = []
    for i in range(entries):
        if i < vulnerable:
            name, version = hit[i]
            fixed = f"{version}+deb12u{rnd.randint(1, 9)}"  # above the installed version: affected
        elif rnd.random() < 0.3:
            name, version = rnd.choice(installed)
            fixed = f"{version}~deb12u{rnd.randint(1, 9)}"  # '~' sorts before: fixed before the installed version
        else:
            name, fixed = f"synth-pkg{rnd.randrange(40000)}", f"{rnd.randint(0, 9)}.{rnd.randint(0, 40)}-{rnd.randint(1, 9)}"
        prefix = rnd.choice(("DSA", "DLA"))
        cves = [f"CVE-{rnd.randint(2019, 2026)}-{rnd.randint(1000, 59999)}" for _ in range(rnd.randint(1, 3))]
        out.append({
            "id": f"{prefix}-{3000 + i}-1", "aliases": cves, "modified": "2026-11-30T00:00:00Z",
            "summary": f"{name}: security update", "details": f"Several vulnerabilities were discovered in {name}.",
            **({"database_specific": {"severity": "high"}} if i % 4 == 0 else {}),
            "affected": [
                {"package": {"ecosystem": "Debian:12", "name": name},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]},
                {"package": {"ecosystem": "Debian:11", "name": name},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": f"{fixed}~deb11u1"}]}]},
            ],
        })
    return out


def seed_hosts(stack: Any, status: bytes) -> float:
    """A copy of this machine's dpkg status in each host's root (untimed). The stack has already seeded what the
    security routines read there (`sandbox.security.seed_security`: passwd, sudoers + sudoers.d, authorized_keys,
    `{root}/srv`, a host key for `sshd -T`)."""
    started = time.perf_counter()
    user = pwd.getpwnam(USER)
    for h in stack.fleet.hosts:
        if not (h.root / "sshd-audit.key").exists():
            raise SystemExit(f"{h.root}: not seeded for the security routines (sandbox.stack seeds them with "
                             "sandbox.security.seed_security)")
        path = h.root / STATUS_IN_ROOT
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(status)
        path.chmod(0o644)
        os.chown(path, user.pw_uid, user.pw_gid)
    return time.perf_counter() - started


def env_name(roots: str) -> str:
    return f"audit-{roots}"


def write_audit_inventory(stack: Any, feed: Path, choices: Sequence[str], forks: int) -> Path:
    """The stack's inventory with one environment per audit-roots choice (a copy of development: its own findings in
    the store), each with the `security` section and `sshd_conf` per host (the fleet's sshd config of that host)."""
    data = yaml.safe_load(stack.inventory_path.read_text())
    dev = data["environments"][ENVIRONMENT]
    confs = {h.name: str(stack.fleet.base / "keys" / f"{h.name}.conf") for h in stack.fleet.hosts}
    for h in dev["hosts"]:
        h.setdefault("vars", {})["sshd_conf"] = confs[h["name"]]
    dev["max_concurrency"] = forks
    envs = {}
    for choice in choices:
        env = yaml.safe_load(yaml.safe_dump(dev))  # a deep copy
        env["security"] = {
            "audit_roots": ROOTS[choice],
            "sshd": ["/usr/sbin/sshd", "-T", "-f", "{sshd_conf}", "-h", "{root}/sshd-audit.key"],
            "firewall": "none",
            "feed": {"source": str(feed), "release": "Debian:12", "dpkg_status": "{root}/" + STATUS_IN_ROOT},
            "access": {"passwd": "{root}/etc/passwd", "sudoers": ["{root}/etc/sudoers", "{root}/etc/sudoers.d"]},
        }
        envs[env_name(choice)] = env
    data["environments"] = envs
    path: Path = stack.base / "upkeep-bench-security-audit.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -- the sides --------------------------------------------------------------------------------------
class BenchError(RuntimeError):
    """A run did not audit every host completely: its timing would not be comparable."""


def run_upkeep(variant: Path, environment: str) -> tuple[float, dict[str, Any], Any]:
    """One security_audit flow run in this process (report only: approve=False never pauses)."""
    from flows.security_audit import security_audit

    started = time.perf_counter()
    state = security_audit(environment=environment, config=str(variant), approve=False, return_state=True)
    wall = time.perf_counter() - started
    if not state.is_completed():
        raise BenchError(f"security_audit ({environment}) ended {state.type.value}: {state.message}")
    return wall, state.result(), state.state_details.flow_run_id


def check_store(mongo_uri: str, environment: str, hosts: Sequence[str], vulnerable: int) -> dict[str, int]:
    """What the run kept: findings per source; every host must have its `vulnerable` package findings and no part
    may be unread (source `audit`)."""
    import pymongo

    fields = {"_id": 0, "source": 1, "host": 1, "title": 1, "detail": 1}
    client: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(mongo_uri) as client:
        docs: list[dict[str, Any]] = list(client["upkeep_monitoring"].security_findings.find(
            {"env": environment, "scope": SCOPE, "status": {"$ne": "fixed"}}, fields))
    by_source: dict[str, int] = {}
    for d in docs:
        by_source[d["source"]] = by_source.get(d["source"], 0) + 1
    unread = [d for d in docs if d["source"] == "audit"]
    if unread:
        raise BenchError(f"{environment}: {len(unread)} unread part(s), e.g. {unread[0]['host']}: "
                         f"{unread[0]['title']}: {unread[0].get('detail')}")
    pkg_hosts = {d["host"] for d in docs if d["source"] == "debian-osv"}
    if by_source.get("debian-osv", 0) != vulnerable * len(hosts) or (vulnerable and pkg_hosts != set(hosts)):
        raise BenchError(f"{environment}: {by_source.get('debian-osv', 0)} package findings on {len(pkg_hosts)} hosts, "
                         f"expected {vulnerable} on each of {len(hosts)}")
    return by_source


def run_lynis(lynis: str, peer: str) -> tuple[float, dict[str, Any]]:
    """`lynis audit system --quick --no-colors --quiet [--tests-from-group ...]` as a fresh process, its log and
    report in a scratch dir."""
    scratch = scratch_dir("upkeep-bench-lynis-")
    report = scratch / "lynis-report.dat"
    argv = [lynis, *PEERS[peer], "--log-file", str(scratch / "lynis.log"), "--report-file", str(report)]
    try:
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=scratch, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - started
        text = report.read_text() if report.exists() else ""
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if proc.returncode != 0 or "report_datetime_end=" not in text:
        raise BenchError(f"lynis exited {proc.returncode} (report complete: {'report_datetime_end=' in text}): "
                         f"{proc.stderr[-1500:]}")
    lines = text.splitlines()

    def values(key: str) -> list[str]:
        return [x.split("=", 1)[1] for x in lines if x.startswith(f"{key}=")]

    executed = (values("tests_executed") or [""])[0]
    skipped = (values("tests_skipped") or [""])[0]
    return wall, {"tests_executed": len([t for t in executed.split("|") if t]),
                  "tests_skipped": len([t for t in skipped.split("|") if t]),
                  "warnings": len(values("warning[]")), "suggestions": len(values("suggestion[]")),
                  "hardening_index": (values("hardening_index") or ["?"])[0],
                  "long_tests": [x for x in proc.stderr.splitlines() if "long execution" in x]}


def cpu_text(cpu: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())


def feed_costs(status: str, feed: list[dict[str, Any]], vulnerable: int) -> dict[str, float]:
    """Untimed diagnostic: what the package check costs the controller, as the audit task does it — the feed indexed
    once per task (`index_feed`), then per host the status parsed and the advisories of its packages compared; the
    first host with the version-comparison cache cold, the next ones warm (a fleet shares its versions)."""
    from upkeep.security import sources

    def best_ms(fn: Any) -> tuple[float, Any]:
        times, out = [], None
        for _ in range(3):
            t0 = time.perf_counter()
            out = fn()
            times.append((time.perf_counter() - t0) * 1000)
        return min(times), out

    index_ms, index = best_ms(lambda: sources.index_feed(feed, "Debian:12"))

    def check() -> list[Any]:
        return sources.debian_vulnerabilities(status, index, "probe", "Debian:12")

    sources.debian_version_compare.cache_clear()
    t0 = time.perf_counter()
    found = check()
    cold = (time.perf_counter() - t0) * 1000
    comparisons = sources.debian_version_compare.cache_info().misses
    if len(found) != vulnerable:
        raise BenchError(f"the synthesized feed gives {len(found)} findings on this machine's status, not {vulnerable}")
    warm, _ = best_ms(check)
    parse, installed = best_ms(lambda: sources.dpkg_sources(status))
    return {"index_ms": index_ms, "cold_host_ms": cold, "warm_host_ms": warm, "status_parse_ms": parse,
            "installed": len(installed), "comparisons": comparisons}


# -- main -------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--hosts", type=int, default=TARGET_HOSTS, help=f"sshd hosts (default {TARGET_HOSTS}, at most 240)")
    p.add_argument("--forks", type=int, default=DEFAULT_FORKS,
                   help=f"the environment's max_concurrency (default {DEFAULT_FORKS}, as fanout_uptime at 100 hosts)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each side (default 3)")
    p.add_argument("--roots", nargs="+", choices=list(ROOTS), default=["srv", "usr-bin"],
                   help="permission-audit roots, one Upkeep side each (default: srv usr-bin)")
    p.add_argument("--feed-entries", type=int, default=20000, help="OSV entries in the synthesized feed (default 20000)")
    p.add_argument("--vulnerable", type=int, default=12, help="of them, affecting an installed package (default 12)")
    p.add_argument("--peers", nargs="*", choices=list(PEERS), default=list(PEERS),
                   help="Lynis runs beside Upkeep (default: lynis lynis-overlap; none: no peer)")
    p.add_argument("--no-lynis", action="store_true", help="no peer (as `--peers` with nothing)")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run of each side")
    p.add_argument("--verbose", action="store_true", help="keep Prefect's console logs (default: warnings only)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target check fails")
    args = p.parse_args(argv)
    if not 1 <= args.hosts <= 240 or args.repeats < 1 or args.forks < 1 or args.vulnerable < 0 \
            or args.feed_entries < args.vulnerable:
        p.error("--hosts must be 1..240, --repeats and --forks positive, 0 <= --vulnerable <= --feed-entries")
    args.roots = list(dict.fromkeys(args.roots))
    args.peers = [] if args.no_lynis else list(dict.fromkeys(args.peers))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    lynis = shutil.which("lynis") or ("/usr/sbin/lynis" if Path("/usr/sbin/lynis").exists() else None)
    if lynis is None and args.peers:
        raise SystemExit("lynis not found: `UPKEEP_WITH_BENCH=1 bash sandbox/setup.sh` installs it (`make bench` does), "
                         "or run with --no-lynis")
    lynis_version = subprocess.run([lynis, "--version"], capture_output=True, text=True).stdout.strip() if lynis else "-"
    upkeep_sides = [f"upkeep[{r}]" for r in args.roots]
    sides = upkeep_sides + args.peers
    print(f"security_audit benchmark: {args.hosts} hosts, max_concurrency {args.forks}, {args.repeats} repeats"
          f"{'' if args.no_warmup else ' (+1 warm-up each side)'}; sides {sides}; Lynis {lynis_version}")
    for peer in args.peers:
        print(f"  {peer}: {' '.join(['lynis', *PEERS[peer]])}")
    load_before = begin_run(args.verbose)
    stack = None
    walls: dict[str, list[float]] = {s: [] for s in sides}
    runs: dict[str, list[float]] = {s: [] for s in upkeep_sides}
    cpus: dict[str, list[dict[str, float]]] = {s: [] for s in sides}
    samples: list[dict[str, Any]] = []
    try:
        stack = start_stack("upkeep-bench-sa-", args.hosts, ("prefect", "mongo", "sshd"))
        status = MACHINE_STATUS.read_bytes()
        seeded = seed_hosts(stack, status)
        feed = synth_feed(status.decode("utf-8", "replace"), args.feed_entries, args.vulnerable)
        feed_path = stack.base / "feed" / "debian-osv.json"
        feed_path.parent.mkdir(parents=True, exist_ok=True)
        feed_path.write_text(json.dumps(feed))
        feed_path.chmod(0o644)
        costs = feed_costs(status.decode("utf-8", "replace"), feed, args.vulnerable)
        print(f"  seeded {args.hosts} roots in {seeded:.1f}s: each a copy of this machine's dpkg status "
              f"({len(status) / 1024:.0f} KiB, {costs['installed']} packages); feed: {len(feed)} synthesized OSV entries "
              f"({feed_path.stat().st_size / 1e6:.1f} MB), {args.vulnerable} affecting installed packages", flush=True)
        print(f"  package check on this controller: the feed indexed once per task {costs['index_ms']:.0f} ms; the "
              f"first host {costs['cold_host_ms']:.0f} ms ({costs['comparisons']} version comparisons, cache cold), each "
              f"next host {costs['warm_host_ms']:.0f} ms (status parse {costs['status_parse_ms']:.0f} ms) x {args.hosts} "
              f"hosts = {costs['warm_host_ms'] * args.hosts / 1000:.1f} s", flush=True)
        variant = write_audit_inventory(stack, feed_path, args.roots, args.forks)
        assert stack.fleet is not None
        hosts = [h.name for h in stack.fleet.hosts]
        pids = {"prefect": [p.pid for p in stack.procs if p.name == "prefect"],
                "secantusdb": [p.pid for p in stack.procs if p.name == "secantusdb"]}
        meter = CpuMeter(stack.fleet.pids())

        def one(side: str, label: str, record: bool) -> None:
            before = {k: tree_cpu(v) for k, v in pids.items()}
            meter.start()
            extra: dict[str, Any] = {}
            if side in PEERS:
                assert lynis is not None
                wall, extra = run_lynis(lynis, side)
                said = (f"{extra['tests_executed']} tests executed, {extra['tests_skipped']} skipped, {extra['warnings']} "
                        f"warnings, {extra['suggestions']} suggestions, hardening index {extra['hardening_index']}")
            else:
                environment = env_name(side[len("upkeep["):-1])
                wall, result, fr_id = run_upkeep(variant, environment)
                by_source = check_store(stack.mongo_uri, environment, hosts, args.vulnerable)
                fr = flow_run(fr_id)
                extra = {"run_s": fr.total_run_time.total_seconds(), "stages_s": stage_seconds(fr_id),
                         "findings": result["findings"], "by_source": by_source, "flow_run_id": str(fr_id),
                         "tasks": breakdown(task_runs(fr_id))}
                said = (f"(run {extra['run_s']:.3f}s) stages " + ", ".join(f"{k} {v:.2f}s" for k, v in extra["stages_s"].items())
                        + f"; open findings {by_source}")
            time.sleep(0.3)  # the hosts' sshd children exit and are reaped
            controller, host_cpu = meter.stop()
            cpu = {"this process": controller, **{k: tree_cpu(v) - before[k] for k, v in pids.items()}, "sshd hosts": host_cpu}
            print(f"  {label:<12} {side:<16} {wall:7.3f}s  {said}\n{'':<31}CPU-s {cpu_text(cpu)}", flush=True)
            if record:
                walls[side].append(wall)
                cpus[side].append(cpu)
                if side in runs:
                    runs[side].append(extra["run_s"])
                samples.append({"side": side, "label": label, "wall": wall, "cpu_s": cpu, **extra})

        if not args.no_warmup:
            for side in sides:
                one(side, "warm-up", False)
        for r in range(args.repeats):
            k = r % len(sides)
            for side in sides[k:] + sides[:k]:  # rotated: no side always first or after the same one
                one(side, f"repeat {r + 1}/{args.repeats}", True)
        vers = {**versions(), "lynis": lynis_version,
                "openssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
                "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                         cwd=Path(__file__).resolve().parent.parent).stdout.strip()}
    except BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_stack(stack)
    load_after = loadavg()

    med = {s: median(w) for s, w in walls.items()}
    run_med = {s: median(x) for s, x in runs.items()}
    print(f"\n{'side':<18} {'median s':>9} {'min s':>8} {'max s':>8} {'flow run s':>11} {'hosts':>6} {'s per host':>11}")
    for s in sides:
        n = 1 if s in PEERS else args.hosts
        fr = f"{run_med[s]:>11.3f}" if s in run_med else f"{'-':>11}"
        print(f"{s:<18} {med[s]:>9.3f} {min(walls[s]):>8.3f} {max(walls[s]):>8.3f} {fr} {n:>6} {med[s] / n:>11.3f}")
    print("(upkeep: the in-process call, and the flow run as the Prefect API records it, Running -> final state; "
          "lynis: the process, on 1 host)")
    med_cpu = {s: {k: median([c[k] for c in cs]) for k in cs[0]} for s, cs in cpus.items()}
    for s in sides:
        print(f"  CPU-s per run, median, {s}: {cpu_text(med_cpu[s])}")
    ratios: dict[str, dict[str, float]] = {}
    for s in upkeep_sides:
        per_host = med[s] / args.hosts
        for peer in args.peers:
            ratios.setdefault(s, {})[peer] = med[peer] / per_host
            print(f"{s}: {med[s]:.3f}s for {args.hosts} hosts = {per_host:.3f}s per host; {peer}: {med[peer]:.3f}s for "
                  f"1 host -> {peer} / upkeep per host = {ratios[s][peer]:.1f}x")
    print(f"load average after: {load_after}")
    checks = []
    print("\ntargets:")
    for s in upkeep_sides:
        text = (f"{s}: full audit of {args.hosts} hosts < {TARGET_SECONDS:g} s"
                + ("" if args.hosts == TARGET_HOSTS else f" (target defined at {TARGET_HOSTS})"))
        ok = med[s] < TARGET_SECONDS
        print(f"  {'PASS' if ok else 'FAIL'}  {text}: median {med[s]:.3f}s (flow run {run_med[s]:.3f}s)")
        checks.append({"check": text, "measured": round(med[s], 3), "pass": ok})
    path = write_results("security_audit", {
        "hosts": args.hosts, "forks": args.forks, "repeats": args.repeats, "roots": {r: ROOTS[r] for r in args.roots},
        "feed_entries": args.feed_entries, "vulnerable": args.vulnerable, "feed_costs_ms": costs,
        "dpkg_status_bytes": len(status), "peers": {p: ["lynis", *PEERS[p]] for p in args.peers},
        "warmup": not args.no_warmup, "samples": samples, "median_s": med, "flow_run_median_s": run_med,
        "cpu_s_median": med_cpu, "ratio_peer_over_upkeep_per_host": ratios, "checks": checks, "versions": vers,
        "loadavg_before": load_before, "loadavg_after": load_after,
    })
    print(f"results: {path}")
    return 1 if args.strict and not all(c["pass"] for c in checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
