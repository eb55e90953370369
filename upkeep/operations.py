"""What the tasks do on one host or service, given the run's Resources: service commands, disk
and health checks, smoke tests. Plain functions, no Prefect task here: `tasks/` wraps them in
steps, and the stage tasks that act on many hosts at once (the rolling update) call them inside.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from urllib.parse import urlsplit

from upkeep.config.render import render, render_argv
from upkeep.decisions.disk import DiskVerdict, disk_verdicts
from upkeep.errors import ConfigError, ServiceUnhealthy
from upkeep.humanize import duration
from upkeep.log import run_logger
from upkeep.packages.rolling import with_retries
from upkeep.probes import ProbeResult, probe_http
from upkeep.resources import Resources


def run_service_command(res: Resources, host: str, service: str, action: str, *, dry_run: bool = False) -> str:
    """Run a service's configured `start` / `stop` / `restart` / `clear_cache` command on a host;
    a sentence saying what happened (and what the command said, when it said one line)."""
    svc = res.env.services.get(service)
    if svc is None:
        raise ConfigError(f"service {service!r} is not configured in environments.{res.environment}.services")
    argv = getattr(svc, action, None)
    if not argv:
        raise ConfigError(f"services.{service}.{action} is not configured; add the command as an argv list")
    command = render_argv(argv, res.hosts.get_config(host))
    logger = run_logger()
    what = f"{action.replace('_', ' ')} {service}"
    if dry_run:
        logger.info("%s: would run %s (dry run)", host, command)
        return f"{what}: not run (dry run)"
    logger.info("%s: %s %s", host, action, service)
    started = time.monotonic()
    out = res.hosts.get(host).run(command).stdout.strip()
    return f"{what}: done in {duration(time.monotonic() - started)}" + said(out)


def said(output: str) -> str:
    """A command's one-line message, when it printed one a person can read (not JSON, not pages)."""
    line = output.splitlines()[0].strip() if output else ""
    return f" ({line})" if line and len(line) <= 120 and output.count("\n") == 0 and line[0] not in "{[<" else ""


def services_on(res: Resources, host: str) -> list[str]:
    """The monitored services that run on `host` (by role), stopped and started around its update."""
    roles = set(res.hosts.get_config(host).roles)
    return [name for name, svc in res.env.services.items() if svc.monitored and res.env.service_role(name) in roles]


def host_disk_verdicts(res: Resources, host: str, min_free_percent: float) -> list[DiskVerdict]:
    """Free space of the host's watched filesystems against the threshold, each logged."""
    verdicts = disk_verdicts(res.hosts.get(host).resources(), min_free_percent)
    for v in verdicts:
        run_logger().log(20 if v.ok else 30, "%s: %s (%s)", host, v.detail, "ok" if v.ok else f"below {min_free_percent}%")
    return verdicts


def check_service(res: Resources, host: str, service: str) -> ProbeResult:
    """One health probe of `service` on `host`: 2xx within the response-time threshold, or ServiceUnhealthy."""
    url = render(res.env.services[service].health_url, res.hosts.get_config(host))
    result = probe_http(f"{host}/{service}", url, timeout=res.env.thresholds.probe_timeout.total_seconds())
    run_logger().info("%s: %s", host, result.detail)
    if not result.ok:
        raise ServiceUnhealthy(result.detail)
    limit_ms = res.env.thresholds.response_time.total_seconds() * 1000
    if result.latency_ms > limit_ms:
        raise ServiceUnhealthy(f"{result.detail}: slower than the {limit_ms:.0f} ms threshold")
    return result


def check_smoke(res: Resources, host: str, name: str, service: str, path: str, expect_status: int) -> float:
    """One smoke-test request; its latency in ms, or ServiceUnhealthy."""
    base = render(res.env.services[service].health_url, res.hosts.get_config(host))
    parts = urlsplit(base)
    url = f"{parts.scheme}://{parts.netloc}{path}"
    result = probe_http(f"{host}/{name}", url, res.env.thresholds.probe_timeout.total_seconds())
    if result.status != expect_status:
        raise ServiceUnhealthy(f"smoke test {name} on {host}: expected HTTP {expect_status}, got {result.detail}")
    run_logger().info("%s: smoke test %s passed in %.0f ms", host, name, result.latency_ms)
    return result.latency_ms


def verify_host(res: Resources, host: str, services: Sequence[str], attempts: int, base_delay: float) -> None:
    """Every service's health probe, then the smoke tests of those services, each retried with backoff."""
    for s in services:
        with_retries(partial(check_service, res, host, s), attempts=attempts, base_delay=base_delay)
    for t in res.env.updates.smoke_tests:
        if t.service in services:
            with_retries(partial(check_smoke, res, host, t.name, t.service, t.path, t.expect_status),
                         attempts=attempts, base_delay=base_delay)
