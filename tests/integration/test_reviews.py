"""The reviews on the real stack: seeded samples with a known truth in the monitoring store (SecantusDB), charts
stored in SeaweedFS and shown on the run's page (a headless Chromium screenshot), the infrastructure read over SSH,
the compliance pack citing the real runs' records, the Event Editor items against the stand-in, the composites'
reports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.backup import backup
from flows.capacity_review import capacity_review
from flows.certificates import certificates
from flows.config_review import config_review
from flows.documentation_check import documentation_check
from flows.infrastructure_review import infrastructure_review
from flows.maintenance import quarterly_maintenance
from flows.performance_review import performance_review
from flows.security_audit import security_audit
from flows.support_queue import support_queue
from sandbox.procs import free_port
from sandbox.stack import Stack
from tests.helpers import (
    answered,
    artifacts_of,
    clear_security_store,
    inventory_variant,
    latest_flow_run,
    report_of,
    slack_calls,
    standin,
)
from tests.integration.test_ui import CHROMIUM, SHOTS, chromium
from tests.series import filling_disk, leaking_service
from upkeep.monitoring.probes import probe_database, probe_hosts, probe_services
from upkeep.resources import Resources
from upkeep.reviews.evidence import verify_pack
from upkeep.runrecords import RunRecordStore

pytestmark = pytest.mark.stack
ENV = "development"
SEEDED = "seed-web-1"  # a host only the seeded samples know


def artifact(state: Any, key: str) -> Any:
    found = [a for a in artifacts_of(state.state_details.flow_run_id) if a.key == key]
    assert found, f"no artifact {key}"
    return found[0]


def rows(state: Any, key: str) -> list[dict[str, Any]]:
    """A table artifact's rows."""
    data = artifact(state, key).data
    return json.loads(data) if isinstance(data, str) else data


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Iterator[float]:
    """A leaking service across two restarts and a disk filling 2 GiB/day under a nightly 40 GiB burst, stored as the
    health check stores samples; the truth of the disk's days until full. Removed afterwards."""
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    disk, truth = filling_disk(ENV, SEEDED, "/var", end)
    with Resources.from_config(None, ENV) as res:
        store = res.monitoring_store()
        store.ensure()
        store.add(leaking_service(ENV, SEEDED, "api", end) + disk)
        yield truth
        store.db.samples.delete_many({"meta.host": SEEDED})


def test_the_health_check_samples_what_the_reviews_read(stack: Stack) -> None:
    """On the quarter hour: every filesystem's bytes and inodes, the database's size (SecantusDB has no WiredTiger
    cache section: no cache counters); every run: each service's memory and uptime from its health answer."""
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with Resources.from_config(None, ENV) as res:
        samples = probe_hosts(res, at) + probe_database(res, at) + probe_services(res, at)
    seen = {(s.target, s.metric) for s in samples}
    assert {("fs:/", "used_bytes"), ("fs:/", "size_bytes"), ("fs:/", "inodes_used"), ("fs:/", "inodes_size"),
            ("database", "db_size_bytes"), ("api", "memory_rss_bytes"), ("api", "uptime_s")} <= seen, seen
    assert not any(s.metric.startswith("wt_") for s in samples)
    size = next(s for s in samples if s.metric == "db_size_bytes")
    assert size.host == "eventmanager" and size.value > 0
    with Resources.from_config(None, ENV) as res:  # off the quarter hour: no capacity samples
        assert not any(s.target.startswith("fs:") for s in probe_hosts(res, at.replace(minute=7)))


def test_performance_review_names_the_leak_and_shows_its_charts(stack: Stack, seeded: float) -> None:
    state = performance_review(environment=ENV, return_state=True)
    assert state.is_completed(), state.message
    review = artifact(state, f"performance-review-{ENV}-review").data
    assert re.search(rf"api on {SEEDED}: memory floor rises [\d.]+ MiB/h in each of 3 runs", review), review
    assert "not available on this server" in review  # the database cache: SecantusDB has no wiredTiger.cache
    assert "Findings" in report_of(state.state_details.flow_run_id).data
    chart = artifact(state, f"performance-review-{ENV}-chart-service-memory")
    import urllib.request

    with urllib.request.urlopen(chart.data, timeout=10) as resp:  # the presigned URL the browser fetches
        assert resp.read(8) == b"\x89PNG\r\n\x1a\n"
    if CHROMIUM is None:  # everything above held; the page itself needs the browser (reported as skipped, with why)
        pytest.skip("Debian chromium is not installed (make test installs it): the chart's page was not looked at")
    ui = f"http://127.0.0.1:{stack.ports['prefect']}"
    dom = chromium(f"{ui}/artifacts/artifact/{chart.id}", screenshot=SHOTS / "performance-memory-chart.png",
                   until="<img")
    assert "<img" in dom and "service-memory" in dom
    assert (SHOTS / "performance-memory-chart.png").stat().st_size > 20_000


