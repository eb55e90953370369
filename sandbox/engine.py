"""The production-shaped part of the sandbox: Prefect's database on PostgreSQL (Debian's, started here on loopback as
the sandbox's unprivileged user, like the other servers) and `process` workers, each a separate process with its own
working directory, picking up the deployments `prefect deploy --all` registered from prefect.yaml.

Choose it to see what a team past one machine runs (README: "Past one machine"); `make run` keeps the embedded
SQLite server and `upkeep serve`, which start in seconds."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from sandbox.procs import Proc, SandboxError, free_port, port_open, spawn, wait_until
from sandbox.sshd import USER

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORK_POOL = "upkeep-process"  # deployments.specs.WORK_POOL: prefect.yaml's pool


def pg_bin() -> Path:
    """The newest installed PostgreSQL's binaries (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise SandboxError("PostgreSQL is missing: `apt-get install postgresql` (sandbox/setup.sh installs it)")
    return found[-1].parent


def _as_user(argv: list[str]) -> list[str]:
    """argv run as the sandbox's login user (PostgreSQL refuses root), exec'd in place: the PID stays the server's."""
    return ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--", *argv]


def start_postgres(base: Path, logs: Path) -> tuple[Proc, int]:
    """initdb (first time) and start PostgreSQL on 127.0.0.1 with its socket in its data directory; the process and its
    port, once it accepts connections and the `prefect` database exists. Loopback only, trust auth for the sandbox's
    user `prefect` (no password to keep: nothing but this machine can connect)."""
    import pwd

    data, bindir = base / "postgres", pg_bin()
    uid, gid = pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid
    if not (data / "PG_VERSION").exists():
        data.mkdir(mode=0o700, exist_ok=True)
        os.chown(data, uid, gid)
        done = subprocess.run(_as_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "prefect", "-E",
                                        "UTF8", "--no-instructions"]), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise SandboxError(f"initdb failed in {data}: {done.stderr.strip()[-500:]}")
    port = free_port()
    proc = spawn("postgres", _as_user([str(bindir / "postgres"), "-D", str(data), "-k", str(data), "-h", "127.0.0.1",
                                       "-p", str(port), "-c", "max_connections=200"]), logs / "postgres.log")
    wait_until(lambda: port_open("127.0.0.1", port), timeout=60, what="PostgreSQL", proc=proc)
    exists = subprocess.run([str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "prefect", "-d", "postgres",
                             "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'prefect'"],
                            capture_output=True, text=True, timeout=30)
    if exists.stdout.strip() != "1":
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "prefect", "prefect"],
                       check=True, capture_output=True, timeout=30)
    return proc, port


def database_url(port: int) -> str:
    return f"postgresql+asyncpg://prefect@127.0.0.1:{port}/prefect"


def prefect_cli(args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    """`prefect <args>` against the sandbox's server, from the repository (prefect.yaml's directory); its output, or a
    SandboxError with the tail of it."""
    done = subprocess.run([str(BIN / "prefect"), *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise SandboxError(f"prefect {' '.join(args[:3])} failed: {(done.stdout + done.stderr).strip()[-800:]}")
    return done.stdout


def deploy_all(env: dict[str, str], *, paused: bool = False) -> int:
    """The `process` work pool, then every deployment of prefect.yaml registered with `prefect deploy --all`; with
    `paused`, each deployment paused (its schedules kept: pausing a schedule itself would wipe its parameters), so only
    triggered runs execute. How many deployments there are."""
    prefect_cli(["work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"], env)
    prefect_cli(["--no-prompt", "deploy", "--all"], env)
    api, auth = env["PREFECT_API_URL"], env.get("PREFECT_API_AUTH_STRING")
    found = _api(api, "POST", "/deployments/filter", {"limit": 200}, auth)
    for d in found if paused else []:
        _api(api, "PATCH", f"/deployments/{d['id']}", {"paused": True}, auth)
    return len(found)


def basic_auth(auth: str) -> dict[str, str]:
    """The header a Prefect server with an auth string asks for (as Prefect's own clients send it)."""
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def _api(api: str, method: str, path: str, body: dict[str, object], auth: str | None = None) -> Any:
    """One call of the Prefect REST API (the sandbox's server, not whichever the calling process is configured for)."""
    request = urllib.request.Request(f"{api}{path}", data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", **(basic_auth(auth) if auth else {})})
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - the sandbox's loopback server
        raw = resp.read()
    return json.loads(raw) if raw else None


EXCEPTION_LINE = re.compile(r"^(?:[a-z_]\w*\.)*[A-Z]\w*(?::|$)")  # `prefect.exceptions.ObjectNotFound: …`


def upkeep_cli(args: list[str], env: dict[str, str]) -> str:
    """`upkeep <args>` against the sandbox's server and inventory (`env`); its output, or a SandboxError with the tail."""
    done = subprocess.run([sys.executable, "-m", "deployments.cli", *args], cwd=ROOT,
                          env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip()
        raised = [line for line in said.splitlines() if EXCEPTION_LINE.match(line)]  # each of a chain, not only the last
        raise SandboxError(f"upkeep {' '.join(args)} failed ({'; '.join(raised) or 'no traceback'}): {said[-800:]}")
    return done.stdout


def start_workers(base: Path, logs: Path, n: int, env: dict[str, str], limit: int | None = None) -> list[Proc]:
    """`prefect worker start` × n, each a separate process with its own working directory (what it writes stays its
    own), polling the pool every 2 s; the runs they start inherit `env` (the API, the inventory, the secrets)."""
    procs = []
    for i in range(1, n + 1):
        home = base / "workers" / f"worker-{i}"
        home.mkdir(parents=True, exist_ok=True)
        procs.append(spawn(f"worker-{i}", [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL,
                                           "--name", f"worker-{i}", "--type", "process",
                                           *(["--limit", str(limit)] if limit else [])],
                           logs / f"worker-{i}.log", cwd=home,
                           env={**env, "PYTHONPATH": str(ROOT), "PREFECT_WORKER_QUERY_SECONDS": "2",
                                "PREFECT_WORKER_PREFETCH_SECONDS": "2"}))
    for proc in procs:
        wait_until(lambda p=proc: "started" in p.log.read_text(errors="replace").lower(), timeout=90,  # type: ignore[misc]
                   what=f"Prefect {proc.name}", proc=proc)
    return procs
