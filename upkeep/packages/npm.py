"""npm driver: the dependencies of one Node application directory on a host.

`npm outdated --json` exits 1 when something is outdated: that is a result, not an error.
Each outdated package yields an update to its `latest` version, classified with semver
(`classify_semver`), so the policy lets patch/minor through and holds majors back.
An update first saves package.json and package-lock.json (`.upkeep-rollback/` in the app's directory);
a rollback puts them back and reinstalls the exact tree with `npm ci`. Clean-up is `npm prune`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from upkeep.hosts.base import Host
from upkeep.packages.base import check_args, check_updates, run_or_raise
from upkeep.packages.model import PackageError, PackageUpdate
from upkeep.packages.policy import classify_semver

MANAGER = "npm"
_NAME = re.compile(r"(?:@[A-Za-z0-9][\w.\-]*/)?[A-Za-z0-9][\w.\-]*")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+\-]*")
SAVED = ".upkeep-rollback"  # in the app's directory: package.json and package-lock.json as they were before an update


def _load(text: str, what: str) -> dict[str, Any]:
    text = text.strip()
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PackageError(f"{what}: output is not JSON ({exc.msg} at {exc.pos})") from exc
    if not isinstance(data, dict):
        raise PackageError(f"{what}: expected a JSON object, got {type(data).__name__}")
    error = data.get("error")
    if isinstance(error, dict):
        raise PackageError(f"{what}: {error.get('code', 'error')}: {error.get('summary', '')}".strip())
    return data


def parse_npm_outdated(text: str, source: str | None = None) -> list[PackageUpdate]:
    """Updates from `npm outdated --json`: name → {current, wanted, latest, dependent, location}.

    A dependency that is not installed (no "current") or already at `latest` is skipped; a
    value that is a list (one entry per location) uses its first installed entry. When `wanted`
    (the newest version the declared range allows) is a patch or minor move short of `latest`, it
    is listed too, before `latest`: it goes ahead on its own while `latest` waits for an approval
    (`split_plan` applies one candidate per package, the newest that may go ahead). Each update's source is
    `source` (the registry the versions come from) when given, else the dependent project.
    """
    updates: list[PackageUpdate] = []
    for name, info in sorted(_load(text, "npm outdated").items()):
        entries = info if isinstance(info, list) else [info]
        entry = next((e for e in entries if isinstance(e, dict) and e.get("current")), None)
        if entry is None or not entry.get("latest") or entry["latest"] == entry["current"]:
            continue
        current, latest, wanted = str(entry["current"]), str(entry["latest"]), str(entry.get("wanted") or "")
        if wanted not in ("", current, latest) and classify_semver(current, wanted) in ("patch", "minor"):
            updates.append(PackageUpdate(MANAGER, name, current, wanted, classify_semver(current, wanted),
                                         source if source is not None else str(entry.get("dependent", ""))))
        updates.append(PackageUpdate(MANAGER, name, current, latest, classify_semver(current, latest),
                                     source if source is not None else str(entry.get("dependent", ""))))
    return updates


def parse_npm_ls(text: str) -> dict[str, str]:
    """name → installed version of the top-level dependencies from `npm ls --json --depth=0`.

    Missing dependencies (no "version", or "missing": true) are left out.
    """
    deps = _load(text, "npm ls").get("dependencies") or {}
    return {name: str(d["version"]) for name, d in sorted(deps.items())
            if isinstance(d, dict) and d.get("version") and not d.get("missing")}


def describe_prune(text: str) -> str:
    """What `npm prune` did, as the report says it: "removed 2 packages" or "nothing extraneous"."""
    said = re.sub(r"\s+in \d+(?:\.\d+)?m?s$", "", " ".join(text.split()))
    return "nothing extraneous" if not said or said.startswith("up to date") else said


class NpmDriver:
    """npm for the application in `app_dir` on `host` (every command uses `--prefix app_dir`)."""

    manager = MANAGER

    def __init__(self, host: Host, app_dir: str, *, timeout: float = 900.0) -> None:
        if not app_dir or app_dir.startswith("-"):
            raise PackageError(f"invalid npm app_dir {app_dir!r}", host=host.name)
        self.host = host
        self.app_dir = app_dir
        self.timeout = timeout

    def outdated(self) -> list[PackageUpdate]:
        """The outdated dependencies, each as an update to its latest version, from the app's registry."""
        registry = run_or_raise(self.host, ["npm", "config", "get", "registry", "--prefix", self.app_dir],
                                "npm config get registry", timeout=self.timeout).stdout.strip()
        argv = ["npm", "outdated", "--json", "--prefix", self.app_dir]
        result = run_or_raise(self.host, argv, "npm outdated", timeout=self.timeout, ok_codes=(0, 1))
        try:
            return parse_npm_outdated(result.stdout, f"registry {registry}" if registry else None)
        except PackageError as exc:
            raise PackageError(str(exc), host=self.host.name) from exc

    def upgradable(self) -> list[PackageUpdate]:
        """Same as `outdated()` (the PackageDriver interface)."""
        return self.outdated()

    def refresh(self) -> str:
        return "nothing to refresh (npm asks the registry on every plan)"

    def cleanup(self) -> str:
        """`npm prune`: packages no longer in package.json leave node_modules; a sentence."""
        result = run_or_raise(self.host, ["npm", "prune", "--no-audit", "--no-fund", "--prefix", self.app_dir],
                              "npm prune", timeout=self.timeout)
        return f"npm prune: {describe_prune(result.stdout)}"

    def installed(self, names: Sequence[str] | None = None) -> dict[str, str]:
        """name → installed version of the top-level dependencies (of `names` if given)."""
        argv = ["npm", "ls", "--json", "--depth=0", "--prefix", self.app_dir]
        # npm ls exits 1 on missing/invalid/extraneous dependencies but still prints the tree
        result = run_or_raise(self.host, argv, "npm ls", timeout=self.timeout, ok_codes=(0, 1))
        try:
            versions = parse_npm_ls(result.stdout)
        except PackageError as exc:
            raise PackageError(str(exc), host=self.host.name) from exc
        wanted = None if names is None else set(names)
        return versions if wanted is None else {n: v for n, v in versions.items() if n in wanted}

    def apply(self, updates: Sequence[PackageUpdate]) -> None:
        """Save package.json and package-lock.json (what a rollback restores), then
        `npm install --save-exact name@candidate ...` in app_dir."""
        updates = check_updates(self.manager, updates, self.host.name)
        self._save_manifests()
        self._install({u.name: u.candidate for u in updates}, "apply")

    def rollback(self, previous: dict[str, str]) -> None:
        """Back to exactly `previous` (name → version): the manifests saved before the update are put back and
        `npm ci` reinstalls the whole tree from that lockfile; a package the lockfile does not bring back
        (none saved, or a lockfile changed since) is then installed at its exact version."""
        check_args(_NAME, "npm package name", previous, self.host.name)
        check_args(_VERSION, "npm version", previous.values(), self.host.name)
        saved = f"{self.app_dir}/{SAVED}"
        if self.host.run(["test", "-f", f"{saved}/package-lock.json"], check=False).exit_code == 0:
            run_or_raise(self.host, ["cp", "-p", "--", f"{saved}/package.json", f"{saved}/package-lock.json",
                                     f"{self.app_dir}/"], "npm rollback (restore the saved lockfile)")
            run_or_raise(self.host, ["npm", "ci", "--no-audit", "--no-fund", "--prefix", self.app_dir],
                         "npm ci (rollback)", timeout=self.timeout)
        now = self.installed(list(previous))
        self._install({n: v for n, v in previous.items() if now.get(n) != v}, "rollback")

    def _save_manifests(self) -> None:
        """package.json and package-lock.json (when there is one) copied to `<app_dir>/.upkeep-rollback/`."""
        saved = f"{self.app_dir}/{SAVED}"
        files = [f"{self.app_dir}/package.json"]
        if self.host.run(["test", "-f", f"{self.app_dir}/package-lock.json"], check=False).exit_code == 0:
            files.append(f"{self.app_dir}/package-lock.json")
        run_or_raise(self.host, ["mkdir", "-p", "--", saved], "npm: save the manifests")
        run_or_raise(self.host, ["rm", "-f", "--", f"{saved}/package.json", f"{saved}/package-lock.json"],
                     "npm: save the manifests")
        run_or_raise(self.host, ["cp", "-p", "--", *files, f"{saved}/"], "npm: save the manifests")

    def _install(self, pins: dict[str, str], what: str) -> None:
        names = check_args(_NAME, "npm package name", pins, self.host.name)
        check_args(_VERSION, "npm version", pins.values(), self.host.name)
        if not names:
            return
        argv = ["npm", "install", "--save-exact", "--no-audit", "--no-fund", "--prefix", self.app_dir,
                *(f"{n}@{pins[n]}" for n in names)]
        run_or_raise(self.host, argv, f"npm install ({what})", timeout=self.timeout)
