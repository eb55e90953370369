"""Tasks that touch the application's services over HTTP: health probes."""

from __future__ import annotations

import time

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.config.render import render
from upkeep.errors import ServiceUnhealthy
from upkeep.operations import check_service, check_smoke
from upkeep.probes import ProbeResult, probe_http


@step("service", retries=3, run_name="verify-{service}[{host}]")
def verify_service(host: str, service: str) -> ProbeResult:
    """Probe a service's health URL on a host; raise (and so retry) until it answers 2xx (the pre-
    and post-checks of one run are two calls, cached apart: tasks._base.PerCall)."""
    return check_service(resources(), host, service)


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