def test_capacity_review_forecasts_within_ten_percent_and_no_false_alarm(stack: Stack, seeded: float) -> None:
    state = capacity_review(environment=ENV, return_state=True)
    assert state.is_completed(), state.message
    soonest = state.result()["soonest_days"]
    assert abs(soonest - seeded) <= 0.1 * seeded, (soonest, seeded)  # the nightly burst is not a trend
    var = next(r for r in rows(state, f"capacity-review-{ENV}-forecasts") if r["host"] == SEEDED)
    assert var["status"] in ("ok", "warning") and "critical" not in json.dumps(var)
    assert artifact(state, f"capacity-review-{ENV}-chart-filesystems")


def test_quarterly_maintenance_cites_the_real_runs_and_marks_missing_or_stale_evidence(stack: Stack,
                                                                                      tmp_path: Path) -> None:
    """After a real backup (verified in full), a real certificate check and a real security audit: the quarterly
    composite runs the infrastructure review, the DR test and the compliance audit. One host cannot be reached: the
    infrastructure review fails, the two after it still run, and the composite fails naming it. The pack cites the
    verification's, the DR test's, the certificate check's and the audit's run ids and the manifest's checksum as S3
    keeps it; it fails what has no evidence (no security-patches run) or stale evidence (an access review 20 days ago),
    and its signature verifies with the manifest key. A second infrastructure review after a deploy reports the version
    drift. The run records go to a location of this test's own (`s3.records`), so other tests' runs are not its
    evidence; the security store is emptied first, so other tests' findings are not its findings."""
    started = datetime.now(UTC)
    data = yaml.safe_load(stack.inventory_path.read_text())
    s3 = {**data["environments"][ENV]["s3"], "records": {"bucket": "upkeep-evidence", "prefix": f"{started:%H%M%S%f}/"}}
    config = inventory_variant(stack, tmp_path / "evidence.yaml", ENV, s3=s3)
    gone = {"name": "host-gone", "address": "127.0.0.250", "port": free_port("127.0.0.250"), "roles": ["worker"]}
    one_gone = inventory_variant(stack, tmp_path / "one-gone.yaml", ENV, s3=s3,
                                 hosts=[*data["environments"][ENV]["hosts"], gone])
    clear_security_store(stack)
    backup(environment=ENV, config=config)
    checked = certificates(environment=ENV, config=config, return_state=True)
    audited = security_audit(environment=ENV, config=config, approve=False, return_state=True)
    assert checked.is_completed() and audited.is_completed(), (checked.message, audited.message)
    with Resources.from_config(config, ENV) as res:
        records = res.run_records()
        assert records is not None
        old = (started - timedelta(days=20)).replace(microsecond=0)
        records.put({"routine": "security-review", "environment": ENV, "flow_run_id": "0000-stale", "status": "completed",
                     "started_at": old.isoformat(), "ended_at": (old + timedelta(minutes=5)).isoformat(),
                     "outcome": "completed", "dry_run": False, "steps": {}, "report_sha256": "0" * 64,
                     "report_bytes": 0, "facts": {"approved": True}})
    state = quarterly_maintenance(environment=ENV, config=one_gone, return_state=True)
    assert state.is_failed() and "failed: infrastructure-review" in state.message, state.message
    composite = next(a for a in artifacts_of(state.state_details.flow_run_id)
                     if a.key == f"quarterly-maintenance-{ENV}-report").data
    assert "**2 of 3 routines completed**; failed: infrastructure-review (each ran even when" in composite, composite
    assert "| 1 | `infrastructure-review` | Failed: " in composite and "host-gone" in composite, composite
    assert "| 2 | `dr-test` | Completed" in composite and "| 3 | `compliance-audit` | Completed" in composite
    verify = latest_flow_run("verify-backup", "COMPLETED", after=started)
    dr = latest_flow_run("dr-test", "COMPLETED", after=started)
    audit = latest_flow_run("compliance-audit", "COMPLETED", after=started)
    text = artifact(audit.state, f"compliance-audit-{ENV}-review").data
    for run_id in (verify.id, dr.id, checked.state_details.flow_run_id, audited.state_details.flow_run_id):
        assert str(run_id) in text, (run_id, text)
    controls = {r["control"]: r for r in rows(audit.state, f"compliance-audit-{ENV}-controls")}
    for ready in ("backups-verified", "dr-test-passed", "certificates-valid", "audit-findings-handled"):
        assert controls[ready]["status"] == "Ready", controls[ready]
    missing = controls["patches-within-sla"]  # no security-patches run on record
    assert missing["status"] == "Failing" and "no security-patches run on record" in missing["reason"], missing
    stale = controls["access-reviewed"]  # the last review 20 days ago, past twice its 8-day period; no baseline either
    assert stale["status"] == "Failing" and re.search(r"is (19|20) days old", stale["reason"]), stale
    with Resources.from_config(config, ENV) as res:
        where = res.env.s3.records_location()
        s3 = res.s3
        manifest_key = next(k for k in re.findall(r"s3://[^/\s]+/(\S+/compliance/\S+/manifest\.json)", text))
        body = s3.get_object(Bucket=where.bucket, Key=manifest_key)["Body"].read()
        signature = s3.get_object(Bucket=where.bucket, Key=manifest_key.replace("manifest.json", "manifest.sig"))["Body"].read()
        assert verify_pack(body, signature.decode(), res.manifest_key()) is None
        pack = json.loads(body)
        cited = {e.get("sha256") for c in pack["controls"] for e in c["evidence"] if e["kind"] == "s3-object"}
        facts = next(json.loads(b) for _k, b in RunRecordStore(s3, where.bucket, where.prefix).stored(ENV, "verify-backup")
                     if str(verify.id) in _k)["facts"]
        assert facts["manifest_sha256"] in cited
    standin(stack, 0, "version", version="1.5.0")  # a deploy on host1 only
    try:
        second = infrastructure_review(environment=ENV, config=config, return_state=True)
    finally:
        standin(stack, 0, "version", version="1.4.2")
    assert second.is_completed(), second.message
    drift = artifact(second, f"infrastructure-review-{ENV}-review").data
    assert "1.4.2" in drift and "1.5.0" in drift and "end of life" in drift.lower()


