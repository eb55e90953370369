"""Documentation checks (pure): the API description against the routes served, the changelog against the deployed
versions, and the documentation links. Checks only: a user's documentation is never edited."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from upkeep.errors import ReviewInputError
from upkeep.humanize import count
from upkeep.reviews.model import ReviewFinding

#: Paths that are no part of the API: health checks, the control actions, the documentation itself.
IGNORED_PATHS: tuple[str, ...] = ("/health", "/worker-health", "/_control/*", "/openapi.json", "/CHANGELOG.md",
                                  "/docs/*")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
ID = ":id"  # how the log analysis spells a path segment that names one record (sandbox.standin.route_of)
_TEMPLATE = re.compile(r"\{[^}/]*\}")
#: "## [1.4.2] - 2026-11-30", "## 1.4.2", "## v1.4.2 (2026-11-30)": a version, then nothing, a dash or a date.
_VERSION_HEADING = re.compile(r"^#{1,3}[ \t]+\[?v?(\d+(?:\.\d+){1,3}(?:[-+][0-9A-Za-z.+-]+)?)\]?[ \t]*(?:$|[-–—(]|\d{4}-)",
                              re.MULTILINE)
ROWS = 50  # per list: the rest is counted


# -- API routes ---------------------------------------------------------------------------------
def _base_path(openapi: Mapping[str, Any]) -> str:
    """The path prefix every route shares: OpenAPI 3 `servers[0].url`'s path, Swagger 2 `basePath`."""
    servers = openapi.get("servers")
    url = servers[0].get("url", "") if isinstance(servers, list) and servers and isinstance(servers[0], dict) else ""
    base = openapi.get("basePath") or (urlsplit(url).path if "://" in url or url.startswith("/") else "")
    return "/" + str(base).strip("/") if str(base).strip("/") else ""


def _normalise(path: str) -> str:
    path = "/" + path.strip("/")
    return "/".join(ID if _TEMPLATE.fullmatch(s) else _TEMPLATE.sub(ID, s) for s in path.split("/"))


def described_routes(openapi: Mapping[str, Any]) -> set[str]:
    """The routes an OpenAPI 3 (or Swagger 2) document describes, spelled as the log analysis names them:
    `{"/api/events/{id}": {"get": …}}` → "GET /api/events/:id"."""
    paths = openapi.get("paths") if isinstance(openapi, Mapping) else None
    if not isinstance(paths, Mapping):
        raise ReviewInputError("the API description has no `paths` object: the document fetched is not an OpenAPI "
                         "description; point the documentation check at the application's openapi.json")
    base = _base_path(openapi)
    out = set()
    for path, item in paths.items():
        if isinstance(item, Mapping):
            route = _normalise(base + "/" + str(path).lstrip("/"))
            out |= {f"{m.upper()} {route}" for m in item if str(m).lower() in HTTP_METHODS}
    return out


def _split(route: str) -> tuple[str, str] | None:
    method, _, path = route.partition(" ")
    return (method.upper(), path.rstrip("/") or "/") if path.startswith("/") else None


def _covers(described: str, served: str) -> bool:
    """A described route covers a served one: same method (GET covers HEAD), same segments, a template segment
    standing for any one segment (an id is logged as ":id", a slug as itself)."""
    d, s = _split(described), _split(served)
    if d is None or s is None or (d[0] != s[0] and (d[0], s[0]) != ("GET", "HEAD")):
        return False
    ds, ss = d[1].split("/"), s[1].split("/")
    return len(ds) == len(ss) and all(a == b or a == ID for a, b in zip(ds, ss, strict=True))


def _api_routes(served: Mapping[str, int], ignored: Sequence[str]) -> dict[str, int]:
    """The served routes that belong to the API: a method and a path, not an ignored path."""
    out = {}
    for route, n in served.items():
        parts = _split(route)
        if parts is not None and not any(fnmatchcase(parts[1], p) for p in ignored):
            out[route] = int(n)
    return out


