"""The watchdog: Prefect automations that notice, on the Prefect server, what a dead serving process cannot report.

Per environment of the inventory (Prefect UI → Automations, tag `upkeep-watchdog`):

- `upkeep-watchdog-<env>-late-runs`, reactive: a run of one of the environment's scheduled deployments (the
  minutely health check included) that the server's late-runs service marks Late — not started 15 s after its
  time: nothing serves it (serving process or worker dead); for a disruptive routine, a missed window. The first
  sign of a dead `upkeep serve`, within about a minute. One notice per deployment per `late_repeat` (default 1 h).
- `upkeep-watchdog-<env>-health-check`, proactive: after each Completed run of `health-check-<env>`, another must
  complete within `monitoring.watchdog.health_check_within` (default 10 min), else one notice: when the last one
  completed, whether the deployment is paused, what to check. Armed by each completed health check, it fires once
  per outage (the next completed one re-arms it): a paused deployment, runs that fail, crash or hang, a dead
  serving process. Not shorter by default: a restarted `upkeep serve` re-registers its deployments, and the server
  shows the state changes of runs scheduled less than 5 minutes ahead only after 15 minutes (it waits for their
  Scheduled event, which the scheduler does not emit), so the first visible completed run comes ~6 minutes later.

- `upkeep-watchdog-<env>-crashed-runs`, proactive: a run of the environment's deployments (tags `upkeep` and
  `<env>`; a composite's routines carry them too) sends a heartbeat every 30 s (`RUN_HEARTBEAT`: prefect.yaml's
  job variables, `upkeep serve`); after one, another (or the run's end) must follow within
  `monitoring.watchdog.crashed_after` (default 90 s), else the server marks the run Crashed and notifies. This is
  what a run whose process died with its machine (worker and run killed together) needs: nothing else would ever
  end it. Retried from the UI, it resumes where it stopped (the hosts it finished are in its checkpoints). Enabled
  even with paused schedules: it watches the runs that exist, whoever started them.

The notice is sent by the Prefect server (a SendNotification action): a Custom Webhook block per environment
that calls Slack's `chat.postMessage` with the environment's Slack channel (its `critical` route if it has one)
and token (resolved here, kept in the block's secrets). An environment without Slack gets the same automations
with a do-nothing action: their firings are visible in the UI only (Automations, Events).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from prefect.automations import AutomationCore, ChangeFlowRunState, DoNothing, EventTrigger, Posture, SendNotification
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ActionTypes
from prefect.logging import get_logger
from pydantic import SecretStr

from deployments.blocks import save_block
from deployments.specs import DeploymentSpec, deployment_specs
from upkeep.config.models import Inventory, SlackConfig, WatchdogConfig
from upkeep.config.secrets import resolve_secret
from upkeep.config.units import format_duration
from upkeep.errors import SecretError, UpkeepError
from upkeep.humanize import duration
from upkeep.routines import HEALTH_CHECK

if TYPE_CHECKING:

    from prefect.client.orchestration import SyncPrefectClient

TAG = "upkeep-watchdog"
WATCHES = ("health-check", "late-runs", "crashed-runs")  # each environment's automations, by the last part of their name
SLACK_API = "https://slack.com/api/"  # slack-sdk's default base URL
logger = get_logger("upkeep.watchdog")

# Rendered by the Prefect server (Jinja): `event` is the last Completed health check (the one that armed the
# trigger), `deployment` and `flow_run` are read from the API; `ui_url` gives a run's link (the server's
# PREFECT_UI_URL). Not a deployment's (Prefect 3.9 knows no UI link for its API deployment object): that one is
# built from the UI URL of the process creating the automation.
_HEALTH_BODY = """\
No run of `{deployment}` has completed {{% if event %}}since {{{{ (event.occurred|string)[:19] }}}} UTC \
({within} without one){{% else %}}for {within}{{% endif %}}; it is scheduled every minute.
{{% if deployment and deployment.paused %}}The deployment `{deployment}` is *paused*: resume it in the Prefect UI \
(Deployments) unless it was paused on purpose.
{{% else %}}Check the process that runs it: `upkeep serve` (or the worker of its work pool) may be stopped or stuck; \
if its runs start but end Failed or Crashed, read their logs.
{{% endif %}}{deployment_link}{{% if flow_run %}}Last completed run: {{{{ flow_run|ui_url }}}}
{{% endif %}}"""

_LATE_BODY = """\
{{% if flow_run %}}Run `{{{{ flow_run.name }}}}` of `{{{{ deployment.name if deployment else 'a deployment' }}}}` \
in {environment} was due at {{{{ (flow_run.expected_start_time|string)[:19] }}}} UTC and has not started\
{{% else %}}A scheduled run in {environment} has not started{{% endif %}} (marked Late by the Prefect server).
Nothing is picking up {environment}'s runs: check that `upkeep serve` (or the worker of its work pool) is running. \
A disruptive routine that starts after its window's cutoff ends Skipped: that window is missed.
{{% if flow_run %}}Run: {{{{ flow_run|ui_url }}}}
{{% endif %}}"""


_CRASHED_BODY = """\
{{% if flow_run %}}Run `{{{{ flow_run.name }}}}`{{% if deployment %}} of `{{{{ deployment.name }}}}`{{% endif %}} \
in {environment} sent no heartbeat for {within}{{% else %}}A run in {environment} sent no heartbeat for {within}\
{{% endif %}}: the process running it stopped (its machine or worker died, or it was killed). It is marked Crashed.
Retry it from the Prefect UI (the run's menu → Retry) once a worker is up: the steps and hosts it finished are not done \
again; a host it was changing when it stopped is checked and done again.
{{% if flow_run %}}Run: {{{{ flow_run|ui_url }}}}
{{% endif %}}"""
# The state *names* (events are named by them, not by their type) that end a run or hand it back to the server: after
# one, no heartbeat is expected. `Skipped` is Upkeep's own Completed (a closed window, a held slot); TimedOut,
# AwaitingConcurrencySlot and Late are Prefect's.
_ENDED = ("Completed", "Skipped", "Failed", "TimedOut", "Cancelled", "Crashed", "Cancelling", "Scheduled",
          "AwaitingRetry", "AwaitingConcurrencySlot", "Late", "Suspended")


def automation_name(environment: str, what: str) -> str:
    """`upkeep-watchdog-production-health-check`."""
    return f"upkeep-watchdog-{environment}-{what}"


def block_name(environment: str) -> str:
    """The notification block of an environment's watchdog: `upkeep-watchdog-slack-production`."""
    return f"upkeep-watchdog-slack-{environment}"


def watchdog_config(inventory: Inventory, environment: str) -> WatchdogConfig:
    """The environment's `monitoring.watchdog` (the defaults when it has no `monitoring`)."""
    monitoring = inventory.environment(environment).monitoring
    return monitoring.watchdog if monitoring is not None else WatchdogConfig()


def slack_block(slack: SlackConfig, token: SecretStr, environment: str) -> CustomWebhookNotificationBlock:
    """A block that posts `chat.postMessage` to the environment's Slack (or the recorder at its `base_url`)."""
    channel = slack.routes.get("critical") or slack.channel
    return CustomWebhookNotificationBlock(
        name=f"Upkeep watchdog ({environment})",
        url=(slack.base_url or SLACK_API).rstrip("/") + "/chat.postMessage",
        json_data={"channel": channel, "text": "*{{subject}}*\n{{body}}", "unfurl_links": False},
        headers={"Authorization": "Bearer {{token}}", "Content-Type": "application/json; charset=utf-8"},
        secrets={"token": token.get_secret_value()},
    )


def health_check_automation(environment: str, deployment: str, within: timedelta, action: ActionTypes, *,
                            name: str | None = None, enabled: bool = True, ui_url: str | None = None) -> AutomationCore:
    """No Completed run of `deployment` (of the health-check flow) within `within` of the previous one: notify.
    `ui_url`: the Prefect UI, for the deployment's link (default: this process's PREFECT_UI_URL; "": no link)."""
    from prefect.settings import PREFECT_UI_URL

    ui = ui_url if ui_url is not None else PREFECT_UI_URL.value()
    link = (f"{{% if deployment %}}Deployment: {ui.rstrip('/')}/deployments/deployment/{{{{ deployment.id }}}}\n{{% endif %}}"
            if ui else "")
    notice = _notice(action, f"Upkeep watchdog: no health check completed in {environment} for {format_duration(within)}",
                     _HEALTH_BODY.format(deployment=deployment, within=format_duration(within), deployment_link=link))
    return AutomationCore(
        name=name or automation_name(environment, "health-check"),
        description=(f"Watchdog of {environment}: notifies when no run of {deployment} has completed for "
                     f"{format_duration(within)} (deployment paused, serving process or worker down, runs failing). "
                     "Armed by each completed health check; one notice per outage."),
        enabled=enabled,
        tags=[TAG, environment],
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=[{"prefect.resource.role": "flow", "prefect.resource.name": HEALTH_CHECK.flow},
                           {"prefect.resource.role": "deployment", "prefect.resource.name": deployment}],
            after={"prefect.flow-run.Completed"},
            expect={"prefect.flow-run.Completed"},
            for_each={"related:deployment:prefect.resource.id"},  # a bucket only from a Completed run: one notice per outage
            posture=Posture.Proactive,
            threshold=1,
            within=within,
        ),
        actions=[notice],
    )


