"""The configuration review (pure): each host's live configuration files against the last approved copy, by checksum.

What a host reports: path → sha256 hex (optionally spelled "sha256:<hex>"), an error string when the file could not
be read, or None when it is not there; or one error string for the whole host (unreachable). The approved copy is
kept as a `upkeep.security.store.Baseline` of kind "config" whose items are "<path> sha256:<hex>", sorted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from upkeep.errors import ReviewInputError
from upkeep.humanize import count, digest
from upkeep.reviews.model import ReviewFinding

KIND = "config"  # the approved copy's kind in the security store
HOST = "(all files)"  # the path of a change that concerns a whole host that could not be read
ROWS = 200  # per host table: the rest is counted
Change = Literal["changed", "added", "removed", "unreadable"]
Observed = Mapping[str, Mapping[str, str | None] | str]  # host → (path → sha256 | error | None) | host error
_SHA256 = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")


def checksum(value: str | None) -> str | None:
    """The lowercase hex of a sha256 as a host reports it ("sha256:<hex>" or "<hex>"); None for anything else."""
    m = _SHA256.fullmatch(value.strip()) if isinstance(value, str) else None
    return m.group(1).lower() if m else None


@dataclass(frozen=True)
class ConfigChange:
    """One configuration file that differs from its approved copy, or could not be read."""

    host: str
    path: str
    change: Change
    approved: str | None = None  # sha256 hex
    live: str | None = None
    error: str = ""

    def describe(self) -> str:
        what = f"{self.path} on {self.host}" if self.path != HOST else f"The configuration files of {self.host}"
        if self.change == "changed":
            return (f"{what} changed since it was approved ({digest(self.approved or '', 'sha256')} → "
                    f"{digest(self.live or '', 'sha256')})")
        if self.change == "added":
            return f"{what} is new: it is not in the approved copy ({digest(self.live or '', 'sha256')})"
        if self.change == "removed":
            return f"{what} is gone: the approved copy has it ({digest(self.approved or '', 'sha256')})"
        return f"{what} could not be read ({self.error}); the approved copy is kept"


def _host(files: Mapping[str, str | None] | str) -> tuple[dict[str, str], dict[str, str], str]:
    """(path → sha256, path → error, host error) of what one host reported."""
    if isinstance(files, str):
        return {}, {}, files or "no answer"
    sums, errors = {}, {}
    for path, value in files.items():
        if value is None:
            continue  # not there
        if (hexsum := checksum(value)) is not None:
            sums[path] = hexsum
        else:
            errors[path] = " ".join(value.split()).removeprefix("unreadable: ") or "unreadable"
    return sums, errors, ""


def config_changes(observed: Observed, approved: Mapping[str, Mapping[str, str]] | None) -> list[ConfigChange]:
    """What differs from the approved copy, per host and path. A host with no approved copy (or `approved` None:
    the first review) reports only what it could not read: the first review proposes, it does not accuse. A file
    or host that could not be read is reported unreadable and keeps its approved state (never "removed")."""
    out = []
    for host, files in sorted(observed.items()):
        sums, errors, host_error = _host(files)
        if host_error:
            out.append(ConfigChange(host, HOST, "unreadable", error=host_error))
            continue
        out += [ConfigChange(host, p, "unreadable", (approved or {}).get(host, {}).get(p), error=e)
                for p, e in sorted(errors.items())]
        if approved is None or host not in approved:
            continue
        before = {p: checksum(v) or v for p, v in approved[host].items()}
        for path in sorted(set(before) | set(sums)):
            was, now = before.get(path), sums.get(path)
            if path in errors or was == now:
                continue
            change: Change = "added" if was is None else "removed" if now is None else "changed"
            out.append(ConfigChange(host, path, change, was, now))
    return out


def items(files: Mapping[str, str]) -> tuple[str, ...]:
    """path → sha256 as baseline items: "<path> sha256:<hex>", sorted."""
    return tuple(sorted(f"{path} sha256:{checksum(value) or value}" for path, value in files.items()))


def parse_items(baseline_items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Baseline items back to path → sha256 hex (a path may hold spaces: the checksum is the last word)."""
    out = {}
    for item in baseline_items:
        path, _, value = item.rpartition(" ")
        if not path or (hexsum := checksum(value)) is None or not value.startswith("sha256:"):
            raise ReviewInputError(f"the approved configuration item {item!r} is not '<path> sha256:<64 hex digits>': "
                             "approve the host's configuration again to rewrite its baseline")
        out[path] = hexsum
    return out


