"""Tasks that touch hosts: resource usage, service commands."""

from __future__ import annotations

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.backup.dump import file_blake3, file_sha256
from upkeep.backup.manifest import ConfigFileEntry, FileEntry
from upkeep.config.render import render
from upkeep.decisions.disk import DiskVerdict
from upkeep.hosts.base import ResourceUsage
from upkeep.logs import errors_in
from upkeep.operations import host_disk_verdicts, run_service_command


@step("resource-usage", run_name="resource-usage[{host}]", cache=False)
def resource_usage(host: str) -> ResourceUsage:
    """CPU, memory and disk usage of one host (psutil locally, /proc over SSH)."""
    usage = resources().hosts.get(host).resources()
    get_run_logger().info("%s: cpu %.1f%%, memory %.1f%%", host, usage.cpu_percent, usage.memory_percent)
    return usage


@step("disk-space", run_name="disk-space[{host}]")
def check_disk_space(host: str, min_free_percent: float) -> list[DiskVerdict]:
    """Free space of the host's root filesystem against the threshold."""
    return host_disk_verdicts(resources(), host, min_free_percent)


@step("service-command", run_name="{action}-{service}[{host}]")
def service_command(host: str, service: str, action: str, dry_run: bool = False, purpose: str = "") -> str:
    """Run a service's configured `start` / `stop` / `restart` / `clear_cache` command on a host.

    `purpose` says why, in the task's inputs (the UI shows it); the same command twice in one flow
    run runs twice either way (tasks._base.PerCall)."""
    return run_service_command(resources(), host, service, action, dry_run=dry_run)


@step("config-file", run_name="config-file[{host}:{path}]")
def backup_config_file(host: str, path: str, backup_id: str) -> ConfigFileEntry:
    """Copy a configuration file from a host into the backup."""
    res = resources()
    data = res.hosts.get(host).read_file(path)
    key = f"config/{host}/{path.lstrip('/')}"
    res.backup_store().put_bytes(backup_id, key, data)
    get_run_logger().info("%s: backed up %s (%d bytes)", host, path, len(data))
    return ConfigFileEntry(host=host, path=path,
                           file=FileEntry(key=key, size=len(data), sha256=file_sha256(data), blake3=file_blake3(data)))


@step("recent-errors", retries=1, cache=False, run_name="recent-errors[{host}]")
def recent_errors(host: str, service: str, lines: int = 200) -> list[str]:
    """The newest error lines of a service's log on a host (JSON lines with level=error, or 'ERROR')."""
    res = resources()
    svc = res.env.services[service]
    if not svc.log_file:
        return []
    path = render(svc.log_file, res.hosts.get_config(host))
    out = res.hosts.get(host).run(["tail", "-n", str(lines), "--", path], check=False).stdout
    return errors_in(out.splitlines())[-20:]
