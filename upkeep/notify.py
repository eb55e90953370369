"""Notifications: Slack through slack-sdk, or the log when Slack is not configured."""

from __future__ import annotations

import logging
from dataclasses import dataclass
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

    def render(self) -> str:
        """One Slack mrkdwn line: icon, [environment] routine, text, run link."""
        link = f" <{self.run_url}|run>" if self.run_url else ""
        return f"{_ICON[self.severity]} *[{self.environment}] {self.routine}*: {self.text}{link}"


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


class SlackNotifier:
    """Posts to one channel; the WebClient is injected (token and base_url come from config)."""

    def __init__(self, client: WebClient, channel: str) -> None:
        self.client, self.channel = client, channel

    @classmethod
    def from_token(cls, token: str, channel: str, base_url: str | None = None, timeout: int = 10) -> SlackNotifier:
        return cls(WebClient(token=token, timeout=timeout, base_url=base_url or WebClient.BASE_URL), channel)

    def send(self, message: Message) -> None:
        try:
            self.client.chat_postMessage(channel=self.channel, text=message.render())
        except SlackApiError as exc:
            raise NotifyError(f"Slack refused the message to {self.channel}: {exc.response.get('error')}") from exc
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
