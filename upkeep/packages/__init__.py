"""Package-manager drivers (apt, npm, a test sandbox) behind one interface, and the update policy.

Policy (the system update routine): OS security updates are automatic; OS major and kernel
updates need an approval; npm patch and minor updates are automatic, npm major updates (and
unclassifiable version changes) need an approval. See `upkeep.packages.policy`.
"""

from upkeep.packages.apt import AptDriver, parse_apt_get_simulate, parse_apt_list_upgradable, parse_dpkg_query
from upkeep.packages.base import PackageDriver, snapshot
from upkeep.packages.model import HeldBack, Installed, Kind, PackageError, PackageUpdate, UpdatePlan
from upkeep.packages.npm import NpmDriver, parse_npm_ls, parse_npm_outdated
from upkeep.packages.policy import (
    Scope,
    approval_request,
    apt_kind,
    classify_semver,
    in_scope,
    is_kernel,
    manager_in_scope,
    needs_approval,
    split_plan,
)
from upkeep.packages.sandbox import SandboxDriver, seed, set_fault

__all__ = [
    "AptDriver", "HeldBack", "Installed", "Kind", "NpmDriver", "PackageDriver", "PackageError",
    "PackageUpdate", "SandboxDriver", "Scope", "UpdatePlan", "approval_request", "apt_kind", "classify_semver", "in_scope",
    "is_kernel", "manager_in_scope", "needs_approval", "parse_apt_get_simulate", "parse_apt_list_upgradable", "parse_dpkg_query",
    "parse_npm_ls", "parse_npm_outdated", "seed", "set_fault", "snapshot", "split_plan",
]
