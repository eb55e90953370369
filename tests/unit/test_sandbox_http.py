"""Tests for the sandbox HTTP servers (Event Manager stand-in, Slack recorder).

Each server runs as a real subprocess on an ephemeral loopback port.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

REPO = Path(__file__).resolve().parents[2]
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TOKEN = "xoxb-test-1234"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Spawn = Callable[..., tuple[subprocess.Popen[str], str]]


def _start(module: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m module args`` and return (process, base URL) once READY."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("READY http://127.0.0.1:"):
        proc.kill()
        _, err = proc.communicate(timeout=5)
        pytest.fail(f"{module} did not start: {line!r} {err}")
    return proc, line.removeprefix("READY ")


def _stop(proc: subprocess.Popen[str]) -> int:
    """Terminate by PID and wait; return the exit code."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Factory starting servers; every started process is terminated at teardown."""
    procs: list[subprocess.Popen[str]] = []

    def factory(module: str, *args: str) -> tuple[subprocess.Popen[str], str]:
        proc, url = _start(module, *args)
        procs.append(proc)
        return proc, url

    yield factory
    for proc in procs:
        _stop(proc)


def call(url: str, body: Any = None, method: str | None = None,
         raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """HTTP request returning (status, decoded JSON), without raising on 4xx/5xx."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


@pytest.fixture
def standin(spawn: Spawn, tmp_path: Path) -> tuple[str, Path]:
    """A running stand-in (no state file) and its log path."""
    log = tmp_path / "api.log"
    _, url = spawn("sandbox.standin", "--log-file", str(log))
    return url, log


@pytest.fixture
def recorder(spawn: Spawn, tmp_path: Path) -> tuple[str, Path]:
    """A running Slack recorder and its record file."""
    rec = tmp_path / "slack.jsonl"
    _, url = spawn("sandbox.slack_recorder", "--record-file", str(rec))
    return url, rec


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file (every line must be valid JSON)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def faults(state: dict[str, Any]) -> tuple[int, bool, bool]:
    """The injected-fault part of a stand-in state."""
    return state["latency_ms"], state["api_unhealthy"], state["worker_crashed"]


# --- Event Manager stand-in -------------------------------------------------------------


def healthy(answer: tuple[int, Any], service: str) -> bool:
    """A 200 with status ok of `service` (the version, uptime and memory aside)."""
    status, body = answer
    return status == 200 and (body["status"], body["service"]) == ("ok", service)


def test_standin_healthy_endpoints(standin: tuple[str, Path]) -> None:
    url, _ = standin
    assert healthy(call(f"{url}/health"), "api")
    assert healthy(call(f"{url}/worker-health"), "worker")
    status, events = call(f"{url}/api/events")
    assert status == 200 and isinstance(events, list) and events
    assert {"id", "name"} <= set(events[0])


def test_standin_latency_delays_health(standin: tuple[str, Path]) -> None:
    url, log = standin
    assert call(f"{url}/_control/latency", {"ms": 300})[1]["latency_ms"] == 300
    started = time.monotonic()
    assert call(f"{url}/health")[0] == 200
    assert time.monotonic() - started >= 0.3
    health_line = [e for e in read_jsonl(log) if e["path"] == "/health"][-1]
    assert health_line["duration_ms"] >= 300
    call(f"{url}/_control/latency", {"ms": 0})
    started = time.monotonic()
    call(f"{url}/health")
    assert time.monotonic() - started < 0.3


def test_standin_unhealthy_api_until_restart(standin: tuple[str, Path]) -> None:
    url, _ = standin
    assert call(f"{url}/_control/unhealthy", {"api": True})[1]["api_unhealthy"] is True
    status, body = call(f"{url}/health")
    assert status == 503 and body["status"] == "unhealthy"
    assert call(f"{url}/api/events")[0] == 503
    assert call(f"{url}/worker-health")[0] == 200
    status, state = call(f"{url}/_control/restart", {"component": "api"})
    assert status == 200 and state["restarts"] == 1 and state["last_restart"] == "api"
    assert call(f"{url}/health")[0] == 200
    call(f"{url}/_control/unhealthy", {"api": True})
    assert call(f"{url}/_control/unhealthy", {"api": False})[1]["api_unhealthy"] is False


def test_standin_crashed_worker_stays_down_until_restarted(standin: tuple[str, Path]) -> None:
    url, _ = standin
    assert call(f"{url}/_control/crash-worker", {})[1]["worker_crashed"] is True
    for _ in range(3):
        assert call(f"{url}/worker-health")[0] == 503
    assert call(f"{url}/health")[0] == 200
    call(f"{url}/_control/restart", {"component": "api"})
    assert call(f"{url}/worker-health")[0] == 503
    call(f"{url}/_control/restart", {"component": "worker"})
    assert healthy(call(f"{url}/worker-health"), "worker")
    call(f"{url}/_control/crash-worker", {})
    call(f"{url}/_control/unhealthy", {"api": True})
    state = call(f"{url}/_control/restart", {"component": "all"})[1]
    assert state["restarts"] == 3 and not state["worker_crashed"] and not state["api_unhealthy"]


def test_standin_cache_reset_and_state(standin: tuple[str, Path]) -> None:
    url, _ = standin
    call(f"{url}/_control/clear-cache", {})
    assert call(f"{url}/_control/clear-cache", {})[1]["cache_clears"] == 2
    call(f"{url}/_control/latency", {"ms": 50})
    call(f"{url}/_control/crash-worker", {})
    status, state = call(f"{url}/_control/reset", {})
    assert status == 200
    assert faults(state) == (0, False, False)
    assert (state["restarts"], state["cache_clears"]) == (0, 0)
    status, state = call(f"{url}/_control/state")
    assert status == 200 and state["requests"] == 6
    assert set(state) >= {"latency_ms", "api_unhealthy", "worker_crashed", "restarts",
                          "cache_clears", "requests"}


def test_standin_rejects_bad_requests(standin: tuple[str, Path]) -> None:
    url, _ = standin
    assert call(f"{url}/nope")[0] == 404
    assert call(f"{url}/_control/explode", {})[0] == 404
    assert call(f"{url}/_control/latency", {})[0] == 400
    assert call(f"{url}/_control/latency", {"ms": -5})[0] == 400
    assert call(f"{url}/_control/latency", {"ms": "slow"})[0] == 400
    assert call(f"{url}/_control/restart", {"component": "db"})[0] == 400
    assert call(f"{url}/_control/latency", raw=b"{not json")[0] == 400
    assert call(f"{url}/_control/latency", [1, 2])[0] == 400
    assert call(f"{url}/_control/state")[1]["latency_ms"] == 0


def test_standin_writes_one_json_log_line_per_request(standin: tuple[str, Path]) -> None:
    url, log = standin
    call(f"{url}/health")
    call(f"{url}/missing")
    call(f"{url}/_control/crash-worker", {})
    call(f"{url}/worker-health")
    entries = read_jsonl(log)
    assert len(entries) == 4
    for entry in entries:
        assert set(entry) == {"ts", "level", "service", "method", "path", "route", "status", "duration_ms", "ip", "user",
                              "msg"}
        assert TS_RE.match(entry["ts"]) and entry["ip"] == "127.0.0.1"
        assert isinstance(entry["duration_ms"], (int, float)) and entry["msg"]
    summary = [(e["method"], e["path"], e["status"], e["level"]) for e in entries]
    assert summary == [
        ("GET", "/health", 200, "info"),
        ("GET", "/missing", 404, "warn"),
        ("POST", "/_control/crash-worker", 200, "info"),
        ("GET", "/worker-health", 503, "error"),
    ]


def test_standin_log_lines_carry_service_route_and_user(standin: tuple[str, Path]) -> None:
    url, log = standin
    call(f"{url}/api/events/42", headers={"X-User": "user7@example.org"})
    call(f"{url}/api/users/5f2a9c0e1b2c3d4e5f6a7b8c/sessions")
    call(f"{url}/worker-health")
    call(f"{url}/api/events", headers={"X-User": "user8@example.org"})
    entries = read_jsonl(log)
    assert [(e["service"], e["path"], e["route"], e["status"], e["user"]) for e in entries] == [
        ("api", "/api/events/42", "/api/events/:id", 404, "user7@example.org"),
        ("api", "/api/users/5f2a9c0e1b2c3d4e5f6a7b8c/sessions", "/api/users/:id/sessions", 404, None),
        ("worker", "/worker-health", "/worker-health", 200, None),
        ("api", "/api/events", "/api/events", 200, "user8@example.org"),
    ]


def _users_logged(*logs: Path) -> list[str]:
    """The X-User of every /health line in these logs, in file order."""
    return [e["user"] for log in logs for e in read_jsonl(log) if e["path"] == "/health"]


def test_standin_reopen_logs_while_serving_loses_no_line(standin: tuple[str, Path]) -> None:
    url, log = standin
    sent: list[str] = []

    def traffic() -> None:
        for i in range(400):
            assert call(f"{url}/health", headers={"X-User": f"u{i}"})[0] == 200
            sent.append(f"u{i}")

    client = threading.Thread(target=traffic)
    client.start()
    rotated = []
    for k in range(1, 4):
        while len(sent) < 100 * k:
            time.sleep(0.005)
        rotated.append(log.rename(log.with_name(f"api.log.{k}")))
        status, state = call(f"{url}/_control/reopen-logs", {})
        assert status == 200 and state["log_reopens"] == k
    client.join(timeout=30)
    assert len(sent) == 400
    assert sorted(_users_logged(*rotated, log)) == sorted(sent)  # each request's line exactly once
    assert all(_users_logged(f) for f in rotated)
    reopen_lines = [sum(e["path"] == "/_control/reopen-logs" for e in read_jsonl(f)) for f in (*rotated, log)]
    assert reopen_lines == [0, 1, 1, 1]  # each logged after its reopen: in the file the reopen opened
    assert call(f"{url}/_control/state")[1]["log_reopens"] == 3


def test_standin_reopens_its_log_on_sighup(spawn: Spawn, tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    proc, url = spawn("sandbox.standin", "--log-file", str(log))
    call(f"{url}/health", headers={"X-User": "before"})
    old = log.rename(tmp_path / "api.log.1")
    os.kill(proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 5
    while call(f"{url}/_control/state")[1]["log_reopens"] < 1:
        assert time.monotonic() < deadline, "the stand-in did not reopen its log on SIGHUP"
        time.sleep(0.01)
    call(f"{url}/health", headers={"X-User": "after"})
    assert _users_logged(old) == ["before"] and _users_logged(log) == ["after"]
    assert _stop(proc) == 0


def test_standin_state_file_survives_process_restart(spawn: Spawn, tmp_path: Path) -> None:
    log, state_file = tmp_path / "api.log", tmp_path / "state.json"
    args = ("--log-file", str(log), "--state-file", str(state_file))
    proc, url = spawn("sandbox.standin", *args)
    call(f"{url}/_control/latency", {"ms": 120})
    call(f"{url}/_control/unhealthy", {"api": True})
    call(f"{url}/_control/crash-worker", {})
    call(f"{url}/_control/clear-cache", {})
    assert json.loads(state_file.read_text())["worker_crashed"] is True
    assert _stop(proc) == 0

    _, url2 = spawn("sandbox.standin", *args)
    state = call(f"{url2}/_control/state")[1]
    assert faults(state) == (120, True, True)
    assert state["cache_clears"] == 1
    assert call(f"{url2}/health")[0] == 503
    assert call(f"{url2}/worker-health")[0] == 503
    call(f"{url2}/_control/restart", {"component": "all"})
    assert call(f"{url2}/worker-health")[0] == 200
    assert json.loads(state_file.read_text())["restarts"] == 1
    assert all(TS_RE.match(e["ts"]) for e in read_jsonl(log))  # both runs appended


def test_standin_sigterm_exits_cleanly(spawn: Spawn, tmp_path: Path) -> None:
    proc, url = spawn("sandbox.standin", "--log-file", str(tmp_path / "a.log"))
    assert call(f"{url}/health")[0] == 200
    assert _stop(proc) == 0


@pytest.mark.parametrize("module,extra", [
    ("sandbox.standin", ["--log-file", "unused.log"]),
    ("sandbox.slack_recorder", ["--record-file", "unused.jsonl"]),
])
@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "localhost", "::1"])
def test_servers_refuse_non_loopback_bind(module: str, extra: list[str], host: str,
                                          tmp_path: Path) -> None:
    extra = [str(tmp_path / extra[1]) if i == 1 else a for i, a in enumerate(extra)]
    done = subprocess.run([sys.executable, "-m", module, "--host", host, "--port", "0", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert "127.x" in done.stderr


# --- Stand-in: health details, documentation and support sources ------------------------


def fetch_text(url: str) -> tuple[int, str, str]:
    """(status, content type, text) of a GET, without raising on 4xx/5xx."""
    try:
        with _OPENER.open(url, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def test_standin_health_answers_version_uptime_and_rss(standin: tuple[str, Path]) -> None:
    url, _ = standin
    status, api = call(f"{url}/health")
    assert status == 200 and api["version"] == "1.4.2"
    assert isinstance(api["uptime"], float) and 0 < api["uptime"] < 60
    assert isinstance(api["memory"]["rss"], int) and 1_000_000 < api["memory"]["rss"] < 2_000_000_000  # a real RSS
    worker = call(f"{url}/worker-health")[1]
    assert worker["service"] == "worker" and worker["version"] == "1.4.2" and worker["uptime"] >= api["uptime"]
    call(f"{url}/_control/crash-worker", {})
    assert call(f"{url}/worker-health")[1] == {"status": "crashed", "service": "worker"}  # unhealthy answers unchanged


def test_standin_simulated_leak_grows_rss_per_minute_of_uptime(standin: tuple[str, Path]) -> None:
    url, _ = standin
    real = call(f"{url}/health")[1]["memory"]["rss"]
    per_min = 60_000_000_000  # 1 GB a second: plain to see after a few milliseconds of uptime
    assert call(f"{url}/_control/leak", {"bytes_per_min": per_min})[1]["leak_bytes_per_min"] == per_min
    first = call(f"{url}/health")[1]
    time.sleep(0.2)
    second = call(f"{url}/health")[1]
    for body in (first, second):
        leaked = per_min * body["uptime"] / 60
        assert abs(body["memory"]["rss"] - leaked - real) < real / 2 + per_min / 60 * 0.001  # uptime rounded to 1 ms
    assert second["memory"]["rss"] - first["memory"]["rss"] > 150_000_000  # ≥ 0.2 s at 1 GB/s
    assert call(f"{url}/_control/leak", {"bytes_per_min": -1})[0] == 400
    state = call(f"{url}/_control/reset", {})[1]
    assert state["leak_bytes_per_min"] == 0
    assert abs(call(f"{url}/health")[1]["memory"]["rss"] - real) < real / 2


def test_standin_version_argument_and_deploys(spawn: Spawn, tmp_path: Path) -> None:
    state_file = tmp_path / "s.json"
    args = ("--log-file", str(tmp_path / "a.log"), "--state-file", str(state_file), "--version", "1.4.1")
    proc, url = spawn("sandbox.standin", *args)
    assert call(f"{url}/health")[1]["version"] == "1.4.1"
    assert call(f"{url}/_control/version", {"version": "1.5.0"})[1]["version"] == "1.5.0"
    assert call(f"{url}/health")[1]["version"] == call(f"{url}/worker-health")[1]["version"] == "1.5.0"
    assert call(f"{url}/_control/version", {"version": ""})[0] == 400
    assert call(f"{url}/_control/version", {"version": 15})[0] == 400
    assert call(f"{url}/_control/reset", {})[1]["version"] == "1.5.0"  # a deploy is no injected fault
    assert call(f"{url}/openapi.json")[1]["info"]["version"] == "1.5.0"
    assert _stop(proc) == 0
    _, url2 = spawn("sandbox.standin", *args)  # the deployed version outlives a restart of the process
    assert call(f"{url2}/health")[1]["version"] == "1.5.0"


def test_standin_api_description_matches_the_routes_it_logs(standin: tuple[str, Path]) -> None:
    from upkeep.loganalysis.accumulate import route_key
    from upkeep.reviews.docs import described_routes, route_findings

    url, log = standin
    status, openapi = call(f"{url}/openapi.json")
    assert status == 200 and openapi["openapi"].startswith("3.")
    assert call(f"{url}/api/events/2")[1]["name"] == "Tech Meetup"
    assert call(f"{url}/api/events/42")[0] == 404
    call(f"{url}/api/events")
    call(f"{url}/health")
    served: dict[str, int] = {}
    for e in read_jsonl(log):
        served[route_key(e["method"], e["route"])] = served.get(route_key(e["method"], e["route"]), 0) + 1
    assert served["GET /api/events/:id"] == 2
    found = route_findings(described_routes(openapi), served)
    assert [(f.level, f.subject) for f in found] == [("info", "GET /api/events/:id/attendees")]
    call(f"{url}/_control/unhealthy", {"api": True})
    assert call(f"{url}/api/events/1")[0] == 503  # the same gates as /api/events


def test_standin_changelog_lists_the_default_version_only(standin: tuple[str, Path]) -> None:
    from upkeep.reviews.docs import changelog_finding, changelog_versions

    url, log = standin
    status, ctype, text = fetch_text(f"{url}/CHANGELOG.md")
    assert status == 200 and ctype.startswith("text/markdown")
    versions = changelog_versions(text)
    assert versions == ["1.4.2", "1.4.1"]
    assert changelog_finding(versions, {"h1": call(f"{url}/health")[1]["version"]}) == []
    call(f"{url}/_control/version", {"version": "1.5.0"})
    [finding] = changelog_finding(versions, {"h1": call(f"{url}/health")[1]["version"]})
    assert finding.level == "warning" and "1.5.0" in finding.title
    assert ("GET", "/CHANGELOG.md", 200) in [(e["method"], e["route"], e["status"]) for e in read_jsonl(log)]


def test_standin_documentation_pages(standin: tuple[str, Path]) -> None:
    url, log = standin
    status, ctype, page = fetch_text(f"{url}/docs/getting-started")
    assert status == 200 and ctype.startswith("text/html") and "<h1>Getting started</h1>" in page
    assert fetch_text(f"{url}/docs/api")[0] == 200
    assert fetch_text(f"{url}/docs/faq")[0] == 404
    assert call(f"{url}/_control/docs", {"docs": ["faq"]})[1]["docs"] == ["faq"]
    assert fetch_text(f"{url}/docs/faq")[0] == 200 and fetch_text(f"{url}/docs/api")[0] == 404
    assert call(f"{url}/_control/docs", {"docs": "faq"})[0] == 400
    lines = [(e["route"], e["status"]) for e in read_jsonl(log) if e["path"].startswith("/docs/")]
    assert lines == [("/docs/getting-started", 200), ("/docs/api", 200), ("/docs/faq", 404), ("/docs/faq", 200),
                     ("/docs/api", 404)]


def test_standin_support_tickets(standin: tuple[str, Path]) -> None:
    from upkeep.reviews.support import overdue, parse_tickets

    url, _ = standin
    status, body = call(f"{url}/support/tickets")
    tickets = parse_tickets(body)
    assert status == 200 and [(t.priority, t.open) for t in tickets] == [("critical", True), ("high", True),
                                                                         ("critical", False)]
    now = datetime.now(UTC)
    assert timedelta(hours=6) <= tickets[0].age(now) < timedelta(hours=6, minutes=5)  # opened 6 h before the start
    assert [t.id for t in overdue(tickets, now)] == ["812"]
    mine = [{"id": 1, "subject": "x", "priority": "low", "status": "new", "created_at": "2026-12-06T10:00:00Z"}]
    assert call(f"{url}/_control/tickets", {"tickets": mine})[1]["tickets"] == mine
    assert call(f"{url}/support/tickets")[1] == {"tickets": mine}
    assert call(f"{url}/_control/tickets", {"tickets": {"id": 1}})[0] == 400
    assert len(call(f"{url}/_control/reset", {})[1]["tickets"]) == 3


# --- Slack recorder ---------------------------------------------------------------------


def test_recorder_chat_post_message_with_real_client(recorder: tuple[str, Path]) -> None:
    url, rec = recorder
    client = WebClient(token=TOKEN, base_url=f"{url}/api/")
    first = client.chat_postMessage(channel="#ops", text="disk at 91%")
    second = client.chat_postMessage(channel="C123", text="second", blocks=[{"type": "divider"}])
    assert first["ok"] and first["channel"] == "#ops" and first["message"]["text"] == "disk at 91%"
    assert second["channel"] == "C123" and second["message"]["blocks"] == [{"type": "divider"}]
    assert re.match(r"^\d+\.\d{6}$", first["ts"]) and first["ts"] != second["ts"]

    status, calls = call(f"{url}/_calls")
    assert status == 200 and [c["method"] for c in calls] == ["chat.postMessage"] * 2
    assert calls[0]["args"] == {"channel": "#ops", "text": "disk at 91%"}
    assert calls[0]["token_present"] is True and calls[0]["token_last4"] == "1234"
    assert calls[0]["response"]["ts"] == first["ts"]
    assert read_jsonl(rec) == calls
    assert TOKEN not in rec.read_text() and TOKEN not in json.dumps(calls)


def test_recorder_auth_test_and_other_methods(recorder: tuple[str, Path]) -> None:
    url, _ = recorder
    client = WebClient(token=TOKEN, base_url=f"{url}/api/")
    auth = client.auth_test()
    assert auth["ok"] and auth["user_id"] == "U0" and auth["team"] == "sandbox"
    assert client.conversations_list(limit=5)["ok"] is True
    calls = call(f"{url}/_calls")[1]
    assert [c["method"] for c in calls] == ["auth.test", "conversations.list"]
    assert calls[1]["args"] == {"limit": "5"}  # form-encoded by the SDK
    assert call(f"{url}/_calls?method=auth.test")[1] == calls[:1]


def test_recorder_missing_token_is_not_authed(recorder: tuple[str, Path]) -> None:
    url, _ = recorder
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=f"{url}/api/").chat_postMessage(channel="#ops", text="x")
    assert err.value.response["error"] == "not_authed"
    calls = call(f"{url}/_calls")[1]
    assert calls[0]["token_present"] is False and calls[0]["token_last4"] is None


def test_recorder_form_body_token_is_redacted(recorder: tuple[str, Path]) -> None:
    url, rec = recorder
    form = f"token={TOKEN}&channel=C9&text=hello+there".encode()
    status, body = call(f"{url}/api/chat.postMessage", raw=form,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and body["ok"] and body["channel"] == "C9"
    status, body = call(f"{url}/api/chat.postMessage", {"text": "no channel"},
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert body == {"ok": False, "error": "channel_not_found"}
    status, body = call(f"{url}/api/chat.postMessage", raw=b"{oops",
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert body == {"ok": False, "error": "invalid_arguments"}
    calls = call(f"{url}/_calls")[1]
    assert calls[0]["args"] == {"channel": "C9", "text": "hello there"}
    assert calls[0]["token_last4"] == "1234" and len(calls) == 3
    assert TOKEN not in rec.read_text()
    assert call(f"{url}/nothing", {})[0] == 404


def test_recorder_reset_clears_calls(recorder: tuple[str, Path]) -> None:
    url, rec = recorder
    WebClient(token=TOKEN, base_url=f"{url}/api/").chat_postMessage(channel="#a", text="t")
    assert len(call(f"{url}/_calls")[1]) == 1
    assert call(f"{url}/_reset", {}) == (200, {"ok": True})
    assert call(f"{url}/_calls")[1] == []
    assert len(read_jsonl(rec)) == 1  # the file is an append-only audit trail


def test_recorder_sigterm_exits_cleanly(spawn: Spawn, tmp_path: Path) -> None:
    proc, url = spawn("sandbox.slack_recorder", "--record-file", str(tmp_path / "r.jsonl"))
    assert call(f"{url}/_calls")[0] == 200
    assert _stop(proc) == 0
