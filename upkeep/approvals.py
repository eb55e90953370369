"""Approval answers judged against the environment's approver list (pure; upkeep.config.approvals says who may
approve what).

An answer comes from the Prefect UI (a typed name: nobody verified it) or from Slack (a Slack user id, verified by
Slack, relayed by `upkeep approvals`, which signs what it relays: `sign_answer` / `verify_answer`). A refused answer
leaves the run waiting; every answer, accepted or refused, is a line of the run's report and an event.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from upkeep.config.approvals import ApprovalKind, ApprovalsConfig, Approver

Channel = Literal["Prefect UI", "Slack"]


@dataclass(frozen=True)
class Answer:
    """What came back: through which channel, from whom (a typed name, or a Slack user id), yes or no, when."""

    channel: Channel
    who: str
    approve: bool
    at: datetime
    verified: bool = False  # Slack: the relay's signature matched (the id is Slack's, not typed)


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    approver: str  # the name on the list (as typed when there is no list)
    line: str  # the report's line: who, via which channel, when, what


def _listed(cfg: ApprovalsConfig, kind: ApprovalKind, answer: Answer) -> Approver | None:
    for person in cfg.approvers:
        if kind not in person.kinds:
            continue
        if answer.channel == "Slack" and answer.verified and person.slack == answer.who:
            return person
        if answer.channel == "Prefect UI" and person.name.casefold() == answer.who.strip().casefold():
            return person
    return None


def judge(cfg: ApprovalsConfig, environment: str, kind: ApprovalKind, answer: Answer, what: str) -> Verdict:
    """Accept `answer` to the `kind` request about `what` when its author may give it; the report line either way."""
    when = f"{answer.at:%Y-%m-%d %H:%M} UTC"
    verb = "approved" if answer.approve else "refused"
    if answer.channel == "Slack" and not answer.verified:
        return Verdict(False, answer.who, f"refused attempt: an answer claiming to come from Slack ({answer.who}) at "
                                          f"{when} carried no valid signature of `upkeep approvals`; still waiting")
    if not cfg.approvers:
        how = "Slack user " + answer.who if answer.channel == "Slack" else "typed in the Prefect UI"
        return Verdict(True, answer.who, f"{verb} by **{answer.who}** via {answer.channel} at {when}: {what} (not "
                                         f"checked: environments.{environment}.approvals lists no approver; {how})")
    person = _listed(cfg, kind, answer)
    if person is None:
        said = f"Slack user {answer.who}" if answer.channel == "Slack" else f"'{answer.who}' (typed in the Prefect UI)"
        return Verdict(False, answer.who, f"refused attempt: {said} {verb} at {when}, but is not on {environment}'s "
                                          f"`{kind}` approver list (environments.{environment}.approvals); still waiting")
    how = f"Slack user {person.slack}, verified by Slack" if answer.channel == "Slack" else "name typed in the Prefect UI"
    return Verdict(True, person.name, f"{verb} by **{person.name}** via {answer.channel} ({how}) at {when}: {what}")


def _message(run_id: str, key: str, user: str, approve: bool, items: Sequence[str]) -> bytes:
    decision = "approve" if approve else "refuse"
    return f"upkeep-approval\n{run_id}\n{key}\n{user}\n{decision}\n{chr(31).join(sorted(items))}".encode()


def sign_answer(secret: bytes, run_id: str, key: str, user: str, approve: bool, items: Sequence[str] = ()) -> str:
    """What `upkeep approvals` attaches to a Slack answer it relays: HMAC-SHA256 over the run, the request (its pause),
    the Slack user, the decision and the items approved, with the environment's approvals key (a secret the relay and
    the runs share)."""
    return hmac.new(secret, _message(run_id, key, user, approve, items), hashlib.sha256).hexdigest()


def verify_answer(secret: bytes | None, signature: str, run_id: str, key: str, user: str, approve: bool,
                  items: Sequence[str] = ()) -> bool:
    """Whether `signature` is the relay's for exactly this answer (no key: nothing verifies)."""
    if not secret or not signature:
        return False
    return hmac.compare_digest(signature, sign_answer(secret, run_id, key, user, approve, items))
