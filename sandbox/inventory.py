"""The sandbox inventory: every environment pointed at the local stack's servers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from sandbox.sshd import USER, SshdFleet
from upkeep.config.loader import load_inventory

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "upkeep.yaml"  # the guide's windows, one copy


def example_windows(path: Path = EXAMPLE) -> dict[str, dict[str, Any]]:
    """Per environment of the example inventory: its `window` and its `emergency` policy, as inventory data.

    Left out on purpose, so that the sandbox behaves as it always has for the tests and the demo:
    - the window's `blackout` dates (the example's production has code freezes on two Sundays; the tests
      and the demo run at the real date, and a frozen Sunday would change what the guard says then);
    - `emergency_preapproved` and `approval_timeout` (the example pre-approves a production restart on
      purpose; the sandbox keeps the default, none: every production emergency action asks for approval).
    """
    inv = load_inventory(path)
    return {
        name: {"window": env.window.model_dump(mode="json", exclude={"blackout"}, exclude_unset=True),
               "emergency": env.emergency}
        for name, env in inv.environments.items()
    }


class _HostCounts(Protocol):
    @property
    def app_hosts(self) -> int: ...


class StackView(Protocol):
    """What `sandbox_inventory` reads from a stack: `sandbox.stack.Stack` is one. A protocol, not
    that class, so that this module does not import the stack that imports it to write the inventory."""

    @property
    def fleet(self) -> SshdFleet | None: ...
    @property
    def settings(self) -> _HostCounts: ...  # the first `app_hosts` hosts run the app, the next one is DR
    @property
    def ports(self) -> Mapping[str, int]: ...  # by component; only the started ones are present
    @property
    def base(self) -> Path: ...  # the stack's directory
    @property
    def tools(self) -> Path: ...  # where the host tools (standinctl.py) are
    @property
    def tls_ca_file(self) -> Path: ...  # the CA the stand-ins' HTTPS certificates verify against
    @property
    def s3_url(self) -> str: ...
    @property
    def slack_url(self) -> str: ...


def _service(ctl_path: str, port: int, component: str, path: str, role: str | None = None) -> dict[str, Any]:
    ctl = ["/usr/bin/python3", ctl_path, f"http://{{address}}:{port}"]
    return {
        "role": role or component,
        "health_url": f"http://{{address}}:{port}{path}",
        "start": [*ctl, "start", component],
        "stop": [*ctl, "stop", component],
        "restart": [*ctl, "restart", component],
        "clear_cache": [*ctl, "clear-cache", component],
        # the stand-in runs as another user than the SSH login: told over its control API, not by a signal
        "reopen_logs": [*ctl, "reopen-logs", component],
        "log_file": "{root}/event-manager.log",
    }


def _certificates(stack: StackView, ctl_path: str) -> list[dict[str, Any]]:
    """The HTTPS of each application host's stand-in, renewed from the copy the stack left in `tls/renewed/` and
    reloaded over the stand-in's control API (the same argv shape as the services' commands)."""
    if stack.fleet is None:
        return []
    reload = ["/usr/bin/python3", ctl_path, f"http://{{address}}:{stack.ports['standin']}", "reload-tls"]
    renew = ["/bin/cp", "{root}/tls/renewed/api.upkeep.test.pem", "{root}/tls/renewed/api.upkeep.test.key", "{root}/tls/"]
    return [{"name": f"api-{h.name}", "host": h.name, "port": stack.ports["standin_tls"], "server_name": "api.upkeep.test",
             "ca_file": str(stack.tls_ca_file), "renew": renew, "reload": reload}
            for h in stack.fleet.hosts[: stack.settings.app_hosts]]


def _security(stack: StackView) -> dict[str, Any]:
    """What the security routines read on each host, under its root (sandbox/security.py seeds it): the permission
    audit's tree, sshd's effective configuration (with a host key the login user can read), the apt root's dpkg
    status against the stack's OSV feed, and the access review's files. No firewall: the login user may not list
    it (tests/integration/test_firewall.py reviews a real ruleset in a network namespace)."""
    return {"audit_roots": ["{root}/srv"],
            "sshd": ["/usr/sbin/sshd", "-T", "-f", "{sshd_conf}", "-h", "{root}/sshd-audit.key"],
            "firewall": "none",
            "feed": {"source": str(stack.base / "osv-debian.json"), "dpkg_status": "{root}/apt/var/lib/dpkg/status"},
            "access": {"passwd": "{root}/etc/passwd", "sudoers": ["{root}/etc/sudoers", "{root}/etc/sudoers.d"]}}


def _reviews(stack: StackView, first: str) -> dict[str, Any]:
    """The reviews against the stand-in: its OpenAPI description, changelog and documentation pages, its support
    queue (standing in for the helpdesk's API), the application's configuration files on the API hosts."""
    base = f"http://{{address}}:{stack.ports['standin']}"
    fixed = f"http://{first}:{stack.ports['standin']}"
    return {"documentation": {"api_description": f"{base}/openapi.json", "changelog": f"{base}/CHANGELOG.md",
                              "links": [f"{fixed}/docs/getting-started", f"{fixed}/docs/api"]},
            "configuration": {"files": ["{root}/config/app.json", "{root}/etc/sudoers"], "roles": ["api"]},
            "support": {"url": f"{fixed}/support/tickets"},
            "manual": [{"item": "Update user guides, FAQs and tutorials", "owner": "docs team",
                        "guide": "Event Editor: Documentation Maintenance"},
                       {"item": "Train staff on changed procedures", "owner": "unassigned",
                        "guide": "Event Editor: Monthly Tasks"}]}


# Who may approve in the sandbox (the names the demo's user and the tests answer with). Nobody else: a name typed in
# the UI that is not here is refused and the run keeps waiting. Slack ids for the Socket Mode approvals' tests.
APPROVERS = [{"name": "demo-user", "slack": "U0DEMOUSER"}, {"name": "alice", "slack": "U0ALICE01"},
             {"name": "bob", "slack": "U0BOB0001", "kinds": ["emergency", "updates"]}, {"name": "carol"},
             {"name": "dba-alice", "kinds": ["indexes"]}, {"name": "net-nina", "kinds": ["baselines"]},
             {"name": "ops-dana", "kinds": ["baselines", "emergency"]}, {"name": "sec-carol", "kinds": ["baselines"]}]


def _approvals(stack: StackView) -> dict[str, Any]:
    out: dict[str, Any] = {"approvers": APPROVERS, "key": "env:UPKEEP_SANDBOX_APPROVALS_KEY"}
    if "slack" in stack.ports:
        out["app_token"] = "env:UPKEEP_SANDBOX_SLACK_APP_TOKEN"
    return out


def sandbox_inventory(stack: StackView) -> dict[str, Any]:
    """An inventory dict (YAML-ready) for the running stack."""
    fleet = stack.fleet
    hosts = []
    if fleet is not None:
        for i, h in enumerate(fleet.hosts):
            roles = ["api", "worker"] if i < stack.settings.app_hosts else ["dr"] if i == stack.settings.app_hosts else ["db"]
            hosts.append({"name": h.name, "address": h.address, "port": h.port, "roles": roles,
                          "vars": {"root": str(h.root), "sshd_conf": str(fleet.base / "keys" / f"{h.name}.conf")}})
    ctl = str(stack.tools / "standinctl.py")
    env: dict[str, Any] = {"hosts": hosts, "max_concurrency": 10, "max_errors": 0, "approvals": _approvals(stack)}
    if "standin" in stack.ports:
        env["services"] = {
            "api": _service(ctl, stack.ports["standin"], "api", "/health"),
            "worker": _service(ctl, stack.ports["standin"], "worker", "/worker-health"),
        }
        env["updates"] = {
            # the sandbox driver (fault injection, the demo's approvals), real apt in each host's own root, and
            # real npm on the application hosts (the local registry's fixture packages)
            "sources": [{"manager": "sandbox", "root": "{root}"}, {"manager": "apt", "root": "{root}/apt"},
                        *([{"manager": "npm", "app_dir": "{root}/app", "role": "api"}] if "npm" in stack.ports else [])],
            "min_free_percent": 5, "backup_first": "mongo" in stack.ports,
            "on_unreachable": "stop", "smoke_tests": [{"name": "events", "service": "api", "path": "/api/events"}],
        }
        env["logs"] = {
            "paths": [{"path": "{root}/event-manager.log", "service": "api"}],  # the stand-in's API and worker share it
            "rotation": {"frequency": "daily", "max_size": "100M", "keep": 30, "grace": "1s"},
            "temp_dirs": [{"path": "{root}/tmp", "older_than": "7d", "patterns": ["*.tmp", "upload-*"], "role": "api"}],
        }
        env["security"] = _security(stack)
        if fleet is not None:
            env["reviews"] = _reviews(stack, fleet.hosts[0].address)
        if "npm" in stack.ports:  # npm audit of the application, against the local registry's advisories
            env["security"]["projects"] = [{"kind": "npm", "path": "{root}/app", "role": "api"}]
        if stack.ports.get("standin_tls") and (certificates := _certificates(stack, ctl)):
            env.setdefault("security", {})["certificates"] = certificates
    if "mongo" in stack.ports:
        env["mongodb"] = {"uri": "env:UPKEEP_SANDBOX_MONGO_URI", "databases": ["eventmanager"]}
        env["backup"] = {
            "required_collections": ["eventmanager.events", "eventmanager.users"],
            "config_files": ([{"host": fleet.hosts[0].name, "path": str(fleet.hosts[0].root / "config" / "app.json")}]
                             if fleet else []),
            "retention": {"daily": 7, "weekly": 4, "monthly": 12},
            "max_age": "26h",
            "manifest_key": "env:UPKEEP_SANDBOX_MANIFEST_KEY",
        }
        env["monitoring"] = {
            "store": {"uri": "env:UPKEEP_SANDBOX_MONGO_URI", "databases": ["upkeep_monitoring"], "timeout": "5s"},
            "retention": "7d", "period": "1h", "auto_recover": {"after_failures": 2, "action": "restart"},
            "probe_agent": str(stack.base / "agent" / "probe.sock"),  # started by `upkeep serve`; cold probes without it
        }
    if "standin_dr" in stack.ports and fleet is not None:
        dr_host = fleet.hosts[stack.settings.app_hosts]
        env.setdefault("services", {})["dr-api"] = {**_service(ctl, stack.ports["standin_dr"], "api", "/health", role="dr"),
                                                    "monitored": False, "log_file": "{root}/event-manager-dr.log"}
        env["dr"] = {
            "mongodb": {"uri": "env:UPKEEP_SANDBOX_MONGO_URI", "databases": ["eventmanager_dr"]},
            "host": dr_host.name, "services": ["dr-api"],
            "queries": [{"collection": "events", "min_count": 1}, {"collection": "users", "filter": {"active": True}}],
            "rto_target": "5m", "rpo_target": "26h",
        }
    if "s3" in stack.ports:
        env["s3"] = {
            "endpoint_url": stack.s3_url, "access_key_id": "env:UPKEEP_SANDBOX_S3_KEY",
            "secret_access_key": "env:UPKEEP_SANDBOX_S3_SECRET",
            "logs": {"bucket": "upkeep-logs", "prefix": "event-manager/"},
            "backups": {"bucket": "upkeep-backups", "prefix": "event-manager/"},
            "archive": {"bucket": "upkeep-archive", "prefix": "event-manager/"},
        }
    if "s3" in stack.ports and "mongo" in stack.ports:
        env["database_maintenance"] = {  # a dry run unless started with dry_run false: the demo deletes nothing
            "stale_data": [{"collection": "events", "date_field": "starts", "older_than": "300d"},
                           {"collection": "sessions", "date_field": "expires", "older_than": "30d", "archive": False}],
            "batch": 200, "chunk_documents": 500, "unused_index_age": "7d",
        }
    inventory: dict[str, Any] = {"version": 1}
    if fleet is not None:
        inventory["ssh"] = {
            "user": USER, "key_file": str(fleet.client_key), "known_hosts": str(fleet.known_hosts),
            "connect_timeout": "5s", "command_timeout": "2m", "keepalive": "15s",
        }
    if "slack" in stack.ports:
        inventory["slack"] = {"channel": "#ops", "token": "env:UPKEEP_SANDBOX_SLACK_TOKEN", "base_url": stack.slack_url}
    inventory["environments"] = {name: {**policy, **env} for name, policy in example_windows().items()}
    return inventory
