"""`upkeep approvals`: the one long-lived process that holds the Slack Socket Mode connection (no public URL: it dials
out) and relays the clicks on approval requests' buttons to the waiting runs.

Slack delivers each event to only one of an app's connections, so there is one relay per app token (started with
`upkeep serve`, or beside the workers), never one per waiting run. For a click it: acknowledges the envelope, reads
the run the button names (still paused? which pause?), and resumes it with the clicker's Slack user id and a
signature over (run, pause, user, decision) made with the environment's `approvals.key`. The run checks that
signature and the user id against its approver list (flows/_approvals.py): a click by someone not listed is refused
there, recorded in the run's report, and the run keeps waiting. A click on a request already answered, or timed out,
gets a reply only the clicker sees.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import SecretStr

from upkeep.approvals import sign_answer
from upkeep.config.loader import config_path, load_inventory
from upkeep.config.models import Inventory
from upkeep.config.secrets import resolve_secret
from upkeep.errors import ConfigError
from upkeep.slack_approvals import APPROVE, REFUSE, ActionValue

log = logging.getLogger("upkeep.approvals")


@dataclass
class App:
    """One Slack app (an app-level token): the environments whose requests it relays, its bot token and API base."""

    app_token: str  # the secret reference (env:/block:)
    bot_token: str
    base_url: str | None
    environments: list[str] = field(default_factory=list)


def apps(inventory: Inventory) -> list[App]:
    """The Slack apps the inventory's environments answer approvals through (those with Slack and an app token)."""
    found: dict[tuple[str, str, str | None], App] = {}
    for name, env in inventory.environments.items():
        slack = inventory.slack_for(name)
        if slack is None or not env.approvals.slack or env.approvals.app_token is None:
            continue
        app = found.setdefault((env.approvals.app_token, slack.token, slack.base_url),
                               App(env.approvals.app_token, slack.token, slack.base_url))
        app.environments.append(name)
    return list(found.values())


class Relay:
    """Relays one app's clicks to the runs (the Prefect API reached as the process is configured: its auth string
    from the environment)."""

    def __init__(self, inventory: Inventory, app: App, resolve: Callable[[str], SecretStr] = resolve_secret,
                 resume: Callable[..., None] | None = None, read_run: Callable[[UUID], Any] | None = None) -> None:
        from prefect.flow_runs import resume_flow_run

        self.inventory, self.app, self.resolve = inventory, app, resolve
        self.resume = resume or resume_flow_run
        self.read_run = read_run or _read_run

    def answer(self, payload: dict[str, Any]) -> str | None:
        """Relay one `block_actions` payload; what to tell the clicker when it could not be relayed (None: relayed,
        or not an Upkeep button)."""
        action = next((a for a in payload.get("actions", []) if a.get("action_id") in (APPROVE, REFUSE)), None)
        if payload.get("type") != "block_actions" or action is None:
            return None
        try:
            value = ActionValue.decode(str(action.get("value", "")))
        except ValueError as exc:
            return str(exc)
        if value.environment not in self.app.environments:
            return f"{value.environment} does not take approvals through this Slack app"
        user = str(payload.get("user", {}).get("id", ""))
        name = str(payload.get("user", {}).get("username") or user)
        approve = action["action_id"] == APPROVE
        run = self.read_run(UUID(value.run_id))
        state = run.state if run is not None else None
        if state is None or not state.is_paused():
            return f"this request was already answered or timed out (the run is {state.name if state else 'gone'})"
        ref = self.inventory.environment(value.environment).approvals.key
        if ref is None:
            return (f"environments.{value.environment}.approvals.key is not set: a Slack answer cannot be verified; "
                    "answer in the Prefect UI")
        pause_key = str(state.state_details.pause_key)
        items = [] if value.kind == "emergency" or not approve else list(value.items)
        signature = sign_answer(self.resolve(ref).get_secret_value().encode(), value.run_id, pause_key, user, approve,
                                items)
        said = f"clicked {'Approve' if approve else 'Refuse'} in Slack"
        run_input: dict[str, Any] = {"approver": name, "reason": said, "slack_user": user, "signature": signature}
        if value.kind == "emergency":
            run_input["approve"] = approve
        else:
            run_input["approved"] = items
        try:
            self.resume(UUID(value.run_id), run_input=run_input)
        except Exception as exc:  # noqa: BLE001 - not paused any more, timed out, refused by the server: tell the clicker
            return f"not relayed to the run: {exc}"
        log.info("relayed %s by Slack user %s to run %s (%s, %s)", "approve" if approve else "refuse", user,
                 value.run_id, value.environment, value.kind)
        return None


def _read_run(run_id: UUID) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            return client.read_flow_run(run_id)
        except ObjectNotFound:
            return None


def connect(relay: Relay) -> Any:
    """The app's Socket Mode connection (slack_sdk's built-in client), clicks handed to `relay`; connected."""
    from slack_sdk import WebClient
    from slack_sdk.socket_mode import SocketModeClient
    from slack_sdk.socket_mode.client import BaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    app = relay.app
    web = WebClient(token=relay.resolve(app.bot_token).get_secret_value(), base_url=app.base_url or WebClient.BASE_URL)
    client = SocketModeClient(app_token=relay.resolve(app.app_token).get_secret_value(), web_client=web)

    def on_request(sm: BaseSocketModeClient, req: SocketModeRequest) -> None:
        sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))  # within Slack's 3 s
        if req.type != "interactive":
            return
        try:
            problem = relay.answer(req.payload)
        except Exception:  # a bad click must not end the relay
            log.exception("click not relayed")
            problem = "Upkeep could not relay this click (see `upkeep approvals`' log)"
        if problem:
            channel = req.payload.get("channel", {}).get("id") or req.payload.get("container", {}).get("channel_id")
            user = req.payload.get("user", {}).get("id")
            log.warning("click not relayed: %s", problem)
            if channel and user:
                web.chat_postEphemeral(channel=channel, user=user, text=f"Not applied: {problem}")

    client.socket_mode_request_listeners.append(on_request)
    client.connect()
    return client


def serve_approvals(config: str | Path | None = None, stop: threading.Event | None = None) -> None:
    """Relay clicks for every app the inventory names until `stop` (or forever)."""
    inventory = load_inventory(config_path(config).resolve())
    found = apps(inventory)
    if not found:
        raise ConfigError("no environment takes approvals from Slack: set environments.<env>.approvals.app_token "
                          "(and slack) to have `upkeep approvals` relay the clicks")
    clients = [connect(Relay(inventory, app)) for app in found]
    for app in found:
        log.info("relaying Slack approvals for %s", ", ".join(app.environments))
    try:
        (stop or threading.Event()).wait()
    finally:
        for client in clients:
            client.close()