def late_runs_automation(environment: str, deployments: Sequence[str], repeat: timedelta, action: ActionTypes, *,
                         name: str | None = None, enabled: bool = True) -> AutomationCore:
    """A run of one of `deployments` marked Late (not started on time): notify, once per deployment per `repeat`."""
    notice = _notice(action, f"Upkeep watchdog: a scheduled run in {environment} did not start",
                     _LATE_BODY.format(environment=environment))
    return AutomationCore(
        name=name or automation_name(environment, "late-runs"),
        description=(f"Watchdog of {environment}: notifies when a scheduled run of {', '.join(deployments)} has not "
                     f"started on time (marked Late: nothing serves it; a missed window). At most one notice per "
                     f"deployment every {format_duration(repeat) if repeat else 'late run'}."),
        enabled=enabled,
        tags=[TAG, environment],
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "deployment", "prefect.resource.name": list(deployments)},
            expect={"prefect.flow-run.Late"},
            for_each={"related:deployment:prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=repeat,
        ),
        actions=[notice],
    )


def crashed_runs_automation(environment: str, crashed_after: timedelta, action: ActionTypes, *,
                            name: str | None = None) -> AutomationCore:
    """A run of the environment's deployments with no heartbeat for `crashed_after`: mark it Crashed, and notify."""
    notice = _notice(action, f"Upkeep watchdog: a run in {environment} crashed (no heartbeat)",
                     _CRASHED_BODY.format(environment=environment, within=duration(crashed_after)))
    crash = ChangeFlowRunState(state=StateType.CRASHED, message=(
        f"no heartbeat for {duration(crashed_after)}: the process running it stopped (its machine or worker "
        "died, or it was killed). Retry it: the steps and hosts it finished are not done again."))
    return AutomationCore(
        name=name or automation_name(environment, "crashed-runs"),
        description=(f"Watchdog of {environment}: marks a run of its deployments Crashed when it has sent no heartbeat "
                     f"for {duration(crashed_after)} (its process died), and notifies."),
        enabled=True,
        tags=[TAG, environment],
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=[{"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.upkeep"},
                           {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{environment}"}],
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in _ENDED)},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=crashed_after,
        ),
        actions=[crash] if isinstance(action, DoNothing) else [crash, notice],
    )


