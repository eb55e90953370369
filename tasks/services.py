"""Tasks that touch the application's services over HTTP: health probes."""

from __future__ import annotations

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.config.render import render
from upkeep.errors import UpkeepError
from upkeep.probes import ProbeResult, probe_http


class ServiceUnhealthy(UpkeepError):
    """A service did not answer healthy."""


@step("verify", "service", retries=3, run_name="{stage}:verify-{service}[{host}]")
def verify_service(host: str, service: str, stage: str = "post") -> ProbeResult:
    """Probe a service's health URL on a host; raise (and so retry) until it answers 2xx.

    `stage` is part of the inputs so that the pre- and post-checks of one run are cached apart.
    """
    res = resources()
    svc = res.env.services[service]
    url = render(svc.health_url, res.hosts.get_config(host))
    result = probe_http(f"{host}/{service}", url, timeout=res.env.thresholds.probe_timeout.total_seconds())
    get_run_logger().info("%s: %s", host, result.detail)
    if not result.ok:
        raise ServiceUnhealthy(result.detail)
    return result
