"""Clients a routine uses, built lazily from the inventory (never at import), closed together.

Like Dagster resources: flows bind one `Resources` per run; tasks ask for what they need.
Tests can pass their own notifier or host pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from upkeep.config.loader import load_inventory
from upkeep.config.models import EnvironmentConfig, Inventory
from upkeep.config.secrets import resolve_secret
from upkeep.errors import ConfigError
from upkeep.hosts.pool import HostPool
from upkeep.notify import LogNotifier, Notifier, SlackNotifier

if TYPE_CHECKING:
    from upkeep.backup.store import BackupStore
    from upkeep.monitoring.store import MonitoringStore


@dataclass
class Resources:
    inventory: Inventory
    environment: str
    resolve: Callable[[str], SecretStr] = resolve_secret
    notifier_override: Notifier | None = None
    _pool: HostPool | None = field(default=None, repr=False)
    _notifier: Notifier | None = field(default=None, repr=False)
    _s3: Any = field(default=None, repr=False)
    _mongo: Any = field(default=None, repr=False)
    _dr_mongo: Any = field(default=None, repr=False)
    _monitoring: MonitoringStore | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, path: str | None, environment: str, **kwargs: Any) -> Resources:
        inventory = load_inventory(path)
        inventory.environment(environment)  # a clear error now, not in the middle of a run
        return cls(inventory, environment, **kwargs)

    @property
    def env(self) -> EnvironmentConfig:
        return self.inventory.environment(self.environment)

    @property
    def hosts(self) -> HostPool:
        if self._pool is None:
            self._pool = HostPool(self.env, self.inventory.ssh, resolve=self.resolve)
        return self._pool

    @property
    def notifier(self) -> Notifier:
        if self._notifier is None:
            slack = self.inventory.slack_for(self.environment)
            if self.notifier_override is not None:
                self._notifier = self.notifier_override
            elif slack is None:
                self._notifier = LogNotifier(logging.getLogger("upkeep.notify"))
            else:
                token = self.resolve(slack.token).get_secret_value()
                self._notifier = SlackNotifier.from_token(token, slack.channel, slack.base_url)
        return self._notifier

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

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        for client in (self._mongo, self._dr_mongo, self._monitoring.db.client if self._monitoring else None):
            if client is not None:
                client.close()
        self._pool = self._mongo = self._dr_mongo = self._monitoring = None
