"""The promotion gate (staging before production), pure: evidence from run records, eligibility dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from upkeep.config import parse_inventory
from upkeep.errors import ConfigError
from upkeep.packages.model import PackageUpdate
from upkeep.packages.promotion import promotion_gate, proven
from upkeep.report import RoutineReport
from upkeep.runrecords import run_record

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
OPENSSL = PackageUpdate("apt", "openssl", "3.0.14-1", "3.0.15-1", "security", "stable-security")
TOOL = PackageUpdate("apt", "em-tool", "1.0", "1.1", "other", "stable")
AGENT = PackageUpdate("apt", "em-agent", "1.0", "2.0", "major", "stable")


def record(ended: datetime, applied: list[str], routine: str = "system-update", dry_run: bool = False) -> dict:
    return {"routine": routine, "environment": "staging", "ended_at": ended.isoformat(), "status": "completed",
            "dry_run": dry_run, "facts": {"applied": applied}}


def test_only_versions_proven_long_enough_ago_pass_and_the_rest_say_when() -> None:
    evidence = proven([
        record(NOW - timedelta(days=3), ["apt:openssl=3.0.15-1"], routine="security-patches"),
        record(NOW - timedelta(days=1), ["apt:em-tool=1.1"]),
        record(NOW - timedelta(days=5), ["apt:em-tool=1.1"]),  # the earliest success counts
        record(NOW - timedelta(days=9), ["apt:em-agent=2.0"], dry_run=True),  # a dry run proves nothing
        {"routine": "backup", "ended_at": NOW.isoformat(), "facts": {"applied": ["apt:em-agent=2.0"]}},
    ])
    assert evidence == {"apt:openssl=3.0.15-1": NOW - timedelta(days=3), "apt:em-tool=1.1": NOW - timedelta(days=5)}
    gate = promotion_gate([OPENSSL, TOOL, AGENT], evidence, NOW, timedelta(days=2), "staging")
    assert [u.name for u in gate.eligible] == ["openssl", "em-tool"]
    assert [(h.update.name, h.eligible_on) for h in gate.held] == [("em-agent", None)]
    assert "not applied successfully in staging yet" in gate.held[0].reason

    young = promotion_gate([OPENSSL], evidence, NOW, timedelta(days=4), "staging")
    assert young.held[0].eligible_on == NOW + timedelta(days=1)
    assert "eligible from 2026-12-07 02:00 UTC" in young.held[0].reason and "4 d" in young.held[0].reason


def test_a_run_record_carries_the_routines_facts() -> None:
    report = RoutineReport("system-update", "staging")
    report.facts["applied"] = ["apt:em-tool=1.1"]
    assert run_record(report, "run-1")["facts"] == {"applied": ["apt:em-tool=1.1"]}
    assert "facts" not in run_record(RoutineReport("disk-check", "staging"), "run-2")


def test_the_gate_names_another_environment_of_the_inventory() -> None:
    envs = {"staging": {"window": {"always": True}, "emergency": "anytime"},
            "production": {"window": {"always": True}, "emergency": "approval",
                           "updates": {"promotion": {"from_environment": "stagin"}}}}
    with pytest.raises(ConfigError, match="must be another environment of the inventory"):
        parse_inventory({"version": 1, "environments": envs})
    envs["production"]["updates"] = {"promotion": {"from_environment": "staging", "min_age": "3d"}}
    gate = parse_inventory({"version": 1, "environments": envs}).environment("production").updates.promotion
    assert gate is not None and gate.min_age == timedelta(days=3)
