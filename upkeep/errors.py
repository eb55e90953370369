"""The exception hierarchy of Upkeep.

`PermanentError` subclasses are never retried by tasks (bad config, auth, host keys);
everything else derived from `UpkeepError` may be transient.
"""

from __future__ import annotations


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

    def __init__(self, result: "object", message: str) -> None:
        super().__init__(message)
        self.result = result


class NotifyError(UpkeepError):
    """A notification could not be delivered."""
