"""The update policy, pure: how an update is classified and which ones need an approval.

Guide policy for the system update routine:

* OS (apt, ...): security updates are automatic; MAJOR version changes and KERNEL updates need
  an approval (a kernel update is "kernel" even when it comes from a security suite). A new major
  version from a security suite (Debian ships Firefox ESR that way) counts as security, so it is
  automatic, as unattended-upgrades would install it: the distribution made it the fix. Other OS
  updates (stable point-release fixes) are automatic. A security-only run plans every update
  from a security suite (`in_scope`), kernels included: they still wait for their approval.
* npm (semver managers): patch and minor are automatic; MAJOR needs approval, and so does
  anything the semver rules cannot classify ("other": prereleases, downgrades, git refs).

The approval rule itself is `upkeep.packages.model.approval_needed`, which `PackageUpdate.needs_approval`
applies: the model sits below this module, so the two do not import each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, NamedTuple

from upkeep.packages.model import SEMVER_MANAGERS as SEMVER_MANAGERS  # re-exported for the sandbox driver
from upkeep.packages.model import HeldBack, Kind, PackageUpdate, approval_needed

_RANGE_PREFIX = re.compile(r"^\s*(?:[\^~=v]|>=?)*\s*")
_SEMVER = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_KERNEL_RPM = re.compile(r"^kernel(?:-(?:core|modules|default|devel|uek|lt|ml|rt|64k|debug)(?:-.*)?)?$")
#: linux-* packages that are userland (headers for libc, tools, firmware, docs, build helpers), not a kernel.
_LINUX_USERLAND = re.compile(
    r"^linux-(?:libc-dev|perf|tools|cloud-tools|firmware|base|kbuild|compiler|doc|source|sound-base|cpupower"
    r"|support|config|bpf-dev|[a-z0-9.-]+?-(?:tools|cloud-tools))(?:-.*)?$"
)


class _Semver(NamedTuple):
    major: int
    minor: int
    patch: int
    pre: str

    def key(self) -> tuple[object, ...]:
        """Semver precedence: a release sorts after its prereleases; numeric ids before alphanumeric."""
        if not self.pre:
            return (self.major, self.minor, self.patch, (1,))
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre.split("."))
        return (self.major, self.minor, self.patch, (0, ids))


def _semver(version: str) -> _Semver | None:
    m = _SEMVER.match(_RANGE_PREFIX.sub("", version.strip()))
    if not m:
        return None
    major, minor, patch, pre = m.groups()
    return _Semver(int(major), int(minor or 0), int(patch or 0), pre or "")


def classify_semver(current: str, candidate: str) -> Kind:
    """"major", "minor", "patch" or "other" for a move from `current` to `candidate`.

    Range prefixes (^, ~, =, v, >=) are ignored and missing parts count as 0 ("^4" is 4.0.0).
    Like npm's caret ranges, 0.x versions are unstable: for 0.x a MINOR bump counts as "major"
    (^0.2.3 never allows 0.3.0), and for 0.0.x even a PATCH bump counts as "major".
    A prerelease candidate (1.3.0-beta.1), a downgrade, no change, or an unparseable version
    (git URL, "4.x") is "other" — never automatic for npm. A prerelease moving to its release
    (1.2.3-rc.1 → 1.2.3) is "patch".
    """
    a, b = _semver(current), _semver(candidate)
    if a is None or b is None or b.key() <= a.key():
        return "other"
    if b.major != a.major or (a.major == 0 and b.minor != a.minor):
        return "major"
    if a.major == 0 and a.minor == 0 and b.patch != a.patch:
        return "major"
    if b.pre:
        return "other"
    if b.minor != a.minor:
        return "minor"
    return "patch"


def is_kernel(name: str) -> bool:
    """Whether a package is a kernel (image, headers, modules, or a kernel meta-package).

    Every "linux" / "linux-*" package is one — images, headers, modules, signed images, Ubuntu
    flavours and their metas (linux-aws, linux-gke, linux-nvidia, linux-oem-*, ...), restricted or
    prebuilt driver modules (linux-restricted-modules-*, linux-objects-nvidia-*), Arch's
    "linux-lts" — unless it is userland: linux-libc-dev, linux-perf, linux-tools-* (and a
    flavour's *-tools-*), linux-cloud-tools-*, linux-firmware, linux-base, linux-kbuild-*,
    linux-compiler-*, linux-doc, linux-source-*. A new flavour is a kernel until listed otherwise:
    the safe side (it waits for an approval). RPM: "kernel", "kernel-core", "kernel-modules*";
    not "kernel-headers" (userland headers).
    """
    name = name.strip()
    if name == "linux" or name.startswith("linux-"):
        return not _LINUX_USERLAND.match(name)
    return bool(_KERNEL_RPM.match(name))


def _deb_epoch_and_first(version: str) -> tuple[int, int | None]:
    """(epoch, first numeric component of the upstream version) of a Debian version string."""
    epoch, upstream = 0, version.strip()
    head, sep, rest = upstream.partition(":")
    if sep and head.isdigit():
        epoch, upstream = int(head), rest
    if "-" in upstream:
        upstream = upstream.rsplit("-", 1)[0]  # drop the Debian revision (1~deb12u1, 3ubuntu0.10)
    m = re.match(r"\d+", upstream)
    return epoch, int(m.group()) if m else None


def apt_kind(name: str, current: str, candidate: str, origin: str) -> Kind:
    """The kind of an apt update: "kernel", "security", "major" or "other".

    Kernel first (a kernel security update still needs approval); then a suite/origin containing
    "-security" (e.g. "bookworm-security", "stable-security,stable", "jammy-security"); then a
    major change: the epoch changes (1:2.3-4 → 2:...) or the first component of the upstream
    version does (3.0.14-1~deb12u2 → 4.0.0-1). Everything else (point releases, ~debNuM,
    +bN rebuilds, Ubuntu revisions) is "other".
    """
    if is_kernel(name):
        return "kernel"
    if "-security" in origin.lower():
        return "security"
    if current and candidate:
        (ea, fa), (eb, fb) = _deb_epoch_and_first(current), _deb_epoch_and_first(candidate)
        if ea != eb or (fa is not None and fb is not None and fa != fb):
            return "major"
    return "other"


Scope = Literal["security", "dependencies", "all"]
DEPENDENCY_MANAGERS = frozenset({"npm"})  # the application's own dependencies (the guide's Dependency Management)


def manager_in_scope(manager: str, scope: Scope) -> bool:
    """Whether a run of `scope` plans anything of `manager` (a dependencies run leaves the OS alone)."""
    return scope != "dependencies" or manager in DEPENDENCY_MANAGERS


def in_scope(updates: Iterable[PackageUpdate], scope: Scope) -> list[PackageUpdate]:
    """The updates a run of `scope` plans: every one ("all"), the security fixes ("security"), or the
    application's dependencies ("dependencies": npm)."""
    if scope not in ("security", "dependencies", "all"):
        raise ValueError(f"unknown update scope {scope!r}: use 'security' (security fixes only), 'dependencies' "
                         "(the application's npm dependencies) or 'all'")
    if scope == "dependencies":
        return [u for u in updates if u.manager in DEPENDENCY_MANAGERS]
    return [u for u in updates if scope == "all" or u.is_security]


def needs_approval(update: PackageUpdate) -> bool:
    """Whether the guide policy holds `update` back until approved (see the module docstring)."""
    return approval_needed(update.manager, update.kind)


def _reason(update: PackageUpdate) -> str:
    what = {"kernel": "kernel update (reboot needed)", "major": "major update",
            "other": "unclassified version change"}.get(update.kind, f"{update.kind} update")
    return (f"{what} {update.current or '(none)'} → {update.candidate} needs approval "
            f"(approve {update.item_id!r} or {update.versioned_id!r})")


def split_plan(
    updates: Iterable[PackageUpdate], approved_ids: Iterable[str] = ()
) -> tuple[list[PackageUpdate], list[HeldBack]]:
    """(updates to apply, updates held back with the reason) under the policy and approvals.

    An approval is an item id ("apt:linux-image-amd64": any version) or a versioned id
    ("apt:linux-image-amd64=6.1.119-1": only that candidate). Order is preserved. A package listed
    with several candidates (npm's `wanted` before its `latest`) is applied once: the last listed
    of those that may go ahead.
    """
    approved = set(approved_ids)
    allowed: list[PackageUpdate] = []
    held: list[HeldBack] = []
    for u in updates:
        if not needs_approval(u) or u.item_id in approved or u.versioned_id in approved:
            allowed.append(u)
        else:
            held.append(HeldBack(u, _reason(u)))
    last = {u.item_id: u for u in allowed}
    return [u for u in allowed if last[u.item_id] is u], held


def approval_request(plans: Mapping[str, Sequence[PackageUpdate]]) -> tuple[dict[str, str], set[str]]:
    """What to ask approval for, once per run: item id → every distinct move of that item and the
    hosts it is planned on (hosts can differ in their current or candidate versions); and the ids an
    approver may answer with: those item ids (any version) and the versioned ids (only that candidate)."""
    moves: dict[str, dict[str, list[str]]] = {}
    valid: set[str] = set()
    for host, updates in plans.items():
        for u in updates:
            if u.needs_approval:
                moves.setdefault(u.item_id, {}).setdefault(u.describe(), []).append(host)
                valid |= {u.item_id, u.versioned_id}
    items = {item: "; ".join(f"{move} on {', '.join(hosts)}" for move, hosts in sorted(by_move.items()))
             for item, by_move in moves.items()}
    return items, valid

