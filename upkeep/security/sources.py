"""Security sources parsed into the one findings schema (pure): `npm audit --json`, `pip-audit -f json`, and
the installed Debian packages (a dpkg status file) against an OSV vulnerability feed.

Malformed input is a SecurityInputError naming the source and what was wrong, never a crash half-way.
"""

from __future__ import annotations

import io
import json
import re
import time
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from upkeep.errors import SecurityInputError as SecurityInputError  # re-exported: the parsers' error
from upkeep.security.findings import Finding, Severity


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SecurityInputError(f"{what}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc


_NPM_SEVERITY: dict[str, Severity] = {"critical": "critical", "high": "high", "moderate": "medium", "low": "low", "info": "info"}


def npm_audit(text: str, host: str, project: str) -> list[Finding]:
    """`npm audit --json` (npm 7+, auditReportVersion 2): one finding per advisory and package."""
    data = _json(text, f"npm audit of {project}")
    if not isinstance(data, dict) or data.get("auditReportVersion") != 2 or not isinstance(data.get("vulnerabilities"), dict):
        raise SecurityInputError(f"npm audit of {project}: expected auditReportVersion 2 with 'vulnerabilities' (npm 7 or later)")
    out = []
    for name, vuln in sorted(data["vulnerabilities"].items()):
        fix = vuln.get("fixAvailable")
        if fix is True:
            fix_text = "npm audit fix"
        elif isinstance(fix, dict):
            major = " (a major change)" if fix.get("isSemVerMajor") else ""
            fix_text = f"upgrade {fix.get('name')} to {fix.get('version')}{major}"
        else:
            fix_text = "no fix available yet: remove the dependency or add a waiver"
        for via in vuln.get("via", []):
            if not isinstance(via, dict):  # a package name: vulnerable through that one, reported there
                continue
            advisory = str(via.get("url", "")).rsplit("/", 1)[-1] or str(via.get("source"))
            severity = _NPM_SEVERITY.get(str(via.get("severity")), "medium")
            out.append(Finding("npm-audit", host, f"{project} {name} {advisory}", severity,
                               f"{name} {via.get('range', '')}: {via.get('title', 'vulnerability')}",
                               f"{project}: {name} ({'direct' if vuln.get('isDirect') else 'transitive'}) {via.get('url', '')}",
                               fix_text))
    return out


def pip_audit(text: str, host: str, project: str) -> list[Finding]:
    """`pip-audit -f json`: one finding per vulnerability of a dependency."""
    data = _json(text, f"pip-audit of {project}")
    deps = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(deps, list):
        raise SecurityInputError(f"pip-audit of {project}: expected an object with 'dependencies' (pip-audit -f json)")
    out = []
    for dep in deps:
        for v in dep.get("vulns") or []:
            aliases = [a for a in v.get("aliases", []) if a.startswith("CVE-")]
            fixes = v.get("fix_versions") or []
            also = f" ({', '.join(aliases)})" if aliases else ""
            out.append(Finding("pip-audit", host, f"{project} {dep['name']} {v['id']}", "high",
                               f"{dep['name']} {dep.get('version', '?')}: {v['id']}{also}",
                               f"{project}: {str(v.get('description', '')).strip()[:300]}",
                               f"upgrade {dep['name']} to {fixes[0]}" if fixes else "no fix version yet"))
    return out


def dpkg_installed(status: str) -> dict[str, str]:
    """name → version of the installed packages of a dpkg status file (`/var/lib/dpkg/status`)."""
    out: dict[str, str] = {}
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields and "Version" in fields:
            out[fields["Package"]] = fields["Version"]
    return out


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256 if c else 0


def _compare_part(a: str, b: str) -> int:
    """dpkg's comparison of one upstream version or revision (lexical with ~ first, then numeric runs)."""
    while a or b:
        la = re.match(r"[^0-9]*", a).group()  # type: ignore[union-attr]
        lb = re.match(r"[^0-9]*", b).group()  # type: ignore[union-attr]
        for i in range(max(len(la), len(lb))):
            ca, cb = _order(la[i] if i < len(la) else ""), _order(lb[i] if i < len(lb) else "")
            if ca != cb:
                return -1 if ca < cb else 1
        a, b = a[len(la):], b[len(lb):]
        na = re.match(r"[0-9]*", a).group()  # type: ignore[union-attr]
        nb = re.match(r"[0-9]*", b).group()  # type: ignore[union-attr]
        if int(na or 0) != int(nb or 0):
            return -1 if int(na or 0) < int(nb or 0) else 1
        a, b = a[len(na):], b[len(nb):]
    return 0


@lru_cache(maxsize=65536)  # a fleet shares its versions: each pair is compared once per worker
def debian_version_compare(a: str, b: str) -> int:
    """-1, 0, 1 as `dpkg --compare-versions a lt/eq/gt b` (epoch, upstream version, revision)."""
    def split(v: str) -> tuple[int, str, str]:
        epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
        return int(epoch or 0), upstream, revision
    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def _osv_severity(entry: Mapping[str, Any]) -> Severity:
    text = str((entry.get("database_specific") or {}).get("severity") or entry.get("severity") or "").lower()
    for s in ("critical", "high", "medium", "low"):
        if s in text:
            return s
    return "medium"


@dataclass(frozen=True)
class Advisory:
    """One affected package of an OSV entry, as the matching needs it."""

    id: str
    cves: tuple[str, ...]
    summary: str
    severity: Severity
    ranges: tuple[tuple[str, str | None], ...]  # (introduced, fixed or None)


FeedIndex = dict[str, list[Advisory]]  # package name → its advisories, for one release


def index_feed(feed: Iterable[Mapping[str, Any]], release: str = "Debian:12") -> FeedIndex:
    """The entries of `release` by the package they name, read once (a feed of every Debian advisory has ~60,000
    entries: walking it again for each host made a 100-host audit spend most of its time here)."""
    out: FeedIndex = {}
    for entry in feed:
        if not isinstance(entry, Mapping) or "id" not in entry or "affected" not in entry:
            raise SecurityInputError(f"vulnerability feed: an entry without id/affected: {str(entry)[:120]}")
        cves = tuple(a for a in entry.get("aliases", []) if a.startswith("CVE-")) or (str(entry["id"]),)
        for aff in entry["affected"]:
            pkg = aff.get("package") or {}
            if pkg.get("ecosystem") != release or not pkg.get("name"):
                continue
            ranges = []
            for rng in aff.get("ranges", []):
                intro, fixed = "0", None
                for ev in rng.get("events", []):
                    intro = ev.get("introduced", intro)
                    fixed = ev.get("fixed", fixed)
                ranges.append((str(intro), None if fixed is None else str(fixed)))
            out.setdefault(str(pkg["name"]), []).append(Advisory(
                str(entry["id"]), cves, str(entry.get("summary", ""))[:300], _osv_severity(entry), tuple(ranges)))
    return out


def dpkg_sources(status: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name → (version, installed binary packages) for every installed binary package and every source package they
    were built from (`Source: openssl (3.0.14-1)`): Debian's advisories name source packages (openssl), the hosts
    install binaries (libssl3, openssl)."""
    binaries: dict[str, str] = {}
    sources: dict[str, tuple[str, list[str]]] = {}
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if not (fields.get("Status", "").endswith(" installed") and "Package" in fields and "Version" in fields):
            continue
        name, version = fields["Package"], fields["Version"]
        binaries[name] = version
        src = fields.get("Source", name).split()
        src_version = src[1].strip("()") if len(src) > 1 else version
        sources.setdefault(src[0], (src_version, []))[1].append(name)
    out: dict[str, tuple[str, tuple[str, ...]]] = {n: (v, (n,)) for n, v in binaries.items()}
    out.update({n: (v, tuple(sorted(b))) for n, (v, b) in sources.items()})  # a source's name covers its binaries
    return out


def affecting(index: FeedIndex, names: Iterable[str], version: str) -> list[Advisory]:
    """The advisories of any of `names` (a binary package and its source) that `version` is affected by."""
    out = []
    for name in dict.fromkeys(names):
        for adv in index.get(name, ()):
            if any((intro == "0" or debian_version_compare(version, intro) >= 0)
                   and (fixed is None or debian_version_compare(version, fixed) < 0) for intro, fixed in adv.ranges):
                out.append(adv)
    return out


def debian_vulnerabilities(status: str, feed: Iterable[Mapping[str, Any]] | FeedIndex, host: str,
                           release: str = "Debian:12") -> list[Finding]:
    """The installed packages that an OSV entry of `release` says are affected (installed < fixed, at or after
    introduced), matched by source package (and by binary, for an entry that names one): one finding per package
    and entry, naming the installed binaries and the fixed version to install. `feed`: entries, or `index_feed`'s."""
    index = feed if isinstance(feed, dict) else index_feed(feed, release)
    out = []
    for name, (version, binaries) in sorted(dpkg_sources(status).items()):
        for adv in index.get(name, ()):
            for intro, fixed in adv.ranges:
                if (intro == "0" or debian_version_compare(version, intro) >= 0) and \
                        (fixed is None or debian_version_compare(version, fixed) < 0):
                    installed = "" if binaries == (name,) else f" ({', '.join(binaries[:4])}{'…' if len(binaries) > 4 else ''})"
                    out.append(Finding("debian-osv", host, f"{name} {adv.id}", adv.severity,
                                       f"{name} {version}{installed}: {', '.join(adv.cves)}", adv.summary,
                                       f"install {name} {fixed} (security-patches)" if fixed else "no fixed version yet"))
                    break
    return out


def parse_feed(data: bytes, source: str) -> list[dict[str, Any]]:
    """OSV entries from a feed's bytes: a JSON list, an object with `vulns`, one entry, or a zip of entries (OSV's
    `Debian/all.zip`)."""
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return [_json(z.read(n).decode(), f"vulnerability feed {source} ({n})") for n in z.namelist()
                        if n.endswith(".json")]
        except zipfile.BadZipFile as exc:
            raise SecurityInputError(f"vulnerability feed {source}: a broken zip ({exc})") from exc
    data_ = _json(data.decode("utf-8", "replace"), f"vulnerability feed {source}")
    entries = data_.get("vulns", [data_]) if isinstance(data_, dict) else data_
    if not isinstance(entries, list):
        raise SecurityInputError(f"vulnerability feed {source}: expected OSV entries (a list, or an object with 'vulns')")
    return entries


def read_feed(source: str, timeout: float = 60) -> tuple[list[dict[str, Any]], float | None]:
    """(entries, age in seconds when known) of the configured feed: an https:// URL or a file."""
    if source.startswith(("https://", "http://")):
        try:
            with urllib.request.urlopen(source, timeout=timeout) as resp:  # noqa: S310 - the inventory's URL, http(s) only
                return parse_feed(resp.read(), source), None
        except OSError as exc:
            raise SecurityInputError(f"vulnerability feed {source}: cannot download ({exc}); check the URL or use a "
                                     "file that a job refreshes") from exc
    path = Path(source)
    try:
        data, age = path.read_bytes(), time.time() - path.stat().st_mtime
    except OSError as exc:
        raise SecurityInputError(f"vulnerability feed {source}: cannot read the file ({exc.strerror})") from exc
    return parse_feed(data, source), age