def _notice(action: ActionTypes, subject: str, body: str) -> ActionTypes:
    """`action` with the notice's text when it sends notifications; as it is otherwise (do nothing)."""
    if isinstance(action, SendNotification):
        return action.model_copy(update={"subject": subject, "body": body})
    return action


def environment_automations(inventory: Inventory, environment: str, action: ActionTypes, *, enabled: bool = True,
                            specs: Iterable[DeploymentSpec] | None = None) -> list[AutomationCore]:
    """The watchdog automations of one environment: its health check, and its scheduled deployments' late runs."""
    config = watchdog_config(inventory, environment)
    scheduled = [s.name for s in (specs if specs is not None else deployment_specs(inventory))
                 if s.environment == environment and s.cron is not None]
    out = [health_check_automation(environment, HEALTH_CHECK.deployment_name(environment), config.health_check_within,
                                   action, enabled=enabled)]
    if scheduled:
        out.append(late_runs_automation(environment, scheduled, config.late_repeat, action, enabled=enabled))
    out.append(crashed_runs_automation(environment, config.crashed_after, action))
    return out


def notification_action(inventory: Inventory, environment: str) -> ActionTypes:
    """SendNotification through the environment's Slack block (saved now, token resolved now); DoNothing without Slack."""
    slack = inventory.slack_for(environment)
    if slack is None:
        return DoNothing()
    block = slack_block(slack, resolve_secret(slack.token), environment)
    block_id = save_block(block, block_name(environment))
    return SendNotification(block_document_id=block_id, body="(set per automation)")


