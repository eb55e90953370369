"""Notifications: Slack through slack-sdk, or the log when Slack is not configured."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from upkeep.errors import NotifyError

Severity = Literal["info", "warning", "critical", "resolved"]
_ICON = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:", "resolved": ":white_check_mark:"}


@dataclass(frozen=True)
class Message:
    environment: str
    routine: str
    text: str
    severity: Severity = "info"
    run_url: str | None = None
    escalate: bool = False  # an alert still firing after its rule's escalate_after: the escalation route

    def render(self, mention: str | None = None) -> str:
        """One Slack mrkdwn line: icon, [environment] routine, text, run link (a mention first, when escalated)."""
        link = f" <{self.run_url}|run>" if self.run_url else ""
        lead = f"{_slack_mention(mention)} " if mention else ""
        return f"{lead}{_ICON[self.severity]} *[{self.environment}] {self.routine}*: {self.text}{link}"


def _slack_mention(mention: str) -> str:
    """@here / @channel as Slack's special mentions; <@U…> and <!subteam^…> as they are."""
    return {"@here": "<!here>", "@channel": "<!channel>"}.get(mention, mention)


@dataclass(frozen=True)
class Routes:
    """Where a message goes by its severity, and where an escalation goes (per environment)."""

    default: str
    by_severity: dict[str, str] = field(default_factory=dict)
    escalation_channel: str | None = None
    mention: str | None = None

    def channel(self, message: Message) -> str:
        if message.escalate and self.escalation_channel:
            return self.escalation_channel
        return self.by_severity.get(message.severity, self.default)

    def destinations(self) -> dict[str, list[str]]:
        """channel → what it receives (for a test notice to each)."""
        out: dict[str, list[str]] = {}
        for severity in ("info", "warning", "critical", "resolved"):
            out.setdefault(self.by_severity.get(severity, self.default), []).append(severity)
        if self.escalation_channel or self.mention:
            out.setdefault(self.escalation_channel or self.by_severity.get("critical", self.default), []).append("escalations")
        return out


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


class SlackNotifier:
    """Posts to the channel of the message's route; the WebClient is injected (token and base_url
    come from config)."""

    def __init__(self, client: WebClient, channel: str | Routes) -> None:
        self.client = client
        self.routes = channel if isinstance(channel, Routes) else Routes(channel)
        self.channel = self.routes.default

    @classmethod
    def from_token(cls, token: str, channel: str | Routes, base_url: str | None = None, timeout: int = 10) -> SlackNotifier:
        return cls(WebClient(token=token, timeout=timeout, base_url=base_url or WebClient.BASE_URL), channel)

    def send(self, message: Message) -> None:
        channel = self.routes.channel(message)
        mention = self.routes.mention if message.escalate else None
        try:
            self.client.chat_postMessage(channel=channel, text=message.render(mention))
        except SlackApiError as exc:
            raise NotifyError(f"Slack refused the message to {channel}: {exc.response.get('error')}") from exc
        except (SlackClientError, OSError) as exc:
            raise NotifyError(f"Slack is unreachable: {exc}") from exc


class LogNotifier:
    """Writes notifications to a logger; used when no Slack is configured."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None) -> None:
        self.logger = logger or logging.getLogger("upkeep.notify")
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)
        level = logging.WARNING if message.severity in ("warning", "critical") else logging.INFO
        self.logger.log(level, "notification: %s", message.render())
