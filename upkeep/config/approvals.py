"""Who may approve what (`environments.<env>.approvals`): the approver list per environment, each person with the kinds
of approval they may give and their Slack user id (Slack says who clicked; the Prefect UI only knows a typed name).

Kinds: `emergency` (a run outside the window where `emergency: approval`), `updates` (major and kernel updates, npm
majors), `indexes` (index drops of the database maintenance), `baselines` (the security audit's and review's
baselines, the configuration review). With no approver listed, any answer is accepted and the report says it was
not checked.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from upkeep.config.secrets import SecretRef

ApprovalKind = Literal["emergency", "updates", "indexes", "baselines"]
KINDS: tuple[ApprovalKind, ...] = get_args(ApprovalKind)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Approver(_Model):
    """One person who may approve: by the name they type in the Prefect UI, or by a click in Slack."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@ -]{0,62}$",
                      description="their name, as they type it in the Prefect UI's approval form")
    slack: str | None = Field(None, pattern=r"^[UW][A-Z0-9]{2,20}$",
                              description="their Slack user id (U…; profile → ⋮ → Copy member ID): Slack verifies "
                                          "who clicks Approve or Refuse")
    kinds: list[ApprovalKind] = Field(default_factory=lambda: list(KINDS),
                                      description=f"what they may approve (default: all of {', '.join(KINDS)})")


class ApprovalsConfig(_Model):
    """The environment's approvers, and whether approval requests go to Slack as messages with buttons."""

    approvers: list[Approver] = Field(default_factory=list, description="who may approve (default: nobody listed: "
                                      "any answer is accepted, and the report says it was not checked)")
    slack: bool = Field(True, description="ask in Slack too, with Approve / Refuse buttons, when the environment has "
                                          "Slack (the clicks arrive over Socket Mode: `upkeep approvals`)")
    key: SecretRef | None = Field(None, description="HMAC key `upkeep approvals` signs the Slack answers it relays "
                                  "with, and the runs check (env:/block:); without it no Slack answer is accepted")
    app_token: SecretRef | None = Field(None, description="the Slack app-level token (xapp-…, scope "
                                        "connections:write) `upkeep approvals` opens its Socket Mode connection with")

    @model_validator(mode="after")
    def _unique(self) -> ApprovalsConfig:
        for what, values in (("name", [a.name.casefold() for a in self.approvers]),
                             ("slack", [a.slack for a in self.approvers if a.slack])):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"approvals.approvers: {what} {', '.join(dupes)} is listed twice: list each person once, "
                                 f"with every kind they may approve in `kinds`")
        return self
