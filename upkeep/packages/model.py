"""What a package update is, what is installed, and a host's update plan (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from upkeep.errors import PackageError as PackageError  # re-exported: drivers import it from here

Kind = Literal["security", "patch", "minor", "major", "kernel", "other"]
KINDS: frozenset[str] = frozenset(get_args(Kind))

# The approval rule of the update policy (`upkeep.packages.policy` explains it). It lives here, below
# the policy, because an update answers `needs_approval` itself and the policy builds on this module.
SEMVER_MANAGERS: frozenset[str] = frozenset({"npm"})
OS_APPROVAL_KINDS: frozenset[str] = frozenset({"major", "kernel"})
SEMVER_AUTOMATIC_KINDS: frozenset[str] = frozenset({"patch", "minor"})


def approval_needed(manager: str, kind: str) -> bool:
    """Whether an update of `kind` by `manager` waits for an approval: semver managers (npm) take
    patch and minor on their own; OS managers hold back major and kernel updates."""
    if manager in SEMVER_MANAGERS:
        return kind not in SEMVER_AUTOMATIC_KINDS
    return kind in OS_APPROVAL_KINDS


@dataclass(frozen=True)
class PackageUpdate:
    """One package that can move from `current` to `candidate`.

    `kind` drives the approval policy (`approval_needed`, explained in `upkeep.packages.policy`); `source` is
    where the candidate comes from (an apt suite such as "bookworm-security", the npm registry).
    """

    manager: str
    name: str
    current: str
    candidate: str
    kind: Kind
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown update kind {self.kind!r}; expected one of {sorted(KINDS)}")

    @property
    def item_id(self) -> str:
        """The id an approval names, e.g. "apt:linux-image-amd64"."""
        return f"{self.manager}:{self.name}"

    @property
    def versioned_id(self) -> str:
        """The id of this exact move, e.g. "apt:linux-image-amd64=6.1.119-1" (a narrower approval)."""
        return f"{self.item_id}={self.candidate}"

    @property
    def is_security(self) -> bool:
        """A security fix: classified so, or from a security suite (a kernel from bookworm-security
        is one: a security-only run includes it, and it still waits for its approval)."""
        return self.kind == "security" or "-security" in self.source.lower()

    @property
    def needs_approval(self) -> bool:
        """Whether the policy holds this update back until someone approves it."""
        return approval_needed(self.manager, self.kind)

    def describe(self) -> str:
        """A one-line human description, e.g. "apt:openssl 3.0.14 → 3.0.15 (security)"."""
        return f"{self.item_id} {self.current or '(none)'} → {self.candidate} ({self.kind})"


@dataclass(frozen=True)
class Installed:
    """One installed package version."""

    manager: str
    name: str
    version: str


@dataclass(frozen=True)
class HeldBack:
    """An update that `split_plan` did not let through, and why."""

    update: PackageUpdate
    reason: str


@dataclass(frozen=True)
class UpdatePlan:
    """The updates available on one host, split by the approval policy."""

    host: str
    updates: list[PackageUpdate] = field(default_factory=list)

    @property
    def automatic(self) -> list[PackageUpdate]:
        """Updates the policy applies without asking (security, npm patch/minor, ...)."""
        return [u for u in self.updates if not u.needs_approval]

    @property
    def needs_approval(self) -> list[PackageUpdate]:
        """Updates that wait for an approval (kernel, major, ...)."""
        return [u for u in self.updates if u.needs_approval]

    @property
    def item_ids(self) -> list[str]:
        """The ids of every update in the plan."""
        return [u.item_id for u in self.updates]
