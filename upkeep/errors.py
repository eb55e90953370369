"""The exception hierarchy of Upkeep.

`PermanentError` subclasses are never retried by tasks (bad config, auth, host keys);
everything else derived from `UpkeepError` may be transient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for the annotation only: upkeep.hosts.fanout imports this module
    from upkeep.hosts.fanout import FanOutResult


class UpkeepError(Exception):
    """Base class of every error Upkeep raises on purpose."""


class PermanentError(UpkeepError):
    """An error that a retry cannot fix."""


class ConfigError(PermanentError):
    """The inventory is invalid; the message names the field and the fix."""


class SecretError(PermanentError):
    """A secret reference cannot be resolved."""


class HostError(UpkeepError):
    """Something went wrong on (or on the way to) a host."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host


class HostUnreachableError(HostError):
    """The host did not answer within the connect timeout."""


class HostKeyError(HostError, PermanentError):
    """The host's key is unknown or changed: refused, never auto-accepted."""


class AuthenticationError(HostError, PermanentError):
    """The host refused our credentials."""


class CommandError(HostError):
    """A command exited non-zero."""

    def __init__(self, host: str, argv: list[str], exit_code: int, stderr: str) -> None:
        tail = stderr.strip().splitlines()[-1:] or [""]
        super().__init__(host, f"command {argv[0]!r} exited {exit_code}: {tail[0][:300]}")
        self.argv = argv
        self.exit_code = exit_code
        self.stderr = stderr


class CommandTimeoutError(HostError):
    """A command did not finish within its timeout."""


class FanOutError(UpkeepError):
    """One or more hosts of a fan-out failed; `.result` holds every host's outcome."""

    def __init__(self, result: FanOutResult[Any], message: str) -> None:
        super().__init__(message)
        self.result = result


class NotifyError(UpkeepError):
    """A notification could not be delivered."""


class WindowError(ConfigError, ValueError):
    """A window definition (or a query on it) is invalid; names field and value."""


class WindowClosed(UpkeepError):
    """The window closed (or its cutoff passed) before a disruptive stage could start."""


class PackageError(UpkeepError):
    """A package manager could not list, simulate, apply or roll back; names the host when known."""

    def __init__(self, message: str, *, host: str | None = None) -> None:
        super().__init__(f"{host}: {message}" if host else message)
        self.host = host


class HostRolledBack(UpkeepError):
    """A host failed its post-update checks and was returned to its previous versions."""


class StoreError(UpkeepError):
    """The object store failed or refused an operation."""


class MissingObject(StoreError):
    """An object the manifest names is not in the store."""


class MonitoringStoreError(UpkeepError):
    """The monitoring store is unreachable or refused an operation."""


class DatabaseError(UpkeepError):
    """The database is unreachable or refused an operation."""


class ServiceUnhealthy(UpkeepError):
    """A service did not answer healthy."""


class BackupVerificationFailed(UpkeepError):
    """At least one check of the backup failed."""


class RecoveryFailed(UpkeepError):
    """The fix did not make the service healthy: escalated to people."""


class RecoveryTestFailed(UpkeepError):
    """The restored environment did not work, or missed its RTO/RPO target."""


class MaintenanceFailed(UpkeepError):
    """One or more routines of a composite run failed."""


class ProbeAgentError(UpkeepError):
    """The probe agent could not answer (no socket, nothing listening, no answer in time, an answer this
    client does not understand) or refused a request; the health check then probes cold."""


class RotationError(HostError):
    """A log file could not be rotated, compressed or removed on a host; what is on disk is intact
    and the next run resumes from it."""


class ArchiveError(UpkeepError):
    """A rotated log, or a database's stale documents, could not be archived to (or verified in) the object
    store; the local copy is kept, no document is deleted."""


class LogArchiveError(UpkeepError):
    """A log archive could not be decompressed (corrupt or truncated): names the compression and what to check."""


class RotationBusy(UpkeepError):
    """Another log rotation of the environment is running; this one rotated nothing."""


class SecurityInputError(UpkeepError):
    """A security tool's output or a vulnerability feed that cannot be read."""


class ReviewInputError(PermanentError, ValueError):
    """A review's input cannot be read as what it should be (a distro-info file, a stored snapshot, tickets from the
    helpdesk, samples without a time zone): the message names the input and the fix; retrying does not help."""
