"""The `upkeep` CLI on an inventory file (no servers)."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest
import yaml

from deployments.cli import main
from tests.unit.test_config import VALID, broken
from upkeep.routines import ROUTINES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "upkeep.yaml"
    path.write_text(yaml.safe_dump(VALID))
    return path


def test_check_config(inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(inventory)]) == 0
    assert "production: 2 host(s), services api, window 0 2 * * 0 UTC for 2:00:00, emergency approval" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(broken("environments.production.hosts.0.port", 0)))
    assert main(["check-config", str(bad)]) == 1
    assert "hosts[0].port: Input should be greater than or equal to 1" in capsys.readouterr().err


def test_windows_lists_next_openings(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(inventory), "windows", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("Sun ") >= 2 and "02:00 – 04:00 UTC" in out
    assert "development: anytime window: always open" in out


def test_windows_without_inventory_shows_the_guides_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./upkeep.yaml here
    monkeypatch.delenv("UPKEEP_CONFIG", raising=False)
    assert main(["windows", "-n", "1"]) == 0
    first, *rest = capsys.readouterr().out.splitlines()
    assert "no inventory" in first and "the guide's default windows" in first
    assert "from examples/upkeep.yaml" in first  # the one source of the guide's windows
    assert rest[0].startswith("production: ") and "Sun " in rest[1] and "02:00 – 04:00 UTC" in rest[1]
    assert "development: anytime window: always open" in rest


def test_schedule_lists_every_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "weekly-maintenance-production" in out and "0 2 * * 0" in out and "weekly-maintenance-staging" in out
    assert "clear-cache-production" in out and "on demand" in out


def test_schedule_follows_the_inventorys_windows(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(inventory.read_text())
    data["environments"]["production"]["window"] = {"cron": "0 3 * * 6", "timezone": "Europe/Berlin"}
    inventory.write_text(yaml.safe_dump(data))
    assert main(["--config", str(inventory), "schedule", "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "no inventory" not in out and "staging" not in out  # the inventory's environments only
    line = next(x for x in out.splitlines() if x.startswith("weekly-maintenance-production "))
    assert "0 3 * * 6" in line and "Europe/Berlin" in line


def _site(tmp_path: Path) -> Path:
    """The example inventory with production's window on Saturdays 03:00 Berlin time."""
    data = yaml.safe_load((ROOT / "examples" / "upkeep.yaml").read_text())
    data["environments"]["production"]["window"] = {"cron": "0 3 * * 6", "timezone": "Europe/Berlin", "duration": "2h"}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_deployments_checks_the_checked_in_prefect_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deployments"]) == 0
    assert "prefect.yaml agrees with deployments/specs.py and the windows of examples/upkeep.yaml" in capsys.readouterr().out