def served_routes(summaries: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Route → requests summed over the log analysis' daily summaries (`{"routes": {route: {"requests": n}}}`)."""
    out: dict[str, int] = {}
    for day in summaries:
        for route, stats in (day.get("routes") or {}).items():
            if isinstance(stats, Mapping):
                out[str(route)] = out.get(str(route), 0) + int(stats.get("requests", 0))
    return out


def _gaps(described: Iterable[str], api: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """(served routes no described route covers, busiest first; described routes that cover no served one)."""
    desc = sorted(set(described))
    undescribed = [r for r in sorted(api, key=lambda r: (-api[r], r)) if not any(_covers(d, r) for d in desc)]
    return undescribed, [d for d in desc if not any(_covers(d, s) for s in api)]


def route_findings(described: Iterable[str], served: Mapping[str, int], *,
                   ignored: Sequence[str] = IGNORED_PATHS) -> list[ReviewFinding]:
    """A warning per route served but not described (people call an API nobody documented), an info per route
    described but not served this week (documented, unused or gone)."""
    api = _api_routes(served, ignored)
    undescribed, unserved = _gaps(described, api)
    out = [ReviewFinding("warning", r, f"{r} answered {count(api[r], 'request')} this week but is not in the API "
                                       "description", "add it to the API description, or stop serving it")
           for r in undescribed]
    return out + [ReviewFinding("info", d, f"{d} is in the API description but answered no request this week",
                                "remove it from the description if it is gone") for d in unserved]


# -- changelog ------------------------------------------------------------------------------------
def changelog_versions(text: str) -> list[str]:
    """The versions a changelog has headings for, in order: `## [1.4.2] - 2026-11-30`, `## 1.4.2`, `## v1.4.2`."""
    return [m.group(1) for m in _VERSION_HEADING.finditer(text)]


def _bare(version: str) -> str:
    return version.strip().removeprefix("v").removeprefix("V")


def changelog_finding(versions: Sequence[str], deployed: Mapping[str, str | None]) -> list[ReviewFinding]:
    """A warning per deployed version the changelog does not list, naming its hosts; an info per host that
    reported no version."""
    listed = {_bare(v) for v in versions}
    hosts: dict[str, list[str]] = {}
    for host, version in sorted(deployed.items()):
        hosts.setdefault(_bare(version or ""), []).append(host)
    latest = f"the latest it lists is {versions[0]}" if versions else "it lists no version (no `## [1.4.2]` heading)"
    out = [ReviewFinding("warning", f"changelog {v}", f"Version {v}, deployed on {_and(on)}, is not in the changelog",
                         f"{latest}; add a section for {v}")
           for v, on in hosts.items() if v and v not in listed]
    out += [ReviewFinding("info", f"version on {h}", f"{h} reported no application version: the changelog check "
                          "does not cover it", "check its health endpoint answers a version") for h in hosts.get("", [])]
    return out


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# -- links ----------------------------------------------------------------------------------------
def _failed(status: int | None, error: str) -> bool:
    return bool(error) or status is None or status >= 400


def _answer(status: int | None, error: str) -> str:
    return f"HTTP {status}" if status is not None and not error else " ".join((error or "no answer").split())


def link_findings(results: Mapping[str, tuple[int | None, str]]) -> list[ReviewFinding]:
    """A warning per documentation link that failed: an HTTP status ≥ 400 or no answer (redirects are fine)."""
    return [ReviewFinding("warning", url, f"The documentation link {url} " + (
        f"answered HTTP {status}" if status is not None and not error else f"could not be fetched: {_answer(status, error)}"),
        "fix the page or the link to it") for url, (status, error) in sorted(results.items()) if _failed(status, error)]


# -- the section ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DocsReview:
    """What the documentation check saw; any part may be missing (not configured)."""

    described: frozenset[str] | None = None
    served: Mapping[str, int] | None = None  # route → requests in the last week
    versions: tuple[str, ...] | None = None  # from the changelog
    deployed: Mapping[str, str | None] = field(default_factory=dict)  # host → version
    links: Mapping[str, tuple[int | None, str]] = field(default_factory=dict)  # url → (status, error)
    ignored: tuple[str, ...] = IGNORED_PATHS

    def findings(self) -> list[ReviewFinding]:
        out = []
        if self.described is not None and self.served is not None:
            out += route_findings(self.described, self.served, ignored=self.ignored)
        if self.versions is not None:
            out += changelog_finding(self.versions, self.deployed)
        return out + link_findings(self.links)

    def describe(self) -> str:
        """'The API description covers 7 of 8 served routes; the changelog lists the deployed 1.4.2; 5 of 6
        documentation links resolve.'"""
        parts = []
        if self.described is not None and self.served is not None:
            api = _api_routes(self.served, self.ignored)
            covered = sum(any(_covers(d, r) for d in self.described) for r in api)
            parts.append(f"the API description covers {covered} of {count(len(api), 'served route')}")
        if self.versions is not None:
            listed = {_bare(v) for v in self.versions}
            deployed = sorted({_bare(v) for v in self.deployed.values() if v})
            missing = [v for v in deployed if v not in listed]
            if missing:
                parts.append(f"the changelog misses the deployed {_and(missing)}")
            elif deployed:
                parts.append(f"the changelog lists the deployed {_and(deployed)}")
            else:
                parts.append("no host reported a deployed version to look for in the changelog")
        if self.links:
            ok, n = sum(not _failed(s, e) for s, e in self.links.values()), len(self.links)
            parts.append(f"{ok} of {n} documentation links resolve" if n > 1 else
                         f"the documentation link {'resolves' if ok else 'fails'}")
        if not parts:
            return "No documentation check was configured."
        text = "; ".join(parts) + "."
        return text[0].upper() + text[1:]


def _rows(header: str, rows: list[str]) -> list[str]:
    cols = header.count("|") - 1
    more = [f"\n…and {len(rows) - ROWS} more."] if len(rows) > ROWS else []
    return [header, "|" + "---|" * cols, *rows[:ROWS], *more, ""]


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "/")


def markdown(review: DocsReview) -> str:
    """The documentation section: the sentence, then what is served but undescribed, described but unserved,
    the deployed versions per host and the links that failed."""
    out = ["## Documentation\n", review.describe(), ""]
    if review.described is not None and review.served is not None:
        api = _api_routes(review.served, review.ignored)
        undescribed, unserved = _gaps(review.described, api)
        if undescribed:
            out += ["### Served but not in the API description\n"]
            out += _rows("| route | requests this week |", [f"| `{r}` | {api[r]:,} |" for r in undescribed])
        if unserved:
            out += ["### In the API description, no request this week\n", *(f"- `{r}`" for r in unserved[:ROWS]), ""]
    if review.versions is not None and review.deployed:
        listed = {_bare(v) for v in review.versions}
        out += ["### Deployed versions\n"]
        out += _rows("| host | version | in the changelog |",
                     [f"| {h} | {v or 'not reported'} | {('yes' if _bare(v) in listed else 'no') if v else '—'} |"
                      for h, v in sorted(review.deployed.items())])
    broken = [(u, s, e) for u, (s, e) in sorted(review.links.items()) if _failed(s, e)]
    if broken:
        out += ["### Documentation links that failed\n"]
        out += _rows("| link | answer |", [f"| {_cell(u)} | {_cell(_answer(s, e))} |" for u, s, e in broken])
    return "\n".join(out).rstrip() + "\n"
