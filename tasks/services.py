"""Tasks that touch the application's services over HTTP: health probes, versions, documents, the support queue."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.config.render import render
from upkeep.errors import ServiceUnhealthy
from upkeep.operations import check_service, check_smoke
from upkeep.probes import Fetched, ProbeResult, http_get, probe_http


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


@step("service-versions", retries=1, cache=False)
def service_versions() -> dict[str, str]:
    """`<host>/<service>` → the version its health answer names ("unknown" when it names none; "unreachable: …"),
    for every monitored service on every host that runs it."""
    res = resources()
    env, timeout = res.env, res.env.thresholds.probe_timeout.total_seconds()
    out = {}
    for name, svc in env.services.items():
        for h in env.service_hosts(name):
            r = probe_http(f"{h.name}/{name}", render(svc.health_url, h), timeout)
            out[f"{h.name}/{name}"] = (str(r.facts.get("version", "unknown")) if r.status is not None
                                       else f"unreachable: {r.error[:120]}")
    get_run_logger().info("service versions: %s", ", ".join(f"{k} {v}" for k, v in sorted(out.items())) or "no services")
    return out


@step("fetch-documents", retries=1, cache=False)
def fetch_documents(urls: dict[str, str], timeout: float) -> dict[str, Fetched]:
    """GET each URL (name → URL), side by side; each answer or why there was none (never raised)."""
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(urls))), thread_name_prefix="fetch") as pool:
        got = dict(zip(urls, pool.map(lambda u: http_get(u, timeout), urls.values()), strict=True))
    for name, f in got.items():
        get_run_logger().info("%s: %s", name, f"HTTP {f.status}, {len(f.body)} bytes" if f.status else f.error)
    return got


@step("support-tickets", retries=2, cache=False)
def support_tickets(url: str, token: str | None, timeout: float) -> Any:
    """The helpdesk's tickets as JSON (the bearer token resolved from its secret reference here, never logged)."""
    headers = {"Authorization": f"Bearer {resources().resolve(token).get_secret_value()}"} if token else {}
    got = http_get(url, timeout, headers)
    if got.status is None or got.status >= 400:
        raise ServiceUnhealthy(f"support queue {url} did not answer: {got.error or f'HTTP {got.status}'} — check "
                               "reviews.support.url and its token")
    try:
        return json.loads(got.body)
    except ValueError as exc:
        raise ServiceUnhealthy(f"support queue {url} answered {len(got.body)} bytes that are not JSON: {exc}") from exc