def test_deployments_write_for_a_sites_inventory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site, output = _site(tmp_path), tmp_path / "prefect.yaml"
    assert main(["deployments", "--write", "--config", str(site), "--output", str(output)]) == 0
    assert f"wrote {output} from the windows of {site}" in capsys.readouterr().out
    text = output.read_text()
    assert text.splitlines()[0].startswith(f"# Rendered from deployments/specs.py and the windows of {site} by "
                                           f"`upkeep deployments --write --config {site}`")
    weekly = next(d for d in yaml.safe_load(text)["deployments"] if d["name"] == "weekly-maintenance-production")
    assert weekly["schedules"] == [{"cron": "0 3 * * 6", "timezone": "Europe/Berlin", "day_or": True, "active": True}]
    # check mode: up to date for that inventory (--config before or after the command), stale for another
    assert main(["deployments", "--config", str(site), "--output", str(output)]) == 0
    assert main(["--config", str(site), "deployments", "--output", str(output)]) == 0
    assert main(["deployments", "--output", str(output)]) == 1
    assert f"{output} is out of date for the windows of examples/upkeep.yaml: run `upkeep deployments --write " \
           f"--output {output}`" in capsys.readouterr().err
    assert main(["deployments", "--config", str(site)]) == 1  # the repository's prefect.yaml is the example's
    assert f"prefect.yaml is out of date for the windows of {site}: run `upkeep deployments --write --config {site}`" \
        in capsys.readouterr().err
    assert main(["deployments", "--config", str(site), "--output", str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml is missing" in capsys.readouterr().err


def test_check_config_reports_schedules_that_differ_from_the_windows(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    site = _site(tmp_path)
    assert main(["check-config", str(site)]) == 0  # a warning: the inventory itself is valid
    out, err = capsys.readouterr()
    assert "inventory OK" in out
    assert "warning (exit 0; --strict makes it an error): prefect.yaml disagrees with the inventory's windows " \
           "(3 difference(s))" in err
    assert '  weekly-maintenance-production: prefect.yaml says "0 2 * * 0" UTC; the inventory\'s production window ' \
           'implies "0 3 * * 6" Europe/Berlin\n' in err
    assert f"fix: `upkeep deployments --write --config {site}`" in err
    assert main(["check-config", str(site), "--strict"]) == 1
    assert "error: prefect.yaml disagrees" in capsys.readouterr().err
    # a prefect.yaml rendered from this inventory agrees; a missing one named explicitly is an error
    assert main(["deployments", "--write", "--config", str(site), "--output", str(tmp_path / "p.yaml")]) == 0
    assert main(["check-config", str(site), "--prefect-yaml", str(tmp_path / "p.yaml"), "--strict"]) == 0
    assert f"{tmp_path / 'p.yaml'}: schedules agree with the inventory's windows" in capsys.readouterr().out
    assert main(["check-config", str(site), "--prefect-yaml", str(tmp_path / "none.yaml")]) == 1
    assert "cannot read it as a prefect.yaml" in capsys.readouterr().err


def test_check_config_environment_on_one_side_only(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(inventory), "--strict"]) == 1  # VALID has no staging
    err = capsys.readouterr().err
    assert f"  environment staging: in prefect.yaml ({len(ROUTINES)} deployments), not in the inventory\n" in err
    assert f"fix: `upkeep deployments --write --config {inventory}`" in err


def test_check_config_example_agrees_with_the_checked_in_prefect_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROOT / "examples" / "upkeep.yaml"), "--strict"]) == 0
    out, err = capsys.readouterr()
    assert "inventory OK" in out and "prefect.yaml: schedules agree with the inventory's windows" in out
    assert err == ""


def test_plan_touches_nothing_and_quotes_commands(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(inventory.read_text())
    data["environments"]["production"]["services"]["api"]["clear_cache"] = ["em-ctl", "clear cache", "{name}"]
    inventory.write_text(yaml.safe_dump(data))
    assert main(["--config", str(inventory), "plan", "clear-cache", "--env", "production", "--emergency"]) == 0
    out = capsys.readouterr().out
    assert "guard: ask_approval" in out
    assert "execute: api-1: em-ctl 'clear cache' api-1" in out
    assert "pre: api-1: GET http://10.0.0.1:3000/health" in out


def test_unknown_environment_is_a_clear_error(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(inventory), "plan", "clear-cache", "--env", "prod"]) == 1
    assert "environment 'prod' is not in the inventory; known: development, production" in capsys.readouterr().err


def test_monthly_update_runs_in_the_first_window_of_the_month() -> None:
    from datetime import datetime

    from deployments.specs import deployment_specs, next_runs

    # the system update runs first in monthly-maintenance, which opens the month's first window
    spec = next(s for s in deployment_specs() if s.name == "monthly-maintenance-production")
    runs = next_runs(spec, datetime(2026, 11, 22, tzinfo=UTC), 3)
    assert [t.date().isoformat() for t in runs] == ["2026-12-06", "2027-01-03", "2027-02-07"]  # first Sundays
    assert all(t.hour == 2 and t.weekday() == 6 for t in runs)


def test_sandbox_problems_are_one_line_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A sandbox that is not there (or a directory the hosts' user cannot enter) is a sentence, not a traceback."""
    assert main(["sandbox", "fail", "--base", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no sandbox is running" in err and "make run" in err and "Traceback" not in err