def proposal(observed: Observed, approved: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, tuple[str, ...]]:
    """What an approver would approve as each host's new baseline: the live checksums, and for a file that could not
    be read its approved one (approving does not drop what was not seen). Hosts that could not be read: none."""
    out = {}
    for host, files in sorted(observed.items()):
        sums, errors, host_error = _host(files)
        if host_error:
            continue
        kept = {p: v for p, v in (approved or {}).get(host, {}).items() if p in errors}
        out[host] = items({**kept, **sums})
    return out


def findings(changes: list[ConfigChange]) -> list[ReviewFinding]:
    """A warning per change: a configuration nobody approved is running (or one could not be checked)."""
    fix = {"changed": "approve the new configuration, or restore the approved file",
           "added": "approve the new file, or remove it", "removed": "approve its removal, or restore it",
           "unreadable": "check the file's permissions and the host's connection; then run the review again"}
    return [ReviewFinding("warning", f"{c.host} {c.path}" if c.path != HOST else c.host, c.describe(), fix[c.change])
            for c in changes]


def summary(observed: Observed, changes: list[ConfigChange], approved: Mapping[str, object] | None) -> str:
    """'3 of 4 hosts match their approved configuration (24 files checked); web-2: 1 changed, 1 added.'"""
    files = sum(len(_host(f)[0]) for f in observed.values())
    if approved is None:
        return (f"No configuration approved yet: {count(files, 'file')} read on {count(len(observed), 'host')}; "
                "the tables below are the proposal to approve.")
    hosts: dict[str, list[ConfigChange]] = {}
    for c in changes:
        hosts.setdefault(c.host, []).append(c)
    kinds = ("changed", "added", "removed", "unreadable")
    per = [f"{h}: " + ", ".join(f"{n} {k}" for k in kinds if (n := sum(c.change == k for c in cs)))
           for h, cs in sorted(hosts.items())]
    new = sorted(h for h in observed if h not in approved and h not in hosts)
    per += [f"{_and(new)}: no approved copy yet (proposed below)"] if new else []
    with_copy = [h for h in observed if h in approved]
    clean = sum(h not in hosts for h in with_copy)
    return (f"{clean} of {count(len(with_copy), 'host')} match their approved configuration ({count(files, 'file')} "
            "checked)" + (f"; {'; '.join(per)}." if per else "."))


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def markdown(observed: Observed, approved: Mapping[str, Mapping[str, str]] | None) -> str:
    """The configuration section: the sentence, then per host a table of path, approved and live checksum, change."""
    changes = config_changes(observed, approved)
    out = ["## Configuration\n", summary(observed, changes, approved), ""]
    by = {(c.host, c.path): c for c in changes}
    for host, files in sorted(observed.items()):
        sums, errors, host_error = _host(files)
        out.append(f"### {host}\n")
        if host_error:
            out += [f"Could not be read: {host_error}. Its approved copy is kept.", ""]
            continue
        before = {p: checksum(v) or v for p, v in (approved or {}).get(host, {}).items()}
        paths = sorted(set(before) | set(sums) | set(errors))
        rows = [f"| `{p}` | {_short(before.get(p))} | {_short(sums.get(p)) if p not in errors else _cell(errors[p])} "
                f"| {by[(host, p)].change if (host, p) in by else 'unchanged' if p in before else 'proposed'} |"
                for p in paths]
        more = [f"\n…and {len(rows) - ROWS} more."] if len(rows) > ROWS else []
        out += ["| path | approved | live | change |", "|---|---|---|---|", *rows[:ROWS], *more, ""]
    return "\n".join(out).rstrip() + "\n"


def _short(hexsum: str | None) -> str:
    return digest(hexsum, "sha256") if hexsum else "—"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "/")[:120]
