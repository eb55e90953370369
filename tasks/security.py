"""Tasks that read the hosts and endpoints for the security routines: the audit's parts per host, pending security
updates, the certificates (observe, renew). One task per stage over all hosts (per-host outcomes, like the update
tasks); the feed is read once per task, never per host."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger

from tasks._base import group_result, resources, step
from upkeep.config.render import host_path
from upkeep.errors import HostError
from upkeep.hosts.fanout import FanOutResult, fan_out
from upkeep.packages.hosts import drivers_for
from upkeep.security.certcheck import CertResult, observe, renew
from upkeep.security.findings import Finding
from upkeep.security.gather import HostAudit, audit_host
from upkeep.security.sources import FeedIndex, affecting, dpkg_sources, index_feed, read_feed

PARTS = ("permissions", "sshd", "firewall", "packages", "dependencies", "access")


def _feed() -> FeedIndex:
    """The configured feed, indexed by package once for the task (every host is matched against the index)."""
    cfg = resources().env.security.feed
    if cfg is None:
        return {}
    entries, age = read_feed(cfg.source)
    index = index_feed(entries, cfg.release)
    stale = age is not None and cfg.max_age is not None and age > cfg.max_age.total_seconds()
    get_run_logger().log(30 if stale else 20, "vulnerability feed %s: %d entries, %d package(s) of %s%s", cfg.source,
                         len(entries), len(index), cfg.release,
                         f"; STALE: {age / 86400:.1f} days old" if stale and age is not None else "")
    return index


@step("audit-hosts", retries=1)
def audit_hosts(hosts: list[str], parts: list[str]) -> FanOutResult[HostAudit]:
    """Every part of the audit on every host (permissions, sshd, firewall, packages against the feed, dependency
    audits, access); a part that cannot be read is said in the host's row, the others still count; a host that
    cannot be reached is a failed outcome in the result (the flow reports it), never raised here."""
    res = resources()
    feed = _feed() if "packages" in parts else {}
    result = fan_out({h: h for h in hosts}, lambda h: audit_host(res, h, parts, feed),
                     max_concurrency=res.env.max_concurrency)
    get_run_logger().log(30 if result.failed else 20, "audit (%s): %s", ", ".join(parts), result.summary())
    return result.portable()  # an unreachable host is a finding, not the end of everyone else's audit


@step("pending-security-updates", retries=1)
def pending_security_updates(hosts: list[str]) -> FanOutResult[list[Finding]]:
    """Refresh the package lists (apt: only when older than its cache_valid_time) and list the security updates
    waiting on each host, as findings (their age comes from the findings store: first seen); the CVEs where the
    vulnerability feed names the package. A host that cannot be reached is a failed outcome, not raised."""
    res = resources()
    feed = _feed()

    def one(host: str) -> list[Finding]:
        out = []
        sources = _sources(res, host) if feed else {}
        for manager, driver in drivers_for(res, host).items():
            if manager == "npm":
                continue
            get_run_logger().info("%s: %s: %s", host, manager, driver.refresh())
            for u in driver.upgradable():
                if not u.is_security:
                    continue
                cves = sorted({c for a in affecting(feed, [sources.get(u.name, u.name), u.name], u.current)
                               for c in a.cves})
                out.append(Finding("security-updates", host, f"{u.name} {u.candidate}", "high",
                                   f"security update {u.name} {u.current} → {u.candidate}"
                                   + (f" ({', '.join(cves)})" if cves else ""),
                                   f"{manager}, from {u.source or 'the configured sources'}",
                                   "installed by security-patches in the next window (or an emergency run)"))
        return out

    result = fan_out({h: h for h in hosts}, one, max_concurrency=res.env.max_concurrency)
    get_run_logger().info("pending security updates: %d on %d host(s); %s",
                          sum(len(o.value or []) for o in result.succeeded.values()), len(result.succeeded), result.summary())
    return result.portable()  # an unreachable host is reported by the flow; the others' updates still count


def _sources(res: Any, host: str) -> dict[str, str]:
    """binary package → its source package, from the host's dpkg status (advisories name sources)."""
    cfg = res.env.security.feed
    path = host_path(cfg.dpkg_status, res.hosts.get_config(host), "security.feed.dpkg_status")
    try:
        status = res.hosts.get(host).read_file(path).decode("utf-8", "replace")
    except (OSError, HostError) as exc:
        get_run_logger().warning("%s: %s not read (%s): CVEs matched by binary name only", host, path, exc)
        return {}
    return {b: src for src, (_, bins) in dpkg_sources(status).items() for b in bins}


@step("certificates", retries=1, cache=False)
def check_certificates(names: list[str]) -> FanOutResult[CertResult]:
    """Each configured certificate now (the served one, or the file), judged: expiry and renewal due (min(30 days,
    a third of its lifetime)), name, chain, key and signature. A certificate that cannot be read is a result too."""
    res = resources()
    checks = {c.name: c for c in res.env.security.certificates if c.name in names}
    now = datetime.now(UTC)
    result = fan_out({n: n for n in checks}, lambda n: observe(res, checks[n], now), max_concurrency=32)
    for r in result.returned().values():
        get_run_logger().log(20 if r.ok else 30, "%s: %s", r.name, r.describe())
    return group_result(result)


@step("renew-certificate", run_name="renew-certificate[{name}]", retries=0)
def renew_certificate(name: str) -> str:
    """The certificate's `renew` then `reload` on its host (never retried automatically: a renewal may be rate
    limited by the CA; the re-check says whether it worked)."""
    res = resources()
    check = next(c for c in res.env.security.certificates if c.name == name)
    said = renew(res, check)
    get_run_logger().info("%s on %s: %s", name, check.host, said)
    return said
