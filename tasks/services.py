"""Tasks that touch the application's services over HTTP: health probes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.config.render import render
from upkeep.errors import ServiceUnhealthy
from upkeep.monitoring.samples import Sample
from upkeep.operations import check_service, check_smoke
from upkeep.probes import ProbeResult, probe_http


@step("service", retries=3, run_name="verify-{service}[{host}]")
def verify_service(host: str, service: str) -> ProbeResult:
    """Probe a service's health URL on a host; raise (and so retry) until it answers 2xx (the pre-
    and post-checks of one run are two calls, cached apart: tasks._base.PerCall)."""
    return check_service(resources(), host, service)


@step("services", retries=0, cache=False)
def probe_services(at: datetime) -> list[Sample]:
    """Every service's health URL on every host that runs it, concurrently, each within the
    probe timeout: an `up` (1/0) and a `response_time_ms` sample per probe."""
    res = resources()
    env = res.env
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
        if not r.ok:
            get_run_logger().warning("%s %s: %s", host, service, r.detail)
    get_run_logger().info("probed %d service endpoints: %d up", len(results), sum(r.ok for _, _, r in results))
    return samples


@step("settle", retries=0, cache=False, run_name="settle-{service}[{host}]")
def settle(host: str, service: str, checks: int = 3, interval: float = 2.0) -> list[float]:
    """The fix holds: `checks` health probes in a row, `interval` seconds apart, all healthy."""
    res = resources()
    svc = res.env.services[service]
    url = render(svc.health_url, res.hosts.get_config(host))
    timeout = res.env.thresholds.probe_timeout.total_seconds()
    latencies = []
    for i in range(checks):
        if i:
            time.sleep(interval)
        result = probe_http(f"{host}/{service}", url, timeout)
        if not result.ok:
            raise ServiceUnhealthy(f"{host} {service} unhealthy at check {i + 1} of {checks}: {result.detail}")
        latencies.append(round(result.latency_ms, 1))
    get_run_logger().info("%s %s healthy for %d checks in a row", host, service, checks)
    return latencies


@step("health", retries=0, cache=False, run_name="health-{service}[{host}]")
def probe_once(host: str, service: str) -> ProbeResult:
    """One health probe that reports instead of raising (to identify what is failing)."""
    res = resources()
    url = render(res.env.services[service].health_url, res.hosts.get_config(host))
    return probe_http(f"{host}/{service}", url, res.env.thresholds.probe_timeout.total_seconds())


@step("smoke-test", retries=2, run_name="smoke-{name}[{host}]")
def smoke_test(host: str, name: str, service: str, path: str, expect_status: int) -> float:
    """A configured request to the service answers the expected status within the response-time threshold."""
    return check_smoke(resources(), host, name, service, path, expect_status)
