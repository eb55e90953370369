"""The clients a routine uses, as Dagster's resources: given explicitly, or built lazily from the
inventory (never at import); what was built here is closed here, what was given is the giver's.

    with Resources(inventory, "staging", hosts={"web-1": LocalHost("web-1")}, notifier=rec) as res, \
            use_resources(res):
        disk_check(environment="staging")        # runs on the given host, notifies `rec`

A flow opens its resources with `routine_resources(environment, config)`: the current ones when they
serve that environment (the routine was called by another routine, or a test injected them), new
ones from the inventory otherwise. Tasks read the current ones (`current_resources()`): a context
variable, which Prefect's task engine, its thread pool and `upkeep.hosts.fanout` carry along.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from upkeep.config.loader import load_inventory
from upkeep.config.models import EnvironmentConfig, Inventory, SlackConfig
from upkeep.config.secrets import resolve_secret
from upkeep.errors import ConfigError, UpkeepError
from upkeep.hosts.base import Host
from upkeep.hosts.pool import HostPool
from upkeep.notify import LogNotifier, Notifier, Routes, SlackNotifier

if TYPE_CHECKING:
    from upkeep.backup.store import BackupStore
    from upkeep.dbmaint.archive import DataArchive
    from upkeep.monitoring.store import MonitoringStore
    from upkeep.reviews.store import ReviewStore
    from upkeep.rotation.archive import LogArchive
    from upkeep.runrecords import RunRecordStore
    from upkeep.security.store import SecurityStore
    from upkeep.slack_approvals import ApprovalRequests


class Resources:
    """One environment's clients: hosts, S3, MongoDB (the application's, the DR test's, the
    monitoring store's) and the notifier. Each is the one given, or built on first use."""

    def __init__(self, inventory: Inventory, environment: str, *, hosts: HostPool | Mapping[str, Host] | None = None,
                 s3: Any = None, mongo: Any = None, notifier: Notifier | None = None,
                 resolve: Callable[[str], SecretStr] = resolve_secret, source: str | None = None) -> None:
        self.inventory, self.environment, self.resolve = inventory, environment, resolve
        self.source = source  # the inventory file it was loaded from (None: given as an object)
        self.env: EnvironmentConfig = inventory.environment(environment)  # a clear error now, not mid-run
        self._pool: HostPool | None = hosts if isinstance(hosts, HostPool) else None
        self._pool_given = self._pool is not None
        self._given_hosts: Mapping[str, Host] = {} if hosts is None or isinstance(hosts, HostPool) else hosts
        self._s3, self._s3_given = s3, s3 is not None
        self._mongo, self._mongo_given = mongo, mongo is not None
        self._notifier: Notifier | None = notifier
        self._dr_mongo: Any = None
        self._monitoring: MonitoringStore | None = None
        if self._given_hosts:
            self.hosts  # noqa: B018 - a host given for a name the inventory lacks is an error now, not mid-run

    @classmethod
    def from_config(cls, path: str | None, environment: str, **kwargs: Any) -> Resources:
        """Resources of `environment` in the inventory at `path` (default: UPKEEP_CONFIG, ./upkeep.yaml)."""
        return cls(load_inventory(path), environment, source=path, **kwargs)

    def serves(self, environment: str, config: str | None) -> bool:
        """True when these resources are the ones a routine of `environment` on the inventory `config` would build."""
        if environment != self.environment:
            return False
        if config is None:
            return True
        return self.source is not None and Path(config).resolve() == Path(self.source).resolve()

    # -- clients ------------------------------------------------------------------------------------
    @property
    def hosts(self) -> HostPool:
        if self._pool is None:
            self._pool = HostPool(self.env, self.inventory.ssh, resolve=self.resolve, given=self._given_hosts)
        return self._pool

    @property
    def notifier(self) -> Notifier:
        if self._notifier is None:
            slack = self.inventory.slack_for(self.environment)
            if slack is None:
                self._notifier = LogNotifier(logging.getLogger("upkeep.notify"))
            else:
                token = self.resolve(slack.token).get_secret_value()
                self._notifier = SlackNotifier.from_token(token, routes_of(slack), slack.base_url)
        return self._notifier

    def approval_requests(self) -> ApprovalRequests | None:
        """Where approval requests go with their buttons: the environment's Slack channel (None: no Slack, or
        `approvals.slack` off; the Prefect UI is then the only channel)."""
        slack = self.inventory.slack_for(self.environment)
        if slack is None or not self.env.approvals.slack:
            return None
        from slack_sdk import WebClient

        from upkeep.slack_approvals import ApprovalRequests

        token = self.resolve(slack.token).get_secret_value()
        return ApprovalRequests(WebClient(token=token, timeout=10, base_url=slack.base_url or WebClient.BASE_URL),
                                routes_of(slack).default)

    def approvals_key(self) -> bytes | None:
        """The key relayed Slack answers are signed with (None: none configured; no Slack answer verifies)."""
        ref = self.env.approvals.key
        return self.resolve(ref).get_secret_value().encode() if ref else None

    @property
    def s3(self) -> Any:
        """A boto3 S3 client for this environment's storage."""
        if self._s3 is None:
            cfg = self.env.s3
            if cfg is None:
                raise ConfigError(f"environments.{self.environment}.s3 is not configured; add it to use S3")
            import boto3
            from botocore.config import Config

            key_id = secret_key = None  # None: boto3's own credential chain
            if cfg.access_key_id and cfg.secret_access_key:
                key_id = self.resolve(cfg.access_key_id).get_secret_value()
                secret_key = self.resolve(cfg.secret_access_key).get_secret_value()
            self._s3 = boto3.client("s3", endpoint_url=cfg.endpoint_url, region_name=cfg.region,
                                    config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                                  connect_timeout=5, read_timeout=60),
                                    aws_access_key_id=key_id, aws_secret_access_key=secret_key)
        return self._s3

    @property
    def mongo(self) -> Any:
        """A pymongo client for this environment's database."""
        if self._mongo is None:
            cfg = self.env.mongodb
            if cfg is None:
                raise ConfigError(f"environments.{self.environment}.mongodb is not configured; add it to use MongoDB")
            import pymongo

            ms = int(cfg.timeout.total_seconds() * 1000)
            self._mongo = pymongo.MongoClient(self.resolve(cfg.uri).get_secret_value(), serverSelectionTimeoutMS=ms,
                                              connectTimeoutMS=ms, socketTimeoutMS=max(ms, 60_000))
        return self._mongo

    def backup_store(self) -> BackupStore:
        from upkeep.backup.store import BackupStore

        cfg = self.env.s3
        if cfg is None or cfg.backups is None:
            raise ConfigError(f"environments.{self.environment}.s3.backups is not configured; add a bucket for backups")
        return BackupStore(self.s3, cfg.backups.bucket, cfg.backups.prefix)

    def data_archive(self) -> DataArchive | None:
        """Where database maintenance archives stale documents (s3.archive); None when it is not configured."""
        from upkeep.dbmaint.archive import DataArchive

        cfg = self.env.s3
        return DataArchive(self.s3, cfg.archive.bucket, cfg.archive.prefix, self.environment) if cfg and cfg.archive else None

    def log_archive(self) -> LogArchive | None:
        """Where rotated logs are archived (s3.logs); None when it is not configured."""
        from upkeep.rotation.archive import LogArchive

        cfg = self.env.s3
        return LogArchive(self.s3, cfg.logs.bucket, cfg.logs.prefix, self.environment) if cfg and cfg.logs else None

    def run_records(self) -> RunRecordStore | None:
        """Where this environment's run records go (s3.records, else beside the backups); None without S3."""
        from upkeep.runrecords import RunRecordStore

        where = self.env.s3.records_location() if self.env.s3 is not None else None
        return RunRecordStore(self.s3, where.bucket, where.prefix) if where is not None else None

    def review_store(self) -> ReviewStore | None:
        """Where the reviews keep snapshots, charts and compliance packs (beside the run records); None without S3."""
        from upkeep.reviews.store import ReviewStore

        where = self.env.s3.records_location() if self.env.s3 is not None else None
        return ReviewStore(self.s3, where.bucket, where.prefix, self.environment) if where is not None else None

    def manifest_key(self) -> bytes | None:
        ref = self.env.backup.manifest_key
        return self.resolve(ref).get_secret_value().encode() if ref else None

    def dr_mongo(self) -> Any:
        """A pymongo client for the disaster-recovery test environment's database server."""
        if self._dr_mongo is None:
            cfg = self.env.dr
            if cfg is None:
                raise ConfigError(f"environments.{self.environment}.dr is not configured; add the test environment")
            import pymongo

            ms = int(cfg.mongodb.timeout.total_seconds() * 1000)
            self._dr_mongo = pymongo.MongoClient(self.resolve(cfg.mongodb.uri).get_secret_value(),
                                                 serverSelectionTimeoutMS=ms, connectTimeoutMS=ms)
        return self._dr_mongo

    def monitoring_store(self) -> MonitoringStore:
        """The store of health samples, alert states, maintenance locks and incidents."""
        if self._monitoring is None:
            cfg = self.env.monitoring
            if cfg is None:
                raise ConfigError(f"environments.{self.environment}.monitoring is not configured; add a store for health samples")
            import pymongo

            from upkeep.monitoring.store import MonitoringStore

            ms = int(cfg.store.timeout.total_seconds() * 1000)
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
                self.resolve(cfg.store.uri).get_secret_value(), serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                socketTimeoutMS=max(ms, 30_000))
            self._monitoring = MonitoringStore(client, cfg.store.databases[0], cfg.retention)
        return self._monitoring

    def security_store(self) -> SecurityStore | None:
        """Findings and approved baselines of the security routines, in the monitoring store's database; None
        when the environment has no monitoring store (every finding is then reported new)."""
        if self.env.monitoring is None:
            return None
        from upkeep.security.store import SecurityStore

        store = SecurityStore(self.monitoring_store().db.client, self.env.monitoring.store.databases[0])
        store.ensure()
        return store

    # -- lifetime -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Close what was built here (the hosts' connections, the MongoDB clients); given clients stay open."""
        if self._pool is not None and not self._pool_given:
            self._pool.close()
            self._pool = None
        built = [None if self._mongo_given else self._mongo, self._dr_mongo,
                 self._monitoring.db.client if self._monitoring else None]
        for client in built:
            if client is not None:
                client.close()
        if not self._mongo_given:
            self._mongo = None
        self._dr_mongo = self._monitoring = None

    def __enter__(self) -> Resources:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def routes_of(slack: SlackConfig) -> Routes:
    """The notification routes of a Slack configuration: channel, per-severity channels, escalation."""
    esc = slack.escalation
    routes = {str(severity): channel for severity, channel in slack.routes.items()}
    return Routes(slack.channel, routes, esc.channel if esc else None, esc.mention if esc else None)


_CURRENT: ContextVar[Resources | None] = ContextVar("upkeep_resources", default=None)


@contextmanager
def use_resources(resources: Resources) -> Iterator[Resources]:
    """Make `resources` the current ones inside the block (for the flows it calls and their tasks)."""
    token = _CURRENT.set(resources)
    try:
        yield resources
    finally:
        _CURRENT.reset(token)


def current_resources() -> Resources:
    """The resources of the routine being run; an UpkeepError outside every routine."""
    res = _CURRENT.get()
    if res is None:
        raise UpkeepError("no Upkeep resources here: tasks run inside a routine (flows/_routine.Routine), "
                          "or inside `with use_resources(...)`")
    return res


@contextmanager
def routine_resources(environment: str, config: str | None = None) -> Iterator[Resources]:
    """The resources a routine runs with, current inside the block: its caller's when they serve
    `environment` (and `config`, when named), else new ones from the inventory, closed at the end."""
    outer = _CURRENT.get()
    if outer is not None and outer.serves(environment, config):
        yield outer
        return
    with Resources.from_config(config, environment) as res, use_resources(res):
        yield res
