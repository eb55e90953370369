"""The health check's probes (plain functions over the run's Resources; the task runs them at once):
every service URL, every host's resources (warm through the probe agent when configured), the
database's ping. Each gives samples; a failure is a sample (`up` 0), never an exception."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from pymongo.errors import PyMongoError

from upkeep.config.render import render
from upkeep.hosts.agent_client import inventory_digest, probe_deadline, probe_resources
from upkeep.log import run_logger
from upkeep.monitoring.samples import PROCESS_FACTS, Sample, capacity_due, counter_samples, fs_samples
from upkeep.probes import probe_http
from upkeep.resources import Resources
from upkeep.reviews.cache import cache_counters


def probe_services(res: Resources, at: datetime) -> list[Sample]:
    """Every service's health URL on every host that runs it, concurrently, each within the
    probe timeout: an `up` (1/0) and a `response_time_ms` sample per probe."""
    env, logger = res.env, run_logger()
    targets = [(h, name, render(svc.health_url, h)) for name, svc in env.services.items() if svc.monitored
               for h in env.service_hosts(name)]
    timeout = env.thresholds.probe_timeout.total_seconds()
    workers = min(len(targets), env.monitoring.max_concurrency if env.monitoring else 50) or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        results = list(pool.map(lambda t: (t[0].name, t[1], probe_http(f"{t[0].name}/{t[1]}", t[2], timeout)), targets))
    samples = []
    for host, service, r in results:
        samples += [Sample(at, res.environment, host, service, "up", 1.0 if r.ok else 0.0),
                    Sample(at, res.environment, host, service, "response_time_ms", round(r.latency_ms, 1))]
        samples += [Sample(at, res.environment, host, service, name, r.facts[name]) for name in PROCESS_FACTS
                    if name in r.facts]  # a leak shows in memory between restarts (uptime going back)
        if not r.ok:
            logger.warning("%s %s: %s", host, service, r.detail)
    logger.info("probed %d service endpoints: %d up", len(results), sum(r.ok for _, _, r in results))
    return samples


def probe_hosts(res: Resources, at: datetime) -> list[Sample]:
    """CPU, memory and root-disk usage and I/O counters of every host, concurrently; an unreachable
    host gives an `up` 0 sample within the connect timeout and does not hold the others back.
    With `monitoring.probe_agent` the SSH hosts are probed by the probe agent over the connections it
    keeps (upkeep/hosts/agent.py); when it does not answer, cold, as without it, with one warning."""
    mon, logger = res.env.monitoring, run_logger()
    run = probe_resources(res.hosts.select(), environment=res.environment, agent=mon.probe_agent if mon else None,
                          timeout=probe_deadline(res.inventory.ssh), max_concurrency=mon.max_concurrency if mon else 50,
                          digest=inventory_digest(res.inventory, res.environment))
    if run.note:
        logger.warning(run.note)
    samples = []
    for name, u in run.results.items():
        if isinstance(u, str):
            samples.append(Sample(at, res.environment, name, "host", "up", 0.0))
            logger.warning("%s: %s", name, u)
            continue
        root = u.disk("/")
        samples += [Sample(at, res.environment, name, "host", "up", 1.0),
                    Sample(at, res.environment, name, "host", "cpu_percent", u.cpu_percent),
                    Sample(at, res.environment, name, "host", "memory_percent", u.memory_percent)]
        if root is not None:
            samples.append(Sample(at, res.environment, name, "host", "disk_percent", round(root.percent_used, 1)))
        if capacity_due(at):
            samples += fs_samples(name, at, res.environment, u.disks)
        if u.io is not None:  # cumulative: the evaluate stage turns them into rates against the previous probe
            samples += counter_samples(name, at, res.environment, u.io.as_dict())
    down = sum(isinstance(u, str) for u in run.results.values())
    logger.info("probed %d hosts (%d by the probe agent, %d cold): %d up, %d down", len(run.results), run.warm,
                len(run.results) - run.warm, len(run.results) - down, down)
    return samples


def probe_database(res: Resources, at: datetime) -> list[Sample]:
    """Ping the database within the probe timeout: `up` and `db_ping_ms` samples."""
    started = time.monotonic()
    try:
        res.mongo.admin.command("ping")
        ok = True
    except PyMongoError as exc:
        ok = False
        run_logger().warning("database ping failed: %s", str(exc)[:200])
    ms = (time.monotonic() - started) * 1000
    samples = [Sample(at, res.environment, "database", "database", "up", 1.0 if ok else 0.0),
               Sample(at, res.environment, "database", "database", "db_ping_ms", round(ms, 1))]
    if ok and capacity_due(at):
        samples += database_samples(res, at)
    return samples


def database_samples(res: Resources, at: datetime) -> list[Sample]:
    """Every configured database's size on disk (dbStats: storage + indexes) and the server's WiredTiger cache
    counters (serverStatus; none on a server without that section), as samples about each database / the server."""
    out: list[Sample] = []
    mongo = res.env.mongodb
    try:
        for name in mongo.databases if mongo else []:
            stats = res.mongo[name].command("dbStats")
            size = float(stats.get("storageSize", 0)) + float(stats.get("indexSize", 0))
            out.append(Sample(at, res.environment, name, "database", "db_size_bytes", size))
        counters = cache_counters(res.mongo.admin.command("serverStatus"))
    except PyMongoError as exc:
        run_logger().warning("database statistics not read: %s", str(exc)[:200])
        return out
    out += [Sample(at, res.environment, "database", "database", k, v) for k, v in (counters or {}).items()]
    return out
