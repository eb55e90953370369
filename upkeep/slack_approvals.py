"""Approval requests in Slack: a message with the plan's summary and Approve / Refuse buttons, updated when the
request is answered (by either channel) or times out. The buttons' value names the run, the environment and the kind
(`ActionValue`); `upkeep approvals` (deployments/approvals.py) receives the clicks over Socket Mode."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from upkeep.config.approvals import KINDS, ApprovalKind
from upkeep.errors import NotifyError

APPROVE, REFUSE = "upkeep-approve", "upkeep-refuse"


@dataclass(frozen=True)
class ActionValue:
    """What a button carries: the waiting run, its environment, the kind of approval, the item ids an Approve
    approves (empty: an emergency run)."""

    run_id: str
    environment: str
    kind: ApprovalKind
    items: tuple[str, ...] = ()

    def encode(self) -> str:
        return json.dumps({"run": self.run_id, "env": self.environment, "kind": self.kind, "items": list(self.items)},
                          separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> ActionValue:
        try:
            data = json.loads(text)
            kind = data["kind"]
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}")
            return cls(str(data["run"]), str(data["env"]), kind, tuple(str(i) for i in data.get("items", [])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not an Upkeep approval button: {text[:80]!r} ({exc})") from exc


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str


def request_blocks(title: str, summary: str, value: ActionValue, run_url: str | None) -> list[dict[str, Any]]:
    """The request: who asks what (markdown), the run's link, the two buttons."""
    link = f"\n<{run_url}|Open the run in the Prefect UI>" if run_url else ""
    encoded = value.encode()
    return [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{summary[:2500]}{link}"}},
            {"type": "actions", "block_id": "upkeep-approval", "elements": [
                {"type": "button", "action_id": APPROVE, "style": "primary", "value": encoded,
                 "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": REFUSE, "style": "danger", "value": encoded,
                 "text": {"type": "plain_text", "text": "Refuse"}}]}]


class ApprovalRequests:
    """Posts approval requests to the environment's Slack channel and marks them answered; the WebClient is injected."""

    def __init__(self, client: WebClient, channel: str) -> None:
        self.client, self.channel = client, channel

    def _call(self, what: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, what)(**kwargs)
        except SlackApiError as exc:
            raise NotifyError(f"Slack refused the approval request ({what}): {exc.response.get('error')}") from exc
        except (SlackClientError, OSError) as exc:
            raise NotifyError(f"Slack is unreachable: {exc}") from exc

    def ask(self, title: str, summary: str, value: ActionValue, run_url: str | None) -> Posted:
        blocks = request_blocks(title, summary, value, run_url)
        answer = self._call("chat_postMessage", channel=self.channel, text=f"{title}: {summary}"[:3000], blocks=blocks)
        return Posted(str(answer["channel"]), str(answer["ts"]))

    def note(self, posted: Posted, title: str, summary: str, value: ActionValue, run_url: str | None, line: str) -> None:
        """Still waiting: the request again, its buttons kept, with `line` (a refused attempt) under it."""
        blocks = [*request_blocks(title, summary, value, run_url),
                  {"type": "context", "elements": [{"type": "mrkdwn", "text": line[:2900]}]}]
        self._call("chat_update", channel=posted.channel, ts=posted.ts, text=f"{title}: {line}"[:3000], blocks=blocks)

    def close(self, posted: Posted, title: str, outcome: str) -> None:
        """Answered (in Slack or the Prefect UI) or timed out: the buttons replaced by the outcome."""
        self._call("chat_update", channel=posted.channel, ts=posted.ts, text=f"{title}: {outcome}"[:3000],
                   blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{outcome[:2900]}"}}])
