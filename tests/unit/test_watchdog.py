"""deployments/watchdog.py: the automations built from an inventory, their notices, the idempotent upsert (no server)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
import yaml
from prefect.automations import AutomationCore, ChangeFlowRunState, DoNothing, EventTrigger, Posture, SendNotification
from prefect.client.schemas.objects import StateType
from pydantic import SecretStr, ValidationError

from deployments.specs import EXAMPLE_INVENTORY
from deployments.watchdog import _LATE_BODY, TAG, ensure_automation, environment_automations, health_check_automation, slack_block
from upkeep.config.loader import parse_inventory
from upkeep.config.models import RUN_HEARTBEAT, Inventory, SlackConfig, WatchdogConfig

EXAMPLE: dict[str, Any] = yaml.safe_load(EXAMPLE_INVENTORY.read_text())
NOTIFY = SendNotification(block_document_id=UUID(int=1), body="-")


def inventory(**watchdog: Any) -> Inventory:
    """The example inventory, production's `monitoring.watchdog` replaced."""
    data = copy.deepcopy(EXAMPLE)
    if watchdog:
        data["environments"]["production"]["monitoring"]["watchdog"] = watchdog
    return parse_inventory(data)


def trigger_of(automation: AutomationCore) -> EventTrigger:
    assert isinstance(automation.trigger, EventTrigger)
    return automation.trigger


def test_every_environment_gets_a_health_check_a_late_runs_and_a_crashed_runs_automation() -> None:
    inv = inventory()
    for env in inv.environments:
        health, late, crashed = environment_automations(inv, env, NOTIFY)
        assert (health.name, late.name, crashed.name) == (f"upkeep-watchdog-{env}-health-check",
                                                          f"upkeep-watchdog-{env}-late-runs",
                                                          f"upkeep-watchdog-{env}-crashed-runs")
        assert health.tags == late.tags == crashed.tags == [TAG, env] and health.enabled and late.enabled
        assert f"health-check-{env}" in health.description


def test_health_check_trigger_expects_a_completed_run_of_its_deployment_within_the_window() -> None:
    health, *_ = environment_automations(inventory(health_check_within="5m"), "production", NOTIFY)
    t = trigger_of(health)
    assert t.posture == Posture.Proactive and t.threshold == 1 and t.within == timedelta(minutes=5)
    assert t.after == t.expect == {"prefect.flow-run.Completed"}  # each completed run re-arms it
    assert t.for_each == {"related:deployment:prefect.resource.id"}  # no bucket before a first completed run
    assert t.match.model_dump() == {"prefect.resource.id": "prefect.flow-run.*"}
    related = t.match_related if isinstance(t.match_related, list) else [t.match_related]
    assert [r.model_dump() for r in related] == [  # type: ignore[union-attr]
        {"prefect.resource.role": "flow", "prefect.resource.name": "health-check"},
        {"prefect.resource.role": "deployment", "prefect.resource.name": "health-check-production"}]


def test_default_window_is_ten_minutes_and_below_ten_seconds_is_refused() -> None:
    data = copy.deepcopy(EXAMPLE)
    del data["environments"]["staging"]["monitoring"]
    inv = parse_inventory(data)
    assert trigger_of(environment_automations(inv, "staging", NOTIFY)[0]).within == timedelta(minutes=10)
    with pytest.raises(ValidationError, match="10 seconds"):
        WatchdogConfig.model_validate({"health_check_within": "5s"})


def test_late_runs_trigger_covers_the_scheduled_deployments_only() -> None:
    from deployments.specs import deployment_specs

    inv = inventory(late_repeat="2h")
    _, late, _ = environment_automations(inv, "production", NOTIFY)
    t = trigger_of(late)
    scheduled = [s.name for s in deployment_specs(inv) if s.environment == "production" and s.cron]
    unscheduled = [s.name for s in deployment_specs(inv) if s.environment == "production" and not s.cron]
    assert t.posture == Posture.Reactive and t.expect == {"prefect.flow-run.Late"} and t.within == timedelta(hours=2)
    assert t.for_each == {"related:deployment:prefect.resource.id"}  # one notice per deployment per late_repeat
    names = t.match_related.model_dump()["prefect.resource.name"]  # type: ignore[union-attr]
    assert names == scheduled and "health-check-production" in names and unscheduled
    assert not set(unscheduled) & set(names)


