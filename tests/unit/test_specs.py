"""deployments/specs.py: every deployment's schedule comes from an inventory's windows (no server)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.specs import (
    CADENCE,
    EXAMPLE_INVENTORY,
    PREFECT_YAML,
    deployment_specs,
    next_runs,
    prefect_yaml,
    render_prefect_yaml,
    schedule_differences,
)
from upkeep.config.loader import load_inventory, parse_inventory
from upkeep.config.models import Inventory
from upkeep.routines import ROUTINES

EXAMPLE_DATA: dict[str, Any] = yaml.safe_load(EXAMPLE_INVENTORY.read_text())
BERLIN_SATURDAY = {"cron": "0 3 * * 6", "timezone": "Europe/Berlin", "duration": "3h", "cutoff": "20m"}


def site(**windows: dict[str, Any] | None) -> Inventory:
    """The example inventory with some environments' windows replaced (None: the environment removed)."""
    data = copy.deepcopy(EXAMPLE_DATA)
    for env, window in windows.items():
        if window is None:
            del data["environments"][env]
            for other in data["environments"].values():  # a promotion gate from the removed environment goes with it
                if other.get("updates", {}).get("promotion", {}).get("from_environment") == env:
                    other["updates"] = {k: v for k, v in other["updates"].items() if k != "promotion"}
        elif env in data["environments"]:
            data["environments"][env]["window"] = window
        else:
            data["environments"][env] = {"window": window, "emergency": "notify"}
    return parse_inventory(data)


def by_name(inv: Inventory | None = None) -> dict[str, Any]:
    return {s.name: s for s in deployment_specs(inv)}


def test_default_is_the_example_inventory() -> None:
    example = load_inventory(EXAMPLE_INVENTORY)
    assert deployment_specs() == deployment_specs(example)
    assert [s.environment for s in deployment_specs()][:3] == ["production", "staging", "development"]
    assert len(deployment_specs()) == len(ROUTINES) * 3


def test_disruptive_schedules_follow_a_non_default_window() -> None:
    specs = by_name(site(production=BERLIN_SATURDAY))
    weekly = specs["weekly-maintenance-production"]  # weekly, in the window (security patches inside it)
    assert (weekly.cron, weekly.timezone, weekly.day_or) == ("0 3 * * 6", "Europe/Berlin", True)
    assert specs["security-patches-production"].cron is None  # run by weekly-maintenance; on demand alone
    assert specs["system-update-production"].cron is None  # run first by monthly-maintenance
    monthly = specs["monthly-maintenance-production"]  # the month's first opening: the first Saturday
    assert (monthly.cron, monthly.timezone, monthly.day_or) == ("0 3 1-7 * 6", "Europe/Berlin", False)
    runs = next_runs(monthly, datetime(2026, 12, 6, tzinfo=UTC), 3)
    assert [t.isoformat() for t in runs] == ["2027-01-02T02:00:00+00:00", "2027-02-06T02:00:00+00:00",
                                             "2027-03-06T02:00:00+00:00"]  # 03:00 Berlin (CET) = 02:00 UTC
    # non-disruptive and on-demand routines keep their cadence; other environments keep the guide's windows
    assert (specs["health-check-production"].cron, specs["health-check-production"].timezone) == (CADENCE["minutely"], "UTC")
    assert specs["clear-cache-production"].cron is None
    assert (specs["weekly-maintenance-staging"].cron, specs["weekly-maintenance-staging"].timezone) == ("0 22 * * 0", "UTC")
    assert specs["weekly-maintenance-development"].cron == CADENCE["weekly"]  # anytime: on its cadence


def test_daily_window_gives_weekly_sunday_and_monthly_first_day() -> None:
    specs = by_name(site(production={"cron": "30 1 * * *", "timezone": "America/New_York"}))
    assert (specs["weekly-maintenance-production"].cron, specs["weekly-maintenance-production"].timezone) == (
        "30 1 * * 0", "America/New_York")
    assert (specs["monthly-maintenance-production"].cron, specs["monthly-maintenance-production"].day_or) == (
        "30 1 1 * *", True)


def test_deployments_for_the_inventorys_own_environments() -> None:
    specs = deployment_specs(site(staging=None, qa={"cron": "0 20 * * 3", "timezone": "UTC"}))
    assert {s.environment for s in specs} == {"production", "development", "qa"}
    qa = {s.name: s for s in specs}["weekly-maintenance-qa"]
    assert (qa.cron, qa.parameters, qa.tags[2]) == ("0 20 * * 3", {"environment": "qa"}, "qa")
    rendered = prefect_yaml(specs)["deployments"]
    assert {d["work_pool"]["work_queue_name"] for d in rendered} == {"production", "development", "qa"}


