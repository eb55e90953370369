"""Tasks that touch hosts: resource usage, service commands, configuration files, facts for the reviews."""

from __future__ import annotations

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.backup.dump import file_blake3, file_sha256
from upkeep.backup.manifest import ConfigFileEntry, FileEntry
from upkeep.config.render import render
from upkeep.decisions.disk import DiskVerdict
from upkeep.hosts.base import ResourceUsage
from upkeep.hosts.fanout import FanOutResult, fan_out
from upkeep.logs import errors_in
from upkeep.operations import host_disk_verdicts, run_service_command
from upkeep.reviews.infrastructure import FACTS_ARGV, HostFacts, parse_facts


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


@step("host-facts", retries=1)
def host_facts(hosts: list[str]) -> FanOutResult[HostFacts]:
    """Each host's operating system, release, kernel and architecture (one constant read-only script); a host that
    cannot be reached is a failed outcome in the result (the review keeps it, never calls it removed), not raised."""
    res = resources()
    result = fan_out({h: h for h in hosts},
                     lambda h: parse_facts(h, res.hosts.get(h).run(FACTS_ARGV, timeout=60).stdout),
                     max_concurrency=res.env.max_concurrency, max_errors=None)  # a read: every host, whatever others do
    get_run_logger().log(30 if result.failed else 20, "host facts: %s", result.summary())
    return result.portable()


@step("config-checksums", retries=1)
def config_checksums(hosts: list[str], files: list[str], become: bool = False) -> FanOutResult[dict[str, str | None]]:
    """SHA-256 of each configuration file on each host (`sha256sum`, through become when asked): path → hex, None
    when the file is not there, or "unreadable: why"; a host that cannot be reached is a failed outcome, not raised."""
    res = resources()
    prefix = res.env.become.prefix() if become and res.env.become is not None else []

    def one(host: str) -> dict[str, str | None]:
        cfg, out = res.hosts.get_config(host), dict[str, str | None]()
        for template in files:
            path = render(template, cfg)
            got = res.hosts.get(host).run([*prefix, "sha256sum", "--", path], timeout=60, check=False)
            if got.exit_code == 0 and got.stdout.split():
                out[path] = got.stdout.split()[0]
            else:  # not there (None), or there and not readable (why)
                out[path] = (None if "No such file" in got.stderr
                             else f"unreadable: {got.stderr.strip()[:200] or f'exit {got.exit_code}'}")
        return out

    result = fan_out({h: h for h in hosts}, one, max_concurrency=res.env.max_concurrency, max_errors=None)
    get_run_logger().log(30 if result.failed else 20, "configuration checksums of %d file(s): %s", len(files),
                         result.summary())
    return result.portable()