def test_notices_carry_the_environment_and_what_to_check() -> None:
    health, late, crashed = environment_automations(inventory(), "production", NOTIFY)
    assert isinstance(crashed.actions[1], SendNotification) and "Retry" in crashed.actions[1].body
    for automation in (health, late):
        (action,) = automation.actions
        assert isinstance(action, SendNotification) and action.block_document_id == NOTIFY.block_document_id
        assert "production" in action.subject and "upkeep serve" in action.body and "|ui_url" in action.body
    assert "paused" in health.actions[0].body  # type: ignore[union-attr]


def test_without_slack_the_automations_exist_and_do_nothing() -> None:
    health, late, crashed = environment_automations(inventory(), "production", DoNothing())
    assert [type(a) for a in health.actions + late.actions] == [DoNothing, DoNothing]
    assert [type(a) for a in crashed.actions] == [ChangeFlowRunState]  # crashing the run needs no Slack


def test_schedule_watches_disabled_for_a_paused_serve_the_crash_watch_never() -> None:
    health, late, crashed = environment_automations(inventory(), "development", NOTIFY, enabled=False)
    assert not health.enabled and not late.enabled and crashed.enabled  # it watches the runs that exist


def test_crashed_runs_trigger_expects_a_heartbeat_or_an_end_after_each_heartbeat() -> None:
    *_, crashed = environment_automations(inventory(crashed_after="2m"), "production", NOTIFY)
    t = trigger_of(crashed)
    assert t.posture == Posture.Proactive and t.threshold == 1 and t.within == timedelta(minutes=2)
    assert t.after == {"prefect.flow-run.heartbeat"} and t.for_each == {"prefect.resource.id"}  # one bucket per run
    assert {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
            "prefect.flow-run.Crashed", "prefect.flow-run.Cancelled", "prefect.flow-run.Skipped",
            "prefect.flow-run.TimedOut"} <= t.expect  # events are named by the state's name: Skipped is a Completed
    related = t.match_related if isinstance(t.match_related, list) else [t.match_related]
    assert [r.model_dump() for r in related] == [  # type: ignore[union-attr]
        {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.upkeep"},  # Upkeep's deployments' runs
        {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.production"}]
    change = crashed.actions[0]
    assert isinstance(change, ChangeFlowRunState) and change.state == StateType.CRASHED
    assert change.message and change.message.startswith("no heartbeat for 2 min")


def test_crashed_after_is_at_least_two_heartbeats_and_a_margin() -> None:
    assert WatchdogConfig().crashed_after == timedelta(seconds=90) == 3 * RUN_HEARTBEAT
    with pytest.raises(ValidationError, match="1 minute and 15 seconds"):
        WatchdogConfig.model_validate({"crashed_after": "60s"})  # a lost heartbeat (a gap of ~60.2 s) would crash


def test_slack_block_posts_chat_postmessage_with_the_token_kept_secret() -> None:
    slack = SlackConfig(channel="#ops", token="env:T", base_url="http://127.0.0.1:9/api/", routes={"critical": "#pager"})
    block = slack_block(slack, SecretStr("xoxb-secret-1234"), "production")
    assert block.url == "http://127.0.0.1:9/api/chat.postMessage"
    assert block.json_data is not None and block.json_data["channel"] == "#pager"  # the critical route
    assert block.headers == {"Authorization": "Bearer {{token}}", "Content-Type": "application/json; charset=utf-8"}
    assert "xoxb-secret-1234" not in repr(block) + str(block.json_data) + str(block.headers)
    assert block.secrets.get_secret_value() == {"token": "xoxb-secret-1234"}
    args = block._build_request_args(body="the body", subject="the subject")
    assert args["json"]["text"] == "*the subject*\nthe body"
    assert args["headers"]["Authorization"] == "Bearer xoxb-secret-1234"
    default = slack_block(SlackConfig(channel="#ops", token="env:T"), SecretStr("x"), "staging")
    assert default.url == "https://slack.com/api/chat.postMessage" and default.json_data == {
        "channel": "#ops", "text": "*{{subject}}*\n{{body}}", "unfurl_links": False}


def _render(template: str, **context: Any) -> str:
    from prefect.server.events.jinja_filters import all_filters
    from prefect.server.utilities.user_templates import register_user_template_filters, render_user_template_sync
    from prefect.settings import PREFECT_UI_URL, temporary_settings

    register_user_template_filters(all_filters)  # as the server's SendNotification does
    with temporary_settings({PREFECT_UI_URL: "http://127.0.0.1:4200"}):
        return render_user_template_sync(template, context)


def test_health_notice_reads_as_sentences_for_a_paused_deployment_and_a_dead_process() -> None:
    from prefect.server.events.actions import SendNotification as ServerSendNotification
    from prefect.server.schemas.core import Deployment, FlowRun

    action = health_check_automation("production", "health-check-production", timedelta(minutes=3), NOTIFY,
                                     ui_url="http://127.0.0.1:4200/").actions[0]
    assert isinstance(action, SendNotification)
    ServerSendNotification(block_document_id=uuid4(), subject=action.subject, body=action.body)  # the server accepts it
    event = SimpleNamespace(occurred=datetime(2026, 12, 6, 6, 1, 2, 345678, tzinfo=UTC))
    run = FlowRun(flow_id=uuid4(), name="ruddy-tortoise")
    deployment = Deployment(name="health-check-production", flow_id=uuid4(), paused=True)
    paused = _render(action.body, event=event, flow_run=run, deployment=deployment)
    assert paused.startswith("No run of `health-check-production` has completed since 2026-12-06 06:01:02 UTC (3m without one)")
    assert "is *paused*: resume it" in paused and "upkeep serve" not in paused
    assert f"Last completed run: http://127.0.0.1:4200/runs/flow-run/{run.id}" in paused
    assert f"Deployment: http://127.0.0.1:4200/deployments/deployment/{deployment.id}\n" in paused
    down = _render(action.body, event=event, flow_run=run,
                   deployment=Deployment(name="health-check-production", flow_id=uuid4(), paused=False))
    assert "`upkeep serve` (or the worker of its work pool) may be stopped or stuck" in down and "paused" not in down
    bare = _render(action.body, event=None, flow_run=None, deployment=None)  # nothing to look up: still a sentence
    assert bare.startswith("No run of `health-check-production` has completed for 3m;") and "None" not in bare


def test_late_notice_names_the_run_and_when_it_was_due() -> None:
    from prefect.server.schemas.core import Deployment, FlowRun

    body = _LATE_BODY.format(environment="production")
    run = FlowRun(flow_id=uuid4(), name="keen-caribou", expected_start_time=datetime(2026, 12, 6, 2, 0, tzinfo=UTC))
    text = _render(body, flow_run=run, deployment=Deployment(name="weekly-maintenance-production", flow_id=uuid4()))
    assert text.startswith("Run `keen-caribou` of `weekly-maintenance-production` in production was due at "
                           "2026-12-06 02:00:00 UTC and has not started")
    assert "window is missed" in text and f"/runs/flow-run/{run.id}" in text
    assert _render(body, flow_run=None, deployment=None).startswith("A scheduled run in production has not started")


class FakeClient:
    """The automation calls of a Prefect client, over a dict."""

    def __init__(self) -> None:
        self.automations: dict[UUID, AutomationCore] = {}
        self.calls: list[str] = []

    def read_automations_by_name(self, name: str) -> list[Any]:
        from prefect.events.schemas.automations import Automation

        return [Automation.model_validate({**a.model_dump(mode="json"), "id": i})
                for i, a in self.automations.items() if a.name == name]

    def create_automation(self, automation: AutomationCore) -> UUID:
        self.calls.append("create")
        self.automations[i := uuid4()] = AutomationCore.model_validate(automation.model_dump(mode="json"))
        return i

    def update_automation(self, automation_id: UUID, automation: AutomationCore) -> None:
        self.calls.append("update")
        self.automations[automation_id] = AutomationCore.model_validate(automation.model_dump(mode="json"))

    def delete_automation(self, automation_id: UUID) -> None:
        self.calls.append("delete")
        del self.automations[automation_id]


def test_ensure_automation_creates_then_leaves_alone_then_updates() -> None:
    client = FakeClient()
    inv = inventory()
    health, *_ = environment_automations(inv, "production", NOTIFY)
    assert ensure_automation(client, health) == "created"  # type: ignore[arg-type]
    assert ensure_automation(client, health) == "unchanged"  # type: ignore[arg-type]
    changed, *_ = environment_automations(inventory(health_check_within="15m"), "production", NOTIFY)
    assert ensure_automation(client, changed) == "updated"  # type: ignore[arg-type]
    assert client.calls == ["create", "update"] and len(client.automations) == 1
    client.create_automation(health)  # a copy made by a race: removed on the next pass
    assert ensure_automation(client, changed) in ("updated", "unchanged")  # type: ignore[arg-type]
    assert len(client.automations) == 1 and "delete" in client.calls
