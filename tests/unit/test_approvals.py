"""Approval answers against the approver list (upkeep.approvals): who may approve what, through which channel, and
what the report says; the relay's signature; the config's checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from upkeep.approvals import Answer, judge, sign_answer, verify_answer
from upkeep.config.approvals import ApprovalsConfig

AT = datetime(2026, 12, 6, 23, 40, tzinfo=UTC)
CFG = ApprovalsConfig.model_validate({"approvers": [
    {"name": "alice", "slack": "U0ALICE01"},
    {"name": "dba-bob", "slack": "U0BOB0001", "kinds": ["indexes"]}]})


def test_a_listed_name_typed_in_the_ui_is_accepted_as_typed_not_verified() -> None:
    v = judge(CFG, "production", "emergency", Answer("Prefect UI", " Alice ", True, AT), "run outside the window")
    assert v.accepted and v.approver == "alice"
    assert v.line == ("approved by **alice** via Prefect UI (name typed in the Prefect UI) at 2026-12-06 23:40 UTC: "
                      "run outside the window")


def test_a_name_not_listed_or_not_for_this_kind_is_refused_and_the_run_waits() -> None:
    stranger = judge(CFG, "production", "updates", Answer("Prefect UI", "mallory", True, AT), "2 item(s)")
    assert not stranger.accepted
    assert stranger.line == ("refused attempt: 'mallory' (typed in the Prefect UI) approved at 2026-12-06 23:40 UTC, but "
                             "is not on production's `updates` approver list (environments.production.approvals); "
                             "still waiting")
    wrong_kind = judge(CFG, "production", "updates", Answer("Prefect UI", "dba-bob", True, AT), "2 item(s)")
    assert not wrong_kind.accepted and "`updates` approver list" in wrong_kind.line
    assert judge(CFG, "production", "indexes", Answer("Prefect UI", "dba-bob", False, AT), "drop 1 index").accepted


def test_a_slack_click_is_accepted_by_user_id_only_when_the_relay_signed_it() -> None:
    click = Answer("Slack", "U0ALICE01", True, AT, verified=True)
    v = judge(CFG, "staging", "baselines", click, "access:host1")
    assert v.accepted and v.approver == "alice"
    assert "via Slack (Slack user U0ALICE01, verified by Slack)" in v.line
    forged = judge(CFG, "staging", "baselines", Answer("Slack", "U0ALICE01", True, AT, verified=False), "access:host1")
    assert not forged.accepted and "carried no valid signature" in forged.line
    # a Slack user id typed as a name in the UI is just a name
    assert not judge(CFG, "staging", "baselines", Answer("Prefect UI", "U0ALICE01", True, AT), "x").accepted
    other = judge(CFG, "staging", "baselines", Answer("Slack", "U0EVE0001", True, AT, verified=True), "x")
    assert not other.accepted and "Slack user U0EVE0001 approved" in other.line


def test_with_no_list_any_answer_is_accepted_and_the_report_says_it_was_not_checked() -> None:
    v = judge(ApprovalsConfig(), "development", "emergency", Answer("Prefect UI", "anyone", False, AT), "x")
    assert v.accepted and "refused by **anyone**" in v.line
    assert "not checked: environments.development.approvals lists no approver" in v.line


def test_the_signature_binds_the_items_approved_in_any_order() -> None:
    sig = sign_answer(b"k", "run-1", "item-approval-1", "U0ALICE01", True, ["b", "a"])
    assert verify_answer(b"k", sig, "run-1", "item-approval-1", "U0ALICE01", True, ["a", "b"])
    assert not verify_answer(b"k", sig, "run-1", "item-approval-1", "U0ALICE01", True, ["a", "b", "c"])


def test_the_signature_binds_run_request_user_and_decision() -> None:
    key = b"relay-key"
    sig = sign_answer(key, "run-1", "item-approval-1", "U0ALICE01", True)
    assert verify_answer(key, sig, "run-1", "item-approval-1", "U0ALICE01", True)
    for changed in (("run-2", "item-approval-1", "U0ALICE01", True), ("run-1", "item-approval-2", "U0ALICE01", True),
                    ("run-1", "item-approval-1", "U0EVE0001", True), ("run-1", "item-approval-1", "U0ALICE01", False)):
        assert not verify_answer(key, sig, *changed)
    assert not verify_answer(b"other-key", sig, "run-1", "item-approval-1", "U0ALICE01", True)
    assert not verify_answer(None, sig, "run-1", "item-approval-1", "U0ALICE01", True)
    assert not verify_answer(key, "", "run-1", "item-approval-1", "U0ALICE01", True)


@pytest.mark.parametrize(("approvers", "message"), [
    ([{"name": "alice"}, {"name": "ALICE"}], "name alice is listed twice"),
    ([{"name": "a", "slack": "U0A000001"}, {"name": "b", "slack": "U0A000001"}], "slack U0A000001 is listed twice"),
    ([{"name": "a", "slack": "alice"}], "String should match pattern"),
    ([{"name": "a", "kinds": ["everything"]}], "emergency"),
])
def test_the_config_names_what_is_wrong(approvers: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ApprovalsConfig.model_validate({"approvers": approvers})


def test_secrets_are_references_not_values() -> None:
    with pytest.raises(ValidationError, match="must be a secret reference"):
        ApprovalsConfig.model_validate({"key": "literal-key"})
    assert ApprovalsConfig.model_validate({"key": "env:K", "app_token": "block:slack-app"}).app_token == "block:slack-app"
