"""Host access: one interface, a local and an SSH implementation, and fan-out."""

from upkeep.hosts.base import CommandResult, DiskUsage, Host, ResourceUsage
from upkeep.hosts.fanout import FanOutResult, Outcome, Status, error_allowance, fan_out
from upkeep.hosts.local import LocalHost
from upkeep.hosts.pool import HostPool, build_host
from upkeep.hosts.ssh import SSHHost

__all__ = [
    "CommandResult", "DiskUsage", "FanOutResult", "Host", "HostPool", "LocalHost", "Outcome",
    "ResourceUsage", "SSHHost", "Status", "build_host", "error_allowance", "fan_out",
]
