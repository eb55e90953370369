"""TLS checks of N endpoints: Upkeep's `fetch_chain` + `judge` through `fan_out`, beside `openssl s_client` and bare
Python `ssl`, at the same concurrency.

    PYTHONPATH=. .venv/bin/python -m benchmarks.tls_endpoints [--endpoints 100] [--standins 100] [--concurrency 32]
                                                             [--repeats 5] [--key ec256|rsa2048] [--stores local system]
                                                             [--tools upkeep openssl python-ssl] [--no-warmup] [--strict]

Starts `--standins` Event Manager stand-ins (`python -m sandbox.standin --tls-port P --tls-dir DIR`, the sandbox's
HTTPS servers) on 127.0.0.10.. (one TLS port), each serving its share of the N endpoints' certificates by SNI
(`svc<i>.upkeep.test`, issued by a fresh local CA with `sandbox.tls`; every 10th with 10 days left of 90, i.e. due
for renewal). Then, after one untimed warm-up of each side, `--repeats` rounds (side order rotated) of each tool
with each trust store — `local`: the check's `ca_file` is the local CA alone (`-CAfile` for openssl); `system`: no
`ca_file`, the default store, i.e. the system's CA bundle with the local CA appended (`SSL_CERT_FILE`), what a check
of a publicly issued certificate loads:

* `upkeep`:     `fan_out(endpoints, check, max_concurrency=C)`, `check` = what `upkeep.security.certcheck.observe`
  does for an endpoint: `fetch_chain(address, port, server_name, ca_file, 5.0)` then `judge(facts, server_name, now)`
  into a `CertResult` (as `tasks/security.py` `check_certificates`, C = 32);
* `openssl`:    `openssl s_client -connect ADDR:PORT -servername NAME [-CAfile CA] -verify_return_error </dev/null`
  per endpoint, C at once (a thread pool of subprocess.run);
* `python-ssl`: the floor: one shared `ssl.create_default_context(cafile=CA or None)`, connect, handshake, the peer's
  DER, close; C threads.

Every run is checked: each endpoint's served certificate is the one issued for its name (SNI honoured), its chain
verified, and Upkeep's verdicts say "renewal due" exactly for the due ones. Prints medians, ratios and the target check
(Upkeep < 5 s for 100 endpoints); writes benchmarks/results/tls_endpoints-<UTC time>.json. The stand-ins are stopped
by PID in `finally` (also on SIGTERM / Ctrl-C). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks._cpu import controller_cpu, tree_cpu
from benchmarks._fleet import make_base
from benchmarks._report import SampleStats, interrupt_on_sigterm, loadavg, write_results
from sandbox.procs import Proc, free_port, port_open, spawn, wait_until

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("upkeep", "openssl", "python-ssl")
STORES = ("local", "system")
TARGET_SECONDS = 5.0
TARGET_ENDPOINTS = 100
CONCURRENCY = 32  # tasks/security.py check_certificates: fan_out(..., max_concurrency=32)
TIMEOUT = 5.0  # CertificateCheck.timeout's default
FIRST_OCTET = 10


class BenchError(RuntimeError):
    """A tool did not read every endpoint's right certificate: its timing would not be comparable."""


@dataclass(frozen=True)
class Endpoint:
    name: str  # the server name (SNI) and the check's name
    address: str
    port: int
    fingerprint: str  # SHA-256 of the DER issued for it: what must be served
    due: bool  # issued with 10 days left of 90: judge must say renewal due


@dataclass(frozen=True)
class Sample:
    wall: float
    client_cpu: float  # this process and its reaped children (the openssl processes)
    server_cpu: float  # the stand-ins


@dataclass
class Series(SampleStats):
    tool: str
    store: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def label(self) -> str:
        return label(self.tool, self.store)


def label(tool: str, store: str) -> str:
    return tool if store == "local" else f"{tool}+sys"


# -- servers ----------------------------------------------------------------------------------------
def der_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER, as `CertFacts.fingerprint`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256()).hex()


def issue_all(base: Path, n: int, standins: int, key: str) -> tuple[Path, list[list[tuple[str, bytes, bytes, bool]]]]:
    """A fresh CA in `base/ca`, and per stand-in the (name, cert, key, due) it serves (round robin)."""
    from sandbox.tls import issue, make_ca

    ca = make_ca(base / "ca")
    now = datetime.now(UTC).replace(microsecond=0)
    per: list[list[tuple[str, bytes, bytes, bool]]] = [[] for _ in range(standins)]
    for i in range(n):
        due = i % 10 == 9
        start = now - timedelta(days=80 if due else 20)
        name = f"svc{i + 1}.upkeep.test"
        cert, pem_key = issue(ca, [name], start, start + timedelta(days=90), key=key)  # type: ignore[arg-type]
        per[i % standins].append((name, cert, pem_key, due))
    return ca.cert_path, per


