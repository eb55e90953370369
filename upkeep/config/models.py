"""The inventory: environments, their windows, hosts, services, stores and thresholds.

Every model forbids unknown keys; `upkeep.config.loader` turns validation errors into
messages that name the field path, the bad value and the fix.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, field_validator, model_validator

from upkeep.config.approvals import ApprovalsConfig
from upkeep.config.database import DatabaseMaintenanceConfig
from upkeep.config.reviews import ReviewsConfig
from upkeep.config.secrets import SecretRef
from upkeep.config.security import SecurityConfig
from upkeep.config.units import Duration, Size
from upkeep.errors import ConfigError
from upkeep.windows import Window, WindowError

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
SlackChannel = Annotated[str, StringConstraints(pattern=r"^[#@]?[A-Za-z0-9._-]{1,80}$")]
# A host address: DNS name, IPv4 or IPv6 — no spaces or shell metacharacters.
Address = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.:\-]{0,252}$")]
Port = Annotated[int, Field(ge=1, le=65535)]
Argv = Annotated[list[str], Field(min_length=1)]
_BUDGET = re.compile(r"^(\d+)%?$")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SSHSettings(Model):
    """How to reach hosts over SSH; every field can be overridden per host."""

    user: str = "root"
    port: Port = 22
    key_file: Path | None = None
    key: SecretRef | None = Field(None, description="private key (PEM/OpenSSH) from a secret")
    known_hosts: Path = Path("~/.ssh/known_hosts")
    connect_timeout: Duration = timedelta(seconds=10)
    command_timeout: Duration = timedelta(minutes=5)
    keepalive: Duration = timedelta(seconds=15)


class HostConfig(Model):
    name: Name
    address: Address
    transport: Literal["ssh", "local"] = "ssh"
    port: Port | None = None
    user: str | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None
    roles: list[Name] = Field(default_factory=list)
    vars: dict[Name, str] = Field(default_factory=dict, description="per-host values, e.g. paths")


class ServiceConfig(Model):
    """A service of the application and how to operate it (commands are argv lists)."""

    role: Name | None = Field(None, description="hosts with this role run it (default: the service name)")
    health_url: str = Field(pattern=r"^https?://")
    start: Argv
    stop: Argv
    restart: Argv | None = None
    clear_cache: Argv | None = None
    rollback: Argv | None = Field(None, description="switch back to the previous release")
    reopen_logs: Argv | None = Field(None, description="make the service reopen its log files after a rotation renamed "
                                     "them, e.g. [sudo, systemctl, kill, -s, HUP, api] or [pm2, reloadLogs]")
    log_file: str | None = None
    monitored: bool = Field(True, description="probed by the health check (false e.g. for a DR test environment)")
    _name: str = PrivateAttr("")  # its key in `services`, set by the environment that holds it

    @property
    def name(self) -> str:
        """The service's key in its environment's `services` (`api`)."""
        return self._name

    @property
    def host_role(self) -> str:
        """The role of the hosts that run it: its `role`, else its own name."""
        return self.role or self._name


class WindowConfig(Model):
    cron: str | None = None
    timezone: str = "UTC"
    duration: Duration = timedelta(hours=2)
    cutoff: Duration = timedelta(minutes=15)
    blackout: list[date] = Field(default_factory=list)
    always: bool = False

    @model_validator(mode="after")
    def _valid_window(self) -> WindowConfig:
        try:
            self.to_window()
        except WindowError as exc:
            raise ValueError(str(exc)) from exc
        return self

    def to_window(self) -> Window:
        return Window(
            cron=self.cron, timezone=self.timezone, duration=self.duration, cutoff=self.cutoff,
            blackout=frozenset(self.blackout), always=self.always,
        )


class MongoConfig(Model):
    uri: SecretRef
    databases: list[Name] = Field(min_length=1)
    timeout: Duration = timedelta(seconds=5)


class S3Location(Model):
    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")]
    prefix: str = ""


class S3Config(Model):
    endpoint_url: str | None = Field(None, pattern=r"^https?://")
    region: str = "us-east-1"
    access_key_id: SecretRef | None = None
    secret_access_key: SecretRef | None = None
    logs: S3Location | None = None
    backups: S3Location | None = None
    archive: S3Location | None = Field(None, description="where database maintenance archives stale documents before "
                                       "deleting them")
    records: S3Location | None = Field(None, description="durable run records (default: the backups bucket, "
                                                         "prefix <backups prefix>_runs/)")

    def records_location(self) -> S3Location | None:
        """Where run records go: `records`, else beside the backups; None when neither is configured."""
        if self.records is not None:
            return self.records
        return S3Location(bucket=self.backups.bucket, prefix=f"{self.backups.prefix}_runs/") if self.backups else None


class RotationPolicy(Model):
    """When and how log files are rotated (the guide: daily or over 100M, compressed, 30 kept)."""

    frequency: Literal["daily", "weekly"] = "daily"
    max_size: Size = 100 * 1024**2
    compress: bool = True
    compression: Literal["gzip", "zstd"] = Field("gzip", description="zstd is several times faster at a similar ratio; "
                                                 "the hosts need the `zstd` command")
    keep: int = Field(30, ge=1, description="rotated files kept on the host; older ones are deleted once archived")
    grace: Duration = Field(timedelta(seconds=2), description="when the writer's open files cannot be seen (another "
                            "user's process), a rotated file counts as closed once its size is stable this long")
    reopen_timeout: Duration = Field(timedelta(seconds=30), description="longest wait for the writer to close the "
                                     "rotated file after the reopen command; past it the file is left for the next run")


class RetentionPolicy(Model):
    """Grandfather-father-son: the newest verified backup of each of the last N days/weeks/months,
    plus the `last` most recent ones (like restic's --keep-last/--keep-daily/...)."""

    last: int = Field(3, ge=1)
    daily: int = Field(7, ge=1)
    weekly: int = Field(4, ge=0)
    monthly: int = Field(12, ge=0)
    unverified_days: int | None = Field(None, ge=1, description="days a backup that failed or never passed a full "
                                        "verification is kept (default: `daily`); verified ones fill the slots above")


class ConfigFile(Model):
    host: Name
    path: str


class BackupConfig(Model):
    required_collections: list[str] = Field(default_factory=list, description="'db.collection' that must be in every backup")
    config_files: list[ConfigFile] = Field(default_factory=list)
    retention: RetentionPolicy = RetentionPolicy()
    max_age: Duration = timedelta(hours=26)
    manifest_key: SecretRef | None = Field(None, description="HMAC key that signs manifests (tamper evidence)")
    verify_sample: float = Field(1.0, gt=0, le=1, description="share of objects the daily integrity pass reads")

    @field_validator("required_collections")
    @classmethod
    def _qualified(cls, value: list[str]) -> list[str]:
        for name in value:
            if name.count(".") < 1 or name.startswith(".") or name.endswith("."):
                raise ValueError(f"{name!r}: write 'database.collection'")
        return value


class ReadQuery(Model):
    """A read the application needs to work: `find(filter)` on a collection returns ≥ min_count."""

    collection: str
    database: str | None = Field(None, description="one of dr.mongodb.databases (default: the first)")
    filter: dict[str, object] = Field(default_factory=dict)
    min_count: int = Field(1, ge=0)


class DrConfig(Model):
    """The disaster-recovery test environment: where the latest backup is restored and checked."""

    mongodb: MongoConfig
    host: Name = Field(description="the host (of this environment's inventory) that runs the test application")
    services: list[Name] = Field(min_length=1, description="services started against the restored data")
    queries: list[ReadQuery] = Field(default_factory=list)
    rto_target: Duration = timedelta(minutes=30)
    rpo_target: Duration = timedelta(hours=26)

    @model_validator(mode="after")
    def _queries_name_dr_databases(self) -> DrConfig:
        for i, q in enumerate(self.queries):
            if q.database is not None and q.database not in self.mongodb.databases:
                raise ValueError(f"queries[{i}].database {q.database!r} is not one of dr.mongodb.databases "
                                 f"({', '.join(self.mongodb.databases)}); name one of them or leave it out for the first")
        return self


EmergencyAction = Literal["restart", "clear_cache", "rollback"]


class AutoRecover(Model):
    after_failures: int = Field(3, ge=1, description="consecutive failed health checks of a service")
    action: EmergencyAction = "restart"


# PREFECT_FLOWS_HEARTBEAT_FREQUENCY of every process that runs Upkeep's deployments (prefect.yaml's job variables,
# `upkeep serve`): the watchdog's `crashed_after` counts in these.
RUN_HEARTBEAT = timedelta(seconds=30)


class WatchdogConfig(Model):
    """The watchdog: Prefect automations, evaluated by the Prefect server itself, that notice missed or late
    health checks and scheduled runs that did not start (`deployments/watchdog.py`)."""

    enabled: bool = Field(True, description="create the automations (`upkeep serve`, `upkeep watchdog`); false removes them")
    health_check_within: Duration = Field(timedelta(minutes=10), ge=timedelta(seconds=10),
                                          description="notice when no health check has completed for this long (more "
                                                      "than the ~6 minutes a restarted `upkeep serve` takes to show one)")
    late_repeat: Duration = Field(timedelta(hours=1), description="at most one late-run notice per deployment this often")
    crashed_after: Duration = Field(timedelta(seconds=90), ge=RUN_HEARTBEAT * 5 / 2,
                                    description="mark a deployment's run Crashed (and notify) when it has sent no "
                                                "heartbeat for this long: the process running it died with its machine "
                                                f"or was killed (runs send one every {RUN_HEARTBEAT.seconds} s; at least "
                                                "two of them and a margin, so one lost heartbeat crashes nothing)")


class MonitoringConfig(Model):
    """Where health samples, alert states and incidents are kept (a MongoDB time-series collection)."""

    store: MongoConfig
    retention: Duration = timedelta(days=30)
    period: Duration = Field(timedelta(hours=24), description="rolling period of availability and error rate")
    max_concurrency: int = Field(50, ge=1, le=1000)
    probe_agent: Path | None = Field(None, description="Unix socket of the probe agent (`upkeep probe-agent`, started by "
                                     "`upkeep serve`) that keeps SSH connections between health checks; none: cold probes")

    @field_validator("probe_agent")
    @classmethod
    def _socket_path(cls, value: Path | None) -> Path | None:
        if value is not None and (not value.expanduser().is_absolute() or len(bytes(value.expanduser())) > 107):
            raise ValueError("write an absolute path (~ allowed) of at most 107 bytes, the limit of a Unix socket's path, "
                             "in a directory only the serving user can enter, e.g. ~/.upkeep/agent/probe.sock")
        return value

    auto_recover: AutoRecover | None = None
    watchdog: WatchdogConfig = WatchdogConfig()
    health_runs_kept: Duration = Field(timedelta(days=7), description="health-check flow runs older than this are "
                                                                       "deleted from Prefect by prune-runs")


class PackageSource(Model):
    """Where a host's updates come from: the OS (apt), the application (npm), or the test sandbox."""

    manager: Literal["apt", "npm", "sandbox"]
    role: Name | None = Field(None, description="only hosts with this role have this source (default: every host "
                              "updated); e.g. npm on the application hosts, apt everywhere")
    app_dir: str | None = Field(None, description="npm: the application's directory (placeholders allowed)")
    root: str | None = Field(None, description="sandbox: its state directory; apt: an isolated apt/dpkg root (a "
                             "chroot, a test host) every apt and dpkg command is pointed at (placeholders allowed)")
    simulate_only: bool = Field(False, description="apt: plan with apt-get -s but never change the host")
    cache_valid_time: Duration = Field(timedelta(hours=1), description="apt: package lists younger than this are "
                                       "not refreshed (apt-get update) before planning")
    autoremove: bool = Field(True, description="apt: `apt-get autoremove` after a host updated successfully")
    clean: bool = Field(True, description="apt: `apt-get clean` (the downloaded .debs) after a host updated successfully")

    @model_validator(mode="after")
    def _needs(self) -> PackageSource:
        if self.manager == "npm" and not self.app_dir:
            raise ValueError("npm needs app_dir: the directory of the application's package.json")
        if self.manager == "sandbox" and not self.root:
            raise ValueError("sandbox needs root: the directory of its state files")
        return self


class Become(Model):
    """How commands that need another user (root) run: `sudo -n -u USER --` (never a password in config:
    the login user needs a NOPASSWD sudoers line for exactly those commands)."""

    method: Literal["sudo"] = "sudo"
    user: str = Field("root", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")

    def prefix(self) -> list[str]:
        return ["sudo", "-n", "-u", self.user, "--"]


class SmokeTest(Model):
    name: Name
    service: Name
    path: str = Field("/", pattern=r"^/")
    expect_status: int = 200


class Promotion(Model):
    """Staging before production: only versions another environment applied successfully long enough ago."""

    from_environment: Name = Field(description="the environment whose successful updates are the evidence (staging)")
    min_age: Duration = Field(timedelta(days=2), description="how long before a version applied there may be applied here")


class UpdatesConfig(Model):
    """The system update routine (the guide's Update Procedure and Dependency Management)."""

    sources: list[PackageSource] = Field(default_factory=lambda: [PackageSource(manager="apt")])
    role: Name | None = Field(None, description="only hosts with this role are updated (default: all)")
    min_free_percent: float = Field(10, ge=0, le=100, description="refuse to update a host with less free disk")
    backup_first: bool = True
    on_unreachable: Literal["stop", "skip"] = "stop"
    approvals: Literal["ask", "hold"] = Field(
        "ask", description="ask: pause for approval in the UI; hold: unattended, items that need one are held back")
    smoke_tests: list[SmokeTest] = Field(default_factory=list)
    promotion: Promotion | None = Field(None, description="a promotion gate: versions not yet proven in another "
                                        "environment are held back, with the date they become eligible (default: none)")


class LogPath(Model):
    """One log file per host (placeholders such as `{root}` come from the host's vars)."""

    path: str = Field(description="absolute, no glob characters: one file")
    service: Name | None = Field(None, description="the service that writes it: on its hosts, reopened with its "
                                 "`reopen_logs` (without a service: every host, and method copytruncate)")
    method: Literal["rename", "copytruncate"] = Field(
        "rename", description="rename + reopen loses nothing; copytruncate loses what is written between the copy "
        "and the truncate (reported), for writers that cannot reopen")
    format: Literal["json", "nginx", "text"] = Field("json", description="what the log analysis reads it as")


class TempDir(Model):
    """A directory the disk hygiene cleans (the guide's clean_temp_files)."""

    path: str = Field(pattern=r"^[{/]")
    older_than: Duration = timedelta(days=7)
    patterns: list[str] = Field(default_factory=lambda: ["*"], min_length=1, description="file name globs")
    role: Name | None = Field(None, description="only on hosts with this role (default: every host)")
    delete: bool = Field(False, description="false: the daily run reports what it would remove; true: it removes it")


class LogAnalysisConfig(Model):
    """What the daily log analysis flags (the response-time threshold is `thresholds.response_time`)."""

    admin_prefixes: list[str] = Field(default_factory=lambda: ["/admin"], description="routes whose new source IPs are reported")
    burst_threshold: int = Field(20, ge=1, description="401/403/429 answers to one source within a minute that make a burst")
    new_template_alert_min: int = Field(10, ge=1, description="alert when a new error pattern appears more often than this")
    p95_regression_factor: float = Field(2.0, gt=1, description="alert when a route's p95 grows by this factor vs last week")


class LogsConfig(Model):
    paths: list[str | LogPath] = Field(min_length=1, description="a path (every host, copytruncate) or a LogPath")
    rotation: RotationPolicy = RotationPolicy()
    archive_retention: Duration = Field(timedelta(days=90), description="lifecycle rule on the s3.logs bucket")
    temp_dirs: list[TempDir] = Field(default_factory=list)
    analysis: LogAnalysisConfig = LogAnalysisConfig()

    @field_validator("paths")
    @classmethod
    def _no_globs(cls, paths: list[str | LogPath]) -> list[str | LogPath]:
        for i, p in enumerate(paths):
            path = p if isinstance(p, str) else p.path
            if any(c in path for c in "*?[]"):
                raise ValueError(f"paths[{i}] {path!r} has glob characters: list each log file (a rotation renames "
                                 "and reopens one file at a time)")
            if not path.startswith(("/", "{")):
                raise ValueError(f"paths[{i}] {path!r} is not absolute: write the full path on the host")
        return paths

    def files(self) -> list[LogPath]:
        """Every entry of `paths` as a LogPath (a bare path: every host, copytruncate)."""
        return [p if isinstance(p, LogPath) else LogPath(path=p, method="copytruncate") for p in self.paths]


class Thresholds(Model):
    probe_timeout: Duration = timedelta(seconds=5)
    response_time: Duration = timedelta(milliseconds=200)
    error_rate: float = Field(0.01, ge=0, le=1)
    availability: float = Field(0.999, ge=0, le=1)
    disk_free_min_percent: float = Field(15, ge=0, le=100)


AlertMetric = Literal["up", "response_time_ms", "db_ping_ms", "availability", "error_rate", "p95_ms", "p99_ms",
                      "cpu_percent", "memory_percent", "disk_percent", "disk_read_bytes_per_s", "disk_write_bytes_per_s",
                      "net_rx_bytes_per_s", "net_tx_bytes_per_s"]
AlertSeverity = Literal["info", "warning", "critical"]


class AlertRule(Model):
    """A condition on one metric, per subject (a host, a host's service, the database, a service over
    the period), that must hold `duration` before it fires (Alertmanager's `for:`)."""

    name: Name
    metric: AlertMetric
    target: str | None = Field(None, description="which samples: host, database, service (any service), a service "
                                                 "name; none: every sample of the metric")
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    duration: Duration
    action: Literal["notify_team", "clear_cache"] = "notify_team"
    repeat_interval: Duration = timedelta(hours=4)
    severity: AlertSeverity = "warning"
    escalate_after: Duration | None = Field(None, description="still firing this long: escalate (slack.escalation)")

    def matches(self, metric: str, target: str) -> bool:
        """True when a sample of `metric` about `target` is one this rule watches."""
        if metric != self.metric:
            return False
        if self.target is None:
            return True
        if self.target == "service":
            return target not in ("host", "database")
        return target == self.target


DEFAULT_ALERTS = [
    AlertRule(name="high_cpu", metric="cpu_percent", threshold=80, duration=timedelta(minutes=5)),
    AlertRule(name="high_memory", metric="memory_percent", threshold=85,
              duration=timedelta(minutes=5), action="clear_cache"),
]


def outage_rules(t: Thresholds) -> list[AlertRule]:
    """The outage alerts every environment has (a rule of `alerts` with the same name replaces one):
    down or unreachable for two checks in a row pages (critical, escalated after 15 minutes); slow
    responses for 5 minutes, service levels of the period below target, warn."""
    escalate, down_for = timedelta(minutes=15), timedelta(minutes=1)
    return [
        AlertRule(name="service_down", metric="up", target="service", op="<", threshold=1, duration=down_for,
                  severity="critical", repeat_interval=timedelta(hours=1), escalate_after=escalate),
        AlertRule(name="database_unreachable", metric="up", target="database", op="<", threshold=1, duration=down_for,
                  severity="critical", repeat_interval=timedelta(hours=1), escalate_after=escalate),
        AlertRule(name="host_unreachable", metric="up", target="host", op="<", threshold=1, duration=down_for,
                  severity="critical", repeat_interval=timedelta(hours=1), escalate_after=escalate),
        AlertRule(name="service_slow", metric="response_time_ms", target="service",
                  threshold=t.response_time.total_seconds() * 1000, duration=timedelta(minutes=5)),
        AlertRule(name="availability_below_slo", metric="availability", target="service", op="<",
                  threshold=t.availability, duration=timedelta(0), repeat_interval=timedelta(hours=24)),
        AlertRule(name="error_rate_high", metric="error_rate", target="service", threshold=t.error_rate,
                  duration=timedelta(0)),
    ]


class Escalation(Model):
    """Where an alert still firing after its rule's `escalate_after` goes: another channel, a mention, or both."""

    channel: SlackChannel | None = None
    mention: str | None = Field(None, pattern=r"^(@here|@channel|<[@!][A-Za-z0-9^|_-]+>)$",
                                description="@here, @channel, <@USERID> or <!subteam^GROUPID>")


class SlackConfig(Model):
    channel: SlackChannel
    token: SecretRef
    base_url: str | None = Field(None, pattern=r"^https?://", description="Slack API base, for a proxy or a recorder")
    routes: dict[AlertSeverity, SlackChannel] = Field(default_factory=dict,
                                                      description="a channel per severity instead of `channel`")
    escalation: Escalation | None = None


class EnvironmentConfig(Model):
    window: WindowConfig
    emergency: Literal["approval", "notify", "anytime"]
    hosts: list[HostConfig] = Field(default_factory=list)
    services: dict[Name, ServiceConfig] = Field(default_factory=dict)
    mongodb: MongoConfig | None = None
    s3: S3Config | None = None
    logs: LogsConfig | None = None
    thresholds: Thresholds = Thresholds()
    alerts: list[AlertRule] = Field(default_factory=lambda: list(DEFAULT_ALERTS))
    outage_alerts: bool = Field(True, description="the built-in outage rules (upkeep.config.models.outage_rules)")
    slack: SlackConfig | None = None
    max_concurrency: int = Field(10, ge=1, le=1000)
    max_errors: int | str = Field(0, description="hosts allowed to fail before no new host starts: N or 'N%'")
    approval_timeout: Duration = Field(timedelta(hours=1), description="how long an emergency run waits for approval")
    max_slot_wait: Duration = Field(timedelta(hours=1), description="longest a disruptive run waits for the environment's "
                                    "slot when no window cutoff bounds the wait (an always-open window, an emergency run)")
    backup: BackupConfig = BackupConfig()
    dr: DrConfig | None = None
    monitoring: MonitoringConfig | None = None
    updates: UpdatesConfig = UpdatesConfig()
    database_maintenance: DatabaseMaintenanceConfig | None = Field(None, description="the weekly database maintenance "
                                                                   "(default: none: the routine reports it is not configured)")
    security: SecurityConfig = Field(SecurityConfig(), description="certificates, the security audit's inputs, the "
                                     "access review, waivers (default: sshd and firewall audited, nothing else)")
    reviews: ReviewsConfig = Field(ReviewsConfig(), description="performance, capacity, infrastructure, documentation, "
                                   "configuration and support-queue reviews (default: all on, with the guides' thresholds)")
    approvals: ApprovalsConfig = Field(ApprovalsConfig(), description="who may approve what (emergency runs, updates, "
                                       "index drops, baselines), and approvals from Slack (default: nobody listed)")
    become: Become | None = Field(None, description="how package commands get root (default: none: the login "
                                  "user runs them, so it must be root or own the apt root)")
    emergency_preapproved: list[EmergencyAction] = Field(
        default_factory=list,
        description="emergency actions that need no approval outside the window, where `emergency: approval` asks "
                    "for one (the guide: production is 24/7 *with approval*, so none by default; a database restore "
                    "always needs one)")

    _name: str = PrivateAttr("")  # its key in the inventory's `environments`, set by the inventory

    @property
    def name(self) -> str:
        """The environment's key in the inventory (`production`)."""
        return self._name

    @model_validator(mode="after")
    def _name_services(self) -> EnvironmentConfig:
        for key, service in self.services.items():
            service._name = key
        return self

    @field_validator("max_errors")
    @classmethod
    def _budget(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value >= 0 or isinstance(value, str) and _BUDGET.match(value):
            return value
        raise ValueError("write a count of hosts (e.g. 1) or a percentage (e.g. '10%')")

    @model_validator(mode="after")
    def _unique_hosts(self) -> EnvironmentConfig:
        seen: dict[str, int] = {}
        for i, host in enumerate(self.hosts):
            if host.name in seen:
                raise ValueError(
                    f"duplicate host name {host.name!r} at hosts[{seen[host.name]}] and hosts[{i}]; "
                    "give every host a unique name"
                )
            seen[host.name] = i
        return self

    @model_validator(mode="after")
    def _dr_matches(self) -> EnvironmentConfig:
        if self.dr is not None and self.mongodb is not None and len(self.dr.mongodb.databases) != len(self.mongodb.databases):
            raise ValueError("dr.mongodb.databases must list one target database per mongodb.databases entry, in order")
        if self.dr is not None and self.dr.host not in {h.name for h in self.hosts}:
            raise ValueError(f"dr.host {self.dr.host!r} is not one of this environment's hosts")
        return self

    @model_validator(mode="after")
    def _database_maintenance(self) -> EnvironmentConfig:
        dm = self.database_maintenance
        if dm is None:
            return self
        if self.mongodb is None:
            raise ValueError("database_maintenance needs mongodb (uri and databases) in the same environment")
        if dm.database is not None and dm.database not in self.mongodb.databases:
            raise ValueError(f"database_maintenance.database {dm.database!r} is not one of mongodb.databases "
                             f"({', '.join(self.mongodb.databases)})")
        archiving = [r.collection for r in dm.stale_data if r.archive]
        if archiving and (self.s3 is None or self.s3.archive is None):
            raise ValueError(f"database_maintenance.stale_data archives {', '.join(archiving)} first, but s3.archive is "
                             "not set: add s3.archive.bucket, or set archive: false on a rule that may delete without a copy")
        return self

    @model_validator(mode="after")
    def _security_hosts(self) -> EnvironmentConfig:
        names = {h.name for h in self.hosts}
        for i, cert in enumerate(self.security.certificates):
            if cert.host not in names:
                raise ValueError(f"security.certificates[{i}].host {cert.host!r} is not one of this environment's hosts "
                                 f"({', '.join(sorted(names)) or 'none'})")
            if cert.become and self.become is None:
                raise ValueError(f"security.certificates[{i}] ({cert.name}) sets become: true, but the environment has "
                                 "no become: add `become: {user: root}` or set become: false")
        return self

    @model_validator(mode="after")
    def _reviews(self) -> EnvironmentConfig:
        docs, conf = self.reviews.documentation, self.reviews.configuration
        if (docs.api_description or docs.changelog) and docs.service not in self.services:
            raise ValueError(f"reviews.documentation.service {docs.service!r} is not one of this environment's services "
                             f"({', '.join(self.services) or 'none'}): its first host renders the URLs")
        roles = {r for h in self.hosts for r in h.roles}
        for i, role in enumerate(conf.roles):
            if role not in roles:
                raise ValueError(f"reviews.configuration.roles[{i}] {role!r} is no host's role here "
                                 f"({', '.join(sorted(roles)) or 'none'})")
        if conf.become and self.become is None:
            raise ValueError("reviews.configuration sets become: true, but the environment has no become: add "
                             "`become: {user: root}` or set become: false")
        return self

    @model_validator(mode="after")
    def _logs_reopen(self) -> EnvironmentConfig:
        for i, log in enumerate(self.logs.files() if self.logs is not None else []):
            where = f"logs.paths[{i}]"
            if log.service is not None and log.service not in self.services:
                raise ValueError(f"{where}.service {log.service!r} is not one of this environment's services "
                                 f"({', '.join(self.services) or 'none'})")
            if log.method == "rename" and (log.service is None or self.services[log.service].reopen_logs is None):
                raise ValueError(f"{where} ({log.path}) is rotated by rename, which needs the writer to reopen it: set "
                                 f"services.{log.service or '<service>'}.reopen_logs (and the path's service), "
                                 "or method: copytruncate")
        return self

    def alert_rules(self) -> list[AlertRule]:
        """The rules evaluated by the health check: `alerts`, then the outage rules they do not replace by name."""
        named = {r.name for r in self.alerts}
        built_in = outage_rules(self.thresholds) if self.outage_alerts else []
        return [*self.alerts, *(r for r in built_in if r.name not in named)]

    def hosts_with_role(self, role: str) -> list[HostConfig]:
        return [h for h in self.hosts if role in h.roles]

    def service_role(self, service: str) -> str:
        """The role of the hosts that run `service`: its `role`, else its own name."""
        return self.services[service].host_role

    def service_hosts(self, service: str) -> list[HostConfig]:
        """The hosts that run `service`."""
        return self.hosts_with_role(self.service_role(service))


class Inventory(Model):
    version: Literal[1] = 1
    ssh: SSHSettings = SSHSettings()
    slack: SlackConfig | None = None
    environments: dict[Name, EnvironmentConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _name_environments(self) -> Inventory:
        for key, env in self.environments.items():
            env._name = key
        return self

    @model_validator(mode="after")
    def _promotion_sources(self) -> Inventory:
        for name, env in self.environments.items():
            gate = env.updates.promotion
            if gate is not None and (gate.from_environment not in self.environments or gate.from_environment == name):
                raise ValueError(f"environments.{name}.updates.promotion.from_environment {gate.from_environment!r} must be "
                                 f"another environment of the inventory ({', '.join(e for e in self.environments if e != name)})")
        return self

    def environment(self, name: str) -> EnvironmentConfig:
        try:
            return self.environments[name]
        except KeyError:
            raise ConfigError(
                f"environment {name!r} is not in the inventory; known: {', '.join(self.environments)}"
            ) from None

    def slack_for(self, env: str) -> SlackConfig | None:
        return self.environments[env].slack or self.slack
