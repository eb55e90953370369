"""`upkeep approvals`' decisions (deployments/approvals.py) with the Prefect API faked: which clicks are relayed, with
what input and signature, and what the clicker is told otherwise; the button's value; the recorder's frames."""

from __future__ import annotations

import socket
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import SecretStr

from deployments.approvals import Relay, apps
from sandbox import slack_socket
from upkeep.approvals import verify_answer
from upkeep.config.models import Inventory
from upkeep.slack_approvals import APPROVE, REFUSE, ActionValue, request_blocks

RUN = str(uuid4())


def inventory(**approvals: Any) -> Inventory:
    env = {"window": {"always": True}, "emergency": "anytime",
           "approvals": {"approvers": [{"name": "alice", "slack": "U0ALICE01"}], "key": "env:K",
                         "app_token": "env:APP", **approvals}}
    return Inventory.model_validate({"version": 1, "slack": {"channel": "#ops", "token": "env:BOT"},
                                     "environments": {"production": env, "staging": {**env, "approvals": {}}}})


def paused(pause_key: str = "item-approval-1") -> Any:
    state = SimpleNamespace(is_paused=lambda: True, name="Paused", state_details=SimpleNamespace(pause_key=pause_key))
    return SimpleNamespace(state=state)


def payload(action: str, value: ActionValue, user: str = "U0ALICE01") -> dict[str, Any]:
    return {"type": "block_actions", "user": {"id": user, "username": "alice"},
            "actions": [{"action_id": action, "value": value.encode()}]}


class Fake:
    def __init__(self, run: Any) -> None:
        self.run, self.resumed = run, []

    def resume(self, run_id: UUID, run_input: dict[str, Any]) -> None:
        self.resumed.append((run_id, run_input))


def relay(run: Any) -> tuple[Relay, Fake]:
    inv, fake = inventory(), Fake(run)
    (app,) = apps(inv)
    return Relay(inv, app, resolve=lambda ref: SecretStr(f"secret-of-{ref}"), resume=fake.resume,
                 read_run=lambda _id: fake.run), fake


def test_only_environments_with_an_app_token_and_slack_are_relayed() -> None:
    (app,) = apps(inventory())
    assert app.environments == ["production"] and app.app_token == "env:APP" and app.bot_token == "env:BOT"
    assert apps(inventory(slack=False)) == []


def test_an_approve_click_is_relayed_with_the_items_and_a_signature_the_run_verifies() -> None:
    r, fake = relay(paused("item-approval-2"))
    value = ActionValue(RUN, "production", "updates", ("apt:linux-image", "npm:express"))
    assert r.answer(payload(APPROVE, value)) is None
    (run_id, given), = fake.resumed
    assert run_id == UUID(RUN) and given["approved"] == ["apt:linux-image", "npm:express"]
    assert given["slack_user"] == "U0ALICE01" and given["approver"] == "alice"
    key, items = b"secret-of-env:K", ["apt:linux-image", "npm:express"]
    assert verify_answer(key, given["signature"], RUN, "item-approval-2", "U0ALICE01", True, items)
    assert not verify_answer(key, given["signature"], RUN, "item-approval-1", "U0ALICE01", True, items)
    assert not verify_answer(key, given["signature"], RUN, "item-approval-2", "U0ALICE01", True, ["npm:express"])


def test_a_refuse_click_on_an_emergency_request_says_no() -> None:
    r, fake = relay(paused("emergency-approval-1"))
    assert r.answer(payload(REFUSE, ActionValue(RUN, "production", "emergency"))) is None
    assert fake.resumed[0][1]["approve"] is False and "approved" not in fake.resumed[0][1]


def test_what_is_not_relayed_says_why() -> None:
    answered = SimpleNamespace(state=SimpleNamespace(is_paused=lambda: False, name="Completed"))
    r, fake = relay(answered)
    assert "already answered or timed out (the run is Completed)" in str(
        r.answer(payload(APPROVE, ActionValue(RUN, "production", "emergency"))))
    r, fake = relay(paused())
    assert "does not take approvals through this Slack app" in str(
        r.answer(payload(APPROVE, ActionValue(RUN, "staging", "emergency"))))
    assert "not an Upkeep approval button" in str(r.answer({"type": "block_actions", "user": {"id": "U1"},
                                                              "actions": [{"action_id": APPROVE, "value": "x"}]}))
    assert r.answer({"type": "block_actions", "actions": [{"action_id": "someone-elses"}]}) is None
    assert fake.resumed == []


def test_the_button_value_round_trips_and_the_blocks_carry_it() -> None:
    value = ActionValue(RUN, "production", "baselines", ("access:host1",))
    assert ActionValue.decode(value.encode()) == value
    blocks = request_blocks("t", "s", value, "http://ui/runs/flow-run/x")
    assert [e["action_id"] for e in blocks[1]["elements"]] == [APPROVE, REFUSE]
    assert all(e["value"] == value.encode() and len(e["value"]) <= 2000 for e in blocks[1]["elements"])
    with pytest.raises(ValueError, match="unknown kind"):
        ActionValue.decode('{"run": "r", "env": "e", "kind": "everything"}')


def test_the_recorders_frames_round_trip_a_masked_client_frame() -> None:
    assert slack_socket.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455's example
    a, b = socket.socketpair()
    with a, b:
        data, mask = b"x" * 300, b"\x01\x02\x03\x04"
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
        a.sendall(bytes([0x81, 0x80 | 126]) + len(data).to_bytes(2, "big") + mask + masked)
        assert slack_socket.read_frame(b) == (0x1, data)
        b.sendall(slack_socket.frame(0x1, b"hi"))
        assert a.recv(10) == b"\x81\x02hi"


def test_the_relay_refuses_to_start_with_nothing_to_relay(tmp_path: Any) -> None:
    import yaml

    from deployments.approvals import serve_approvals
    from upkeep.errors import ConfigError

    path = tmp_path / "upkeep.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "environments": {"development": {
        "window": {"always": True}, "emergency": "anytime"}}}))
    with pytest.raises(ConfigError, match=r"set environments.<env>.approvals.app_token"):
        serve_approvals(path)