def start_standins(base: Path, per: list[list[tuple[str, bytes, bytes, bool]]]) -> tuple[list[Proc], list[Endpoint]]:
    """One stand-in per list of `per` on 127.0.0.10.., all on one TLS port; the endpoints they serve."""
    from sandbox.tls import install

    procs: list[Proc] = []
    endpoints: list[Endpoint] = []
    tls_port = free_port(f"127.0.0.{FIRST_OCTET}")
    http_port = free_port(f"127.0.0.{FIRST_OCTET}")
    try:
        for j, certs in enumerate(per):
            address = f"127.0.0.{FIRST_OCTET + j}"
            tls_dir = base / f"standin{j + 1}" / "tls"
            for name, cert, key, due in certs:
                install(tls_dir, name, cert, key)
                endpoints.append(Endpoint(name, address, tls_port, der_fingerprint(cert), due))
            install(tls_dir, "default", certs[0][1], certs[0][2])
            argv = [sys.executable, "-m", "sandbox.standin", "--host", address, "--port", str(http_port),
                    "--log-file", str(base / f"standin{j + 1}" / "event-manager.log"),
                    "--tls-port", str(tls_port), "--tls-dir", str(tls_dir)]
            procs.append(spawn(f"standin{j + 1}", argv, base / "logs" / f"standin{j + 1}.log", cwd=ROOT,
                               env={"PYTHONPATH": str(ROOT)}))
        for j, proc in enumerate(procs):
            up = partial(port_open, f"127.0.0.{FIRST_OCTET + j}", tls_port)
            wait_until(up, timeout=60, what=f"stand-in {j + 1} TLS", proc=proc)
    except BaseException:
        stop_all(procs)
        raise
    endpoints.sort(key=lambda e: int(e.name[3:].split(".")[0]))
    return procs, endpoints


def stop_all(procs: Sequence[Proc]) -> None:
    for p in procs:
        p.stop(timeout=5)


# -- the tools --------------------------------------------------------------------------------------
def run_upkeep(endpoints: Sequence[Endpoint], cafile: Path | None, concurrency: int) -> list[Any]:
    """fan_out over the endpoints: fetch_chain + judge into a CertResult, as certcheck.observe does for a port."""
    from upkeep.errors import HostError, SecurityInputError
    from upkeep.hosts.fanout import fan_out
    from upkeep.security.certcheck import CertResult
    from upkeep.security.certs import fetch_chain, judge

    now = datetime.now(UTC)

    def check(e: Endpoint) -> CertResult:
        target = f"{e.address}:{e.port} (SNI {e.name})"
        try:
            facts = fetch_chain(e.address, e.port, e.name, str(cafile) if cafile else None, TIMEOUT)
        except (OSError, HostError, SecurityInputError) as exc:
            return CertResult(e.name, e.name, target, None, None, str(exc) or type(exc).__name__)
        return CertResult(e.name, e.name, target, facts, judge(facts, e.name, now))

    result = fan_out({e.name: e for e in endpoints}, check, max_concurrency=concurrency)
    by_name = result.returned()
    bad = []
    for e in endpoints:
        r = by_name.get(e.name)
        if r is None or r.facts is None or r.verdict is None:
            bad.append((e.name, r.error if r else result.outcomes[e.name].message))
        elif r.facts.fingerprint != e.fingerprint or not r.facts.chain_ok or r.verdict.renew != e.due \
                or r.verdict.ok == e.due:
            bad.append((e.name, r.describe()))
    if bad:
        raise BenchError(f"upkeep: {len(bad)}/{len(endpoints)} endpoints wrong; first: {bad[:3]}")
    return list(by_name.values())


SUBJECT = re.compile(r"^subject=.*CN\s*=\s*([^,\s]+)", re.M)


def run_openssl(endpoints: Sequence[Endpoint], cafile: Path | None, concurrency: int) -> None:
    """`openssl s_client … </dev/null` per endpoint, C at once; exit 0, chain verified, the right subject."""
    def one(e: Endpoint) -> tuple[Endpoint, subprocess.CompletedProcess[str]]:
        argv = ["openssl", "s_client", "-connect", f"{e.address}:{e.port}", "-servername", e.name,
                *(["-CAfile", str(cafile)] if cafile else []), "-verify_return_error"]
        return e, subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        done = list(pool.map(one, endpoints))
    bad = []
    for e, p in done:
        subject = SUBJECT.search(p.stdout)
        if p.returncode != 0 or "Verify return code: 0 (ok)" not in p.stdout or not subject or subject[1] != e.name:
            bad.append((e.name, p.returncode, (p.stderr or p.stdout).strip()[-200:]))
    if bad:
        raise BenchError(f"openssl: {len(bad)}/{len(endpoints)} endpoints wrong; first: {bad[:3]}")


