"""Which log files of the inventory live on which host, with their paths and reopen commands rendered."""

from __future__ import annotations

from upkeep.config.models import EnvironmentConfig, HostConfig
from upkeep.config.render import host_path, render_argv
from upkeep.rotation.engine import LogTarget


def log_targets(env: EnvironmentConfig, host: HostConfig) -> list[LogTarget]:
    """The log files of `host`: a path with a service on the hosts that run it, a path without one on
    every host; the service's `reopen_logs` rendered for the host."""
    if env.logs is None:
        return []
    out = []
    for i, log in enumerate(env.logs.files()):
        if log.service is not None and env.service_role(log.service) not in host.roles:
            continue
        reopen = env.services[log.service].reopen_logs if log.service is not None else None
        out.append(LogTarget(path=host_path(log.path, host, f"logs.paths[{i}]"),
                             reopen=render_argv(reopen, host) if reopen else None,
                             method=log.method, service=log.service))
    return out


def hosts_with_logs(env: EnvironmentConfig) -> list[str]:
    """Names of the hosts that have at least one configured log file."""
    return [h.name for h in env.hosts if log_targets(env, h)]
