"""The local stack: every server answers, and stopping it leaves no process behind."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pymongo
import pytest
from slack_sdk import WebClient

from sandbox.procs import http_ok_status, untraversable
from sandbox.stack import Stack, StackSettings, default_base, stop_from_state
from upkeep.hosts import HostPool

pytestmark = pytest.mark.stack


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text().lower()


def test_every_server_answers(stack: Stack, inventory) -> None:
    s3 = stack.s3_client()
    s3.create_bucket(Bucket="stack-check")
    s3.put_object(Bucket="stack-check", Key="hello.txt", Body=b"hello s3")
    assert s3.get_object(Bucket="stack-check", Key="hello.txt")["Body"].read() == b"hello s3"

    with pymongo.MongoClient(stack.mongo_uri, serverSelectionTimeoutMS=3000) as client:
        assert client.admin.command("ping")["ok"] == 1

    with HostPool(inventory.environment("development"), inventory.ssh) as pool:
        assert pool.get("host3").run(["echo", "ssh ok"]).stdout == "ssh ok\n"

    assert http_ok_status(f"{stack.prefect_api_url}/health") == 200
    assert http_ok_status(f"http://127.0.0.1:{stack.ports['prefect']}/") == 200  # the UI
    assert http_ok_status(f"{stack.standin_url(0)}/health") == 200
    assert http_ok_status(f"{stack.standin_url(1)}/worker-health") == 200

    slack = WebClient(token="xoxb-sandbox-0000", base_url=stack.slack_url)
    assert slack.chat_postMessage(channel="#ops", text="stack check")["ok"]
    with urllib.request.urlopen(stack.slack_url.replace("/api/", "/_calls")) as resp:
        assert any(c["args"].get("text") == "stack check" for c in json.load(resp))


def test_stack_stops_leaving_no_process_behind() -> None:
    base = Path(tempfile.mkdtemp(prefix="upkeep-stack-small-"))
    base.chmod(0o755)
    small = Stack(StackSettings(base, ssh_hosts=2, app_hosts=1, components=("sshd", "standin", "slack", "mongo")))
    try:
        small.up()
        pids = small.pids()
        # 2 sshd, the stand-in, the DR stand-in (on the host after the app hosts), Slack recorder, SecantusDB
        assert len(pids) == 6 and all(alive(p) for p in pids)
        assert json.loads((base / "state.json").read_text())["pids"] == pids
        # another process (e.g. `upkeep sandbox down`) stops it from its state file
        assert stop_from_state(base) == pids
        assert not [p for p in pids if alive(p)]
    finally:
        small.down()
        shutil.rmtree(base, ignore_errors=True)


def test_what_the_test_hosts_run_lies_in_the_stack_not_the_checkout(stack: Stack, inventory) -> None:
    """The hosts' login user may not enter the checkout (a clone under /root or `mktemp -d`): every
    file a service command names is the stack's own copy, readable by that user."""
    files = set()
    for env in inventory.environments.values():
        for svc in env.services.values():
            for argv in (svc.start, svc.stop, svc.restart, svc.clear_cache):
                files.update(Path(a) for a in argv or [] if a.startswith("/") and not a.startswith("/usr/"))
    assert files, "the sandbox services name no script"
    for path in files:
        assert path.is_relative_to(stack.base), f"{path} is outside the stack's directory {stack.base}"
        assert untraversable(path.parent) is None and path.stat().st_mode & 0o004, f"{path} is closed to other users"


def test_demo_directory_is_reachable_from_a_closed_checkout(tmp_path: Path) -> None:
    """A checkout under a 0700 directory keeps its stack under /var/tmp, linked as `.sandbox`."""
    checkout = tmp_path / "closed" / "p"
    checkout.mkdir(parents=True)
    (tmp_path / "closed").chmod(0o700)
    base = default_base(checkout)
    try:
        assert untraversable(base) is None and base.stat().st_mode & 0o777 == 0o755
        assert (checkout / ".sandbox").resolve() == base
        assert default_base(checkout) == base  # the same place on the next run
    finally:
        shutil.rmtree(base, ignore_errors=True)