def run_python_ssl(endpoints: Sequence[Endpoint], cafile: Path | None, concurrency: int) -> None:
    """The floor: one shared verifying context; connect, handshake, the peer's DER, close; C threads."""
    ctx = ssl.create_default_context(cafile=str(cafile) if cafile else None)

    def one(e: Endpoint) -> str:
        with socket.create_connection((e.address, e.port), timeout=TIMEOUT) as sock, \
                ctx.wrap_socket(sock, server_hostname=e.name) as tls:
            der = tls.getpeercert(binary_form=True)
        return hashlib.sha256(der or b"").hexdigest()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        got = list(pool.map(one, endpoints))
    bad = [e.name for e, fp in zip(endpoints, got, strict=True) if fp != e.fingerprint]
    if bad:
        raise BenchError(f"python-ssl: {len(bad)}/{len(endpoints)} endpoints served another certificate: {bad[:3]}")


RUNNERS: dict[str, Callable[[Sequence[Endpoint], Path | None, int], Any]] = {
    "upkeep": run_upkeep, "openssl": run_openssl, "python-ssl": run_python_ssl}


# -- schedule, report -------------------------------------------------------------------------------
def system_bundle(base: Path, cafile: Path) -> Path:
    """The system's CA bundle with the local CA appended: the default store of the `system` runs (SSL_CERT_FILE)."""
    paths = ssl.get_default_verify_paths()
    system = Path(paths.cafile or paths.openssl_cafile)
    bundle = base / "system-plus-local-ca.pem"
    bundle.write_bytes(system.read_bytes() + b"\n" + cafile.read_bytes())
    return bundle


def measured(tool: str, store: str, endpoints: Sequence[Endpoint], cafile: Path, bundle: Path, concurrency: int,
             server_pids: list[int]) -> Sample:
    """One run of `tool`; with store `system` no CA file is given and OpenSSL's default file is `bundle`."""
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(bundle)  # read by OpenSSL when a default store is loaded (here, and openssl's)
    try:
        c0, s0 = controller_cpu(), tree_cpu(server_pids)
        started = time.perf_counter()
        RUNNERS[tool](endpoints, cafile if store == "local" else None, concurrency)
        wall = time.perf_counter() - started
    finally:
        if saved is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = saved
    time.sleep(0.2)  # the stand-ins' connection threads finish
    return Sample(wall, controller_cpu() - c0, tree_cpu(server_pids) - s0)


def show(when: str, side: str, n: int, s: Sample) -> None:
    print(f"  {when:<12} {side:<15} {n:>4} endpoints  {s.wall:7.3f}s   cpu: client {s.client_cpu:6.2f}s, "
          f"servers {s.server_cpu:6.2f}s", flush=True)