def test_documentation_support_and_configuration_against_the_standin(stack: Stack, tmp_path: Path) -> None:
    standin(stack, 0, "version", version="1.5.0")  # deployed, not yet in the changelog
    try:
        docs = documentation_check(environment=ENV, return_state=True)
    finally:
        standin(stack, 0, "version", version="1.4.2")
    assert docs.is_completed(), docs.message
    text = artifact(docs, f"documentation-check-{ENV}-review").data
    assert "changelog misses the deployed 1.5.0" in text.lower() and "2 of 2 documentation links resolve" in text

    before = len(slack_calls(stack))
    queue = support_queue(environment=ENV, return_state=True)
    assert queue.is_completed(), queue.message
    assert queue.result()["overdue"] == 1  # #812, critical, open 6 h against its 4 h SLA; #790 is solved
    assert any("#812" in json.dumps(c) for c in slack_calls(stack)[before:])

    hosts = [h.name for h in stack.fleet.hosts[: stack.settings.app_hosts]]
    clear_security_store(stack)  # no approved copy yet, whatever ran before: the first review proposes every host
    first = answered(lambda: config_review(environment=ENV, return_state=True), "config-review",
                     {"approver": "ops-dana", "approved": [f"config:{h}" for h in hosts]})
    assert first.is_completed(), first.message
    app_json = stack.fleet.hosts[0].root / "config" / "app.json"
    saved = app_json.read_text()
    app_json.write_text(saved.replace("eventmanager", "eventmanager-edited"))
    try:
        second = config_review(environment=ENV, approve=False, return_state=True)
    finally:
        app_json.write_text(saved)
    assert second.is_completed(), second.message
    review = artifact(second, f"config-review-{ENV}-review").data
    assert "app.json" in review and "changed" in review
