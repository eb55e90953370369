"""A real headless Chromium loads the Prefect UI of the local stack: deployments with their
schedules, and a finished run's report artifact. Screenshots are saved for a person to look at."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from deployments.serve import runner_deployments
from flows.disk_check import disk_check
from sandbox.stack import Stack
from tests.helpers import artifacts_of

pytestmark = pytest.mark.stack
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(os.environ.get("UPKEEP_SCREENSHOTS", Path(__file__).resolve().parents[2] / ".sandbox" / "screenshots"))


def chromium(url: str, *, screenshot: Path | None = None, until: str | None = None, tries: int = 3) -> str:
    """Render `url` offline; return the DOM after scripts ran (and save a screenshot).

    With `until`, render again (a fresh profile each time, up to `tries`) while the DOM lacks that text: on a loaded
    machine the virtual-time budget can end before the single-page app has routed (a toast, not yet the page)."""
    assert CHROMIUM
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             "--window-size=1400,1000", "--virtual-time-budget=15000"]

    def run(*extra: str) -> str:
        profile = tempfile.mkdtemp(prefix="upkeep-chromium-")
        try:
            done = subprocess.run([*flags, f"--user-data-dir={profile}", *extra, url], capture_output=True, text=True,
                                  timeout=120, check=True)
            return done.stdout
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        run(f"--screenshot={screenshot}")
    dom = run("--dump-dom")
    for _ in range(tries - 1):
        if until is None or until in dom:
            break
        dom = run("--dump-dom")
    return dom


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (make test installs it)")
def test_prefect_ui_shows_deployments_and_a_run_report(stack: Stack) -> None:
    for deployment in runner_deployments():
        deployment.apply()
    state = disk_check(environment="development", return_state=True)
    assert state.is_completed()
    ui = f"http://127.0.0.1:{stack.ports['prefect']}"

    dom = chromium(f"{ui}/deployments", screenshot=SHOTS / "deployments.png", until="Deployments")
    assert f"{len(runner_deployments())} Deployments" in dom
    for name in ("backup-development", "capacity-review-production", "certificates-staging"):  # its first page (10, by name)
        assert name in dom

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        weekly = client.read_deployment_by_name("weekly-maintenance/weekly-maintenance-production")
    dom = chromium(f"{ui}/deployments/deployment/{weekly.id}", screenshot=SHOTS / "weekly-production.png",
                   until="Sunday")
    assert "weekly-maintenance-production" in dom
    assert "Sunday" in dom  # the production window's start, as the UI describes the schedule

    run_id = state.state_details.flow_run_id
    dom = chromium(f"{ui}/runs/flow-run/{run_id}", screenshot=SHOTS / "run.png", until="disk-space[host1]")
    assert "disk-space[host1]" in dom and "Completed" in dom
    report = next(a for a in artifacts_of(run_id) if a.key == "disk-check-development-report")
    dom = chromium(f"{ui}/artifacts/artifact/{report.id}", screenshot=SHOTS / "report.png", until="execute: done")
    assert "disk-check — development" in dom and "execute: done" in dom and "host5" in dom
    assert (SHOTS / "report.png").stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (make test installs it)")
def test_the_log_analysis_chart_shows_in_the_runs_page(stack: Stack) -> None:
    import urllib.request
    from datetime import date

    from flows.log_analysis import log_analysis
    from sandbox.logsynth import compress, generate_day
    from upkeep.config.loader import load_inventory
    from upkeep.config.render import render
    from upkeep.rotation import LogArchive

    day = date(2026, 10, 1)
    host = load_inventory(stack.inventory_path).environment("development").hosts[0]
    archive = LogArchive(stack.s3_client(), "upkeep-logs", "event-manager/", "development")
    archive.ensure_bucket()
    key = archive.key(host.name, render("{root}/event-manager.log", host), day, "event-manager.log-20261001T235959Z.gz")
    archive.s3.put_object(Bucket=archive.bucket, Key=key, Body=compress(generate_day(day, 5_000, seed=9).data, "gzip"))
    state = log_analysis(environment="development", day=day, return_state=True)
    assert state.is_completed(), state.message
    chart = next(a for a in artifacts_of(state.state_details.flow_run_id)
                 if a.key == "log-analysis-development-json-chart-requests-per-hour")
    with urllib.request.urlopen(chart.data, timeout=10) as resp:  # the presigned URL the browser fetches
        assert resp.read(8) == b"\x89PNG\r\n\x1a\n"
    ui = f"http://127.0.0.1:{stack.ports['prefect']}"
    dom = chromium(f"{ui}/artifacts/artifact/{chart.id}", screenshot=SHOTS / "log-analysis-chart.png",
                   until="<img")
    assert "<img" in dom and "requests-per-hour" in dom
    assert (SHOTS / "log-analysis-chart.png").stat().st_size > 20_000