def context_costs(cafile: Path, bundle: Path) -> dict[str, float]:
    """Untimed diagnostic: ms of one `ssl.create_default_context` — what fetch_chain builds per endpoint — with the
    local CA file and with the default store (a check without `ca_file`)."""
    def best(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        return min(times)

    return {"ca_file_ms": best(lambda: ssl.create_default_context(cafile=str(cafile))),
            "system_store_ms": best(lambda: ssl.create_default_context(cafile=str(bundle))),
            "system_certs": bundle.read_text().count("BEGIN CERTIFICATE")}


def versions() -> dict[str, str]:
    import cryptography

    openssl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    return {"python": platform.python_version(), "python_ssl": ssl.OPENSSL_VERSION, "cryptography": cryptography.__version__,
            "openssl_cli": openssl, "cpus": str(os.cpu_count()), "platform": platform.platform(),
            "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     cwd=ROOT).stdout.strip()}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--endpoints", type=int, default=TARGET_ENDPOINTS, help=f"TLS endpoints (default {TARGET_ENDPOINTS})")
    p.add_argument("--standins", type=int, default=None,
                   help="stand-in processes serving them, on as many addresses (default: one per endpoint, at most 240)")
    p.add_argument("--concurrency", type=int, default=CONCURRENCY,
                   help=f"endpoints at once, every tool (default {CONCURRENCY}, as check_certificates)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each tool (default 5)")
    p.add_argument("--key", choices=("ec256", "rsa2048"), default="ec256", help="the endpoints' key type (default ec256)")
    p.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS), help="tools to run (default: all)")
    p.add_argument("--stores", nargs="+", choices=STORES, default=list(STORES),
                   help="trust stores, each tool with each (default: local system)")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up run of each tool")
    p.add_argument("--strict", action="store_true", help="exit 1 when the target check fails")
    args = p.parse_args(argv)
    args.standins = args.standins or min(args.endpoints, 240)
    if args.endpoints < 1 or not 1 <= args.standins <= min(args.endpoints, 240) or args.repeats < 1 or args.concurrency < 1:
        p.error("--endpoints, --repeats and --concurrency must be positive; --standins 1..min(endpoints, 240)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    if shutil.which("openssl") is None and "openssl" in args.tools:
        raise SystemExit("openssl not found (apt-get install openssl), or leave it out with --tools")
    sides = [(t, st) for st in STORES if st in args.stores for t in TOOLS if t in args.tools]
    n = args.endpoints
    print(f"tls_endpoints: {n} endpoints on {args.standins} stand-in(s), key {args.key}, concurrency {args.concurrency} "
          f"(every tool), {args.repeats} repeats, sides {[label(*x) for x in sides]} (+sys: the system's trust store)")
    load_before = loadavg()
    print(f"  load average before: {load_before} on {os.cpu_count()} CPUs", flush=True)
    base = make_base("upkeep-bench-tls-")
    procs: list[Proc] = []
    series = {x: Series(*x) for x in sides}
    try:
        started = time.perf_counter()
        cafile, per = issue_all(base, n, args.standins, args.key)
        bundle = system_bundle(base, cafile)
        procs, endpoints = start_standins(base, per)
        costs = context_costs(cafile, bundle)
        print(f"  {len(procs)} stand-ins up in {time.perf_counter() - started:.1f}s (certificates issued, servers started), "
              f"TLS port {endpoints[0].port}; {sum(e.due for e in endpoints)} endpoints due for renewal", flush=True)
        server_pids = [p.pid for p in procs]

        def one(when: str, side: tuple[str, str]) -> Sample:
            sample = measured(*side, endpoints, cafile, bundle, args.concurrency, server_pids)
            show(when, label(*side), n, sample)
            return sample

        if not args.no_warmup:
            for side in sides:
                one("warm-up", side)
        for r in range(args.repeats):
            k = r % len(sides)
            for side in sides[k:] + sides[:k]:  # rotated: no side always first or after the same one
                series[side].samples.append(one(f"repeat {r + 1}/{args.repeats}", side))
    except BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        stop_all(procs)
        shutil.rmtree(base, ignore_errors=True)
    load_after = loadavg()

    print(f"\n{'side':<15} {'endpoints':>9} {'median s':>9} {'min s':>8} {'ms/endpoint':>12} {'side/upkeep':>12}"
          f"   {'client cpu s':>12} {'server cpu s':>12}")
    ratios: dict[str, float] = {}
    for ser in series.values():
        up = series.get(("upkeep", ser.store))
        ratio = ser.median / up.median if up else None
        if ratio is not None:
            ratios[ser.label] = ratio
        print(f"{ser.label:<15} {n:>9} {ser.median:>9.3f} {ser.min:>8.3f} {ser.median / n * 1000:>12.1f} "
              f"{'-' if ratio is None else f'{ratio:.2f}x':>12}   {ser.median_of('client_cpu'):>12.2f} "
              f"{ser.median_of('server_cpu'):>12.2f}")
    print("(median/min: wall seconds of the whole pass; side/upkeep: against Upkeep with the same store, > 1 = slower "
          "than Upkeep; client cpu: this process and the openssl processes; server cpu: the stand-ins, same cores)")
    print(f"note: one verifying context costs {costs['ca_file_ms']:.1f} ms with the local CA file, "
          f"{costs['system_store_ms']:.1f} ms with the default store ({costs['system_certs']} CA certificates); "
          "fetch_chain builds it once per bundle")
    print(f"load average after: {load_after}")
    checks = []
    print("\ntargets:")
    for store in args.stores:
        up = series.get(("upkeep", store))
        if up is None:
            continue
        text = (f"{up.label}: TLS checks of {n} endpoints < {TARGET_SECONDS:g} s"
                + ("" if n == TARGET_ENDPOINTS else f" (target defined at {TARGET_ENDPOINTS})"))
        ok = up.median < TARGET_SECONDS
        print(f"  {'PASS' if ok else 'FAIL'}  {text}: median {up.median:.3f}s")
        checks.append({"check": text, "measured": round(up.median, 3), "pass": ok})
    path = write_results("tls_endpoints", {
        "endpoints": n, "standins": args.standins, "concurrency": args.concurrency, "repeats": args.repeats,
        "key": args.key, "stores": args.stores, "warmup": not args.no_warmup, "context_costs": costs,
        "series": [{"side": ser.label, "tool": ser.tool, "store": ser.store, "samples": [vars(x) for x in ser.samples],
                    "median": ser.median, "min": ser.min} for ser in series.values()],
        "ratios_side_over_upkeep": ratios, "checks": checks, "versions": versions(),
        "loadavg_before": load_before, "loadavg_after": load_after,
    })
    print(f"results: {path}")
    return 1 if args.strict and not all(c["pass"] for c in checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