def ensure_automation(client: SyncPrefectClient, wanted: AutomationCore) -> str:
    """Create `wanted`, or update the automation of that name when it differs (extra copies are deleted); what it did."""
    found = client.read_automations_by_name(wanted.name)
    for extra in found[1:]:
        client.delete_automation(extra.id)
    if not found:
        client.create_automation(wanted)
        return "created"
    if _comparable(found[0]) == _comparable(wanted):
        return "unchanged"
    client.update_automation(found[0].id, wanted)
    return "updated"


def delete_automation(client: SyncPrefectClient, name: str) -> bool:
    """Delete every automation called `name`; whether there was one."""
    found = client.read_automations_by_name(name)
    for automation in found:
        client.delete_automation(automation.id)
    return bool(found)


def _comparable(automation: AutomationCore) -> dict[str, Any]:
    """The automation as JSON, its trigger's sets (after, expect, for_each) sorted: a set's order is not its value."""
    data = AutomationCore.model_validate(automation.model_dump()).model_dump(mode="json", exclude={"owner_resource"})
    trigger = data.get("trigger") or {}
    for key in ("after", "expect", "for_each"):
        if isinstance(trigger.get(key), list):
            trigger[key] = sorted(trigger[key])
    return data


def ensure_watchdog(inventory: Inventory, *, enabled: bool = True, specs: Sequence[DeploymentSpec] | None = None) -> list[str]:
    """Create or update every environment's watchdog (with `enabled=False`, as for `upkeep serve --paused` whose
    schedules do not run, the schedule watches are disabled; the crashed-runs one never is); remove those of
    environments whose `monitoring.watchdog.enabled` is false.
    One line per automation saying what was done."""
    from prefect.client.orchestration import get_client

    specs = specs if specs is not None else deployment_specs(inventory)
    lines, problems = [], []
    with get_client(sync_client=True) as client:
        for env in inventory.environments:
            if not watchdog_config(inventory, env).enabled:
                for what in WATCHES:
                    if delete_automation(client, automation_name(env, what)):
                        lines.append(f"{automation_name(env, what)}: deleted (monitoring.watchdog.enabled is false)")
                continue
            try:
                action = notification_action(inventory, env)
            except SecretError as exc:  # the other environments still get theirs
                problems.append(f"{env}: {exc}")
                continue
            where = "notifies Slack" if isinstance(action, SendNotification) else "no Slack configured: UI only"
            for automation in environment_automations(inventory, env, action, enabled=enabled, specs=specs):
                state = ensure_automation(client, automation)
                lines.append(f"{automation.name}: {state} ({where}{'' if automation.enabled else '; disabled'})")
    if problems:
        raise SecretError(f"watchdog not set up for {'; '.join(problems)} (done: {'; '.join(lines) or 'nothing'})")
    return lines


def watch_while_serving(*, paused: bool = False) -> None:
    """For `upkeep serve`: the watchdog of the inventory it serves, enabled unless its schedules are paused. A failure
    is logged, not raised: serving the routines matters more than watching them."""
    import httpx
    from prefect.exceptions import PrefectException

    from upkeep.config.loader import load_inventory

    try:
        for line in ensure_watchdog(load_inventory(None), enabled=not paused):
            logger.info("watchdog %s", line)
    except (UpkeepError, PrefectException, httpx.HTTPError, OSError, ValueError) as exc:
        logger.error("watchdog not set up (%s: %s); run `upkeep watchdog` once this is fixed", type(exc).__name__, exc)