def test_the_rendered_header_names_the_inventory(tmp_path: Path) -> None:
    assert render_prefect_yaml().splitlines()[0] == (
        "# Rendered from deployments/specs.py and the windows of examples/upkeep.yaml by `upkeep deployments --write`; "
        "tests check they agree.")
    inv_file = tmp_path / "site.yaml"
    text = render_prefect_yaml(site(production=BERLIN_SATURDAY), inv_file)
    assert f"the windows of {inv_file} by `upkeep deployments --write --config {inv_file}`" in text.splitlines()[0]
    assert "cron: 0 3 * * 6" in text and "timezone: Europe/Berlin" in text


def test_the_checked_in_prefect_yaml_is_the_example_inventorys() -> None:
    assert PREFECT_YAML.read_text() == render_prefect_yaml()
    assert schedule_differences(load_inventory(EXAMPLE_INVENTORY), yaml.safe_load(PREFECT_YAML.read_text())) == []


def test_differences_name_the_deployment_and_both_schedules() -> None:
    checked_in = yaml.safe_load(PREFECT_YAML.read_text())
    lines = schedule_differences(site(production=BERLIN_SATURDAY), checked_in)
    assert len(lines) == 3, lines  # the three scheduled disruptive production deployments
    assert ('weekly-maintenance-production: prefect.yaml says "0 2 * * 0" UTC; '
            'the inventory\'s production window implies "0 3 * * 6" Europe/Berlin') in lines
    assert ('monthly-maintenance-production: prefect.yaml says "0 2 1-7 * 0" UTC (day_or: false); '
            'the inventory\'s production window implies "0 3 1-7 * 6" Europe/Berlin (day_or: false)') in lines
    assert ('dependency-updates-production: prefect.yaml says "0 2 * * 0" UTC; '
            'the inventory\'s production window implies "0 3 * * 6" Europe/Berlin') in lines


def test_an_environment_on_one_side_only_is_a_difference() -> None:
    checked_in = yaml.safe_load(PREFECT_YAML.read_text())
    lines = schedule_differences(site(staging=None, qa={"always": True}), checked_in)
    assert lines == [
        f"environment staging: in prefect.yaml ({len(ROUTINES)} deployments), not in the inventory",
        "environment qa: in the inventory, no deployments in prefect.yaml",
    ]


def test_a_hand_edited_schedule_or_deployment_is_a_difference() -> None:
    data = yaml.safe_load(PREFECT_YAML.read_text())
    deployments = {d["name"]: d for d in data["deployments"]}
    deployments["health-check-staging"]["schedules"] = []
    deployments["verify-backup-development"]["schedules"][0]["timezone"] = "Europe/Paris"
    data["deployments"].remove(deployments["backup-production"])
    data["deployments"].append({**deployments["backup-staging"], "name": "backup-nightly-staging"})
    lines = schedule_differences(load_inventory(EXAMPLE_INVENTORY), data)
    assert lines == [
        'backup-production: not in prefect.yaml; its cadence (on demand) implies no schedule (on demand)',
        'verify-backup-development: prefect.yaml says "0 12 * * *" Europe/Paris; '
        'its cadence (daily-midday) implies "0 12 * * *" UTC',
        'health-check-staging: prefect.yaml says no schedule (on demand); its cadence (minutely) implies "* * * * *" UTC',
        "backup-nightly-staging: in prefect.yaml, not a deployment of the inventory",
    ]


@pytest.mark.parametrize("data", [None, "text", {"deployments": "x"}, {"deployments": [1, {"name": 2}]}])
def test_a_malformed_prefect_yaml_has_every_environment_missing(data: Any) -> None:
    lines = schedule_differences(load_inventory(EXAMPLE_INVENTORY), data)
    assert lines == [f"environment {e}: in the inventory, no deployments in prefect.yaml"
                     for e in ("production", "staging", "development")]


def test_serve_schedules_from_the_inventory_it_runs_against(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.serve import served_specs

    inv_file = tmp_path / "site.yaml"
    data = copy.deepcopy(EXAMPLE_DATA)
    data["environments"]["production"]["window"] = BERLIN_SATURDAY
    inv_file.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("UPKEEP_CONFIG", str(inv_file))
    weekly = {s.name: s for s in served_specs()}["weekly-maintenance-production"]
    assert (weekly.cron, weekly.timezone) == ("0 3 * * 6", "Europe/Berlin")
    assert served_specs(EXAMPLE_INVENTORY) == deployment_specs()
