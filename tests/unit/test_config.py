"""Inventory validation: every bad input names its field, the value and the fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from upkeep.config import load_inventory, parse_inventory
from upkeep.config.render import render_argv
from upkeep.config.secrets import resolve_secret
from upkeep.errors import ConfigError, SecretError
from upkeep.rotation.targets import log_targets

VALID = {
    "version": 1,
    "ssh": {"user": "deploy", "key_file": "~/.ssh/id_ed25519", "connect_timeout": "5s"},
    "slack": {"channel": "#ops", "token": "env:SLACK_BOT_TOKEN"},
    "environments": {
        "production": {
            "window": {"cron": "0 2 * * 0", "timezone": "UTC", "duration": "2h", "cutoff": "15m",
                       "blackout": ["2026-12-27"]},
            "emergency": "approval",
            "hosts": [
                {"name": "api-1", "address": "10.0.0.1", "roles": ["api", "worker"], "vars": {"root": "/srv/em"}},
                {"name": "api-2", "address": "api-2.internal", "port": 2222, "roles": ["api"]},
            ],
            "services": {
                "api": {"health_url": "http://{address}:3000/health", "start": ["systemctl", "start", "em-api"],
                        "stop": ["systemctl", "stop", "em-api"]},
            },
            "mongodb": {"uri": "block:prod-mongo-uri", "databases": ["eventmanager"]},
            "s3": {"region": "eu-west-1", "backups": {"bucket": "em-backups", "prefix": "prod/"}},
            "logs": {"paths": ["/var/log/em/api.log"], "rotation": {"max_size": "100M", "keep": 30}},
            "max_errors": "10%",
        },
        "development": {"window": {"always": True}, "emergency": "anytime"},
    },
}


def broken(path: str, value: object) -> dict:
    """VALID with the value at a dotted path replaced (`...DELETE` removes the key)."""
    data = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value == "DELETE":
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_inventory(data)
    return str(exc.value)


def test_valid_inventory_round_trips(tmp_path: Path) -> None:
    inv = parse_inventory(VALID)
    dumped = inv.model_dump(mode="json", exclude_defaults=True)
    again = parse_inventory(dumped)
    assert again == inv
    file = tmp_path / "upkeep.yaml"
    file.write_text(yaml.safe_dump(dumped))
    assert load_inventory(file) == inv
    prod = inv.environment("production")
    assert prod.window.to_window().cron == "0 2 * * 0"
    assert prod.logs is not None and prod.logs.rotation.max_size == 100 * 1024**2
    assert prod.alerts[0].name == "high_cpu"  # the guide's defaults


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("environments.production.emergency", "DELETE", "environments.production.emergency: required field is missing"),
        ("environments.production.hosts.0.port", "twenty-two",
         "environments.production.hosts[0].port: Input should be a valid integer"),
        ("environments.production.hosts.0.port", 70000, "hosts[0].port: Input should be less than or equal to 65535 (got 70000)"),
        ("environments.production.hosts.0.adress", "x",
         "hosts[0].adress: unknown key; remove it or fix the spelling (did you mean 'address'?)"),
        ("environments.production.window.cron", "0 2 * *", "window: cron: expected 5 fields"),
        ("environments.production.window.cron", "0 25 * * 0", "window: cron: invalid expression"),
        ("environments.production.window.timezone", "Mars/Olympus", "unknown IANA timezone 'Mars/Olympus'"),
        ("environments.production.window.cutoff", "3h", "cutoff: must be a timedelta with 0 <= cutoff < duration"),
        ("environments.production.window.duration", "two hours",
         "window.duration: '2 hours' is not a duration".replace("'2 hours'", "'two hours'")),
        ("environments.production.mongodb.uri", "mongodb://admin:hunter2@db:27017",
         "environments.production.mongodb.uri: must be a secret reference, not a value"),
        ("environments.production.hosts.1.name", "api-1", "duplicate host name 'api-1' at hosts[0] and hosts[1]"),
        ("environments.production.hosts.0.address", "10.0.0.1; rm -rf /", "hosts[0].address: String should match pattern"),
        ("environments.production.max_errors", "ten", "max_errors: write a count of hosts (e.g. 1) or a percentage"),
        ("environments.production.emergency", "whenever", "emergency: Input should be 'approval', 'notify' or 'anytime'"),
        ("environments.production.services.api.start", [], "services.api.start: List should have at least 1 item"),
        ("environments.production.s3.backups.bucket", "Em_Backups", "s3.backups.bucket: String should match pattern"),
        ("slack.token", "xoxb-1234-real-token", "slack.token: must be a secret reference"),
    ],
)
def test_bad_input_names_field_and_fix(path: str, value: object, expected: str) -> None:
    message = error_of(broken(path, value))
    assert expected in message, message


def test_secret_value_never_echoed() -> None:
    message = error_of(broken("environments.production.mongodb.uri", "mongodb://admin:hunter2@db:27017"))
    assert "hunter2" not in message
    message = error_of(broken("slack.token", "xoxb-1234-real-token"))
    assert "xoxb-1234" not in message


def test_all_problems_reported_at_once() -> None:
    data = broken("environments.production.hosts.0.port", 0)
    data["environments"]["production"]["hosts"][1]["colour"] = "blue"
    message = error_of(data)
    assert "2 problem(s)" in message
    assert "hosts[0].port" in message and "hosts[1].colour: unknown key" in message


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the inventory"):
        load_inventory(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("environments: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_inventory(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_inventory(bad)


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "inv.yaml"
    file.write_text(yaml.safe_dump(VALID))
    monkeypatch.setenv("UPKEEP_CONFIG", str(file))
    assert "production" in load_inventory().environments


def test_unknown_environment_is_named() -> None:
    with pytest.raises(ConfigError, match="environment 'prod' is not in the inventory; known: production, development"):
        parse_inventory(VALID).environment("prod")


def test_secret_resolution() -> None:
    assert resolve_secret("env:TOKEN", environ={"TOKEN": "s3cr3t"}).get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(resolve_secret("env:TOKEN", environ={"TOKEN": "s3cr3t"}))
    with pytest.raises(SecretError, match="secret env:NOPE is not set"):
        resolve_secret("env:NOPE", environ={})
    assert resolve_secret("block:b", load_block=lambda name: f"from-{name}").get_secret_value() == "from-b"

    def missing(name: str) -> str:
        raise ValueError(f"Unable to find block document named {name}")

    with pytest.raises(SecretError, match="secret block:gone cannot be loaded"):
        resolve_secret("block:gone", load_block=missing)


def test_placeholders_render_per_host_and_stay_one_word() -> None:
    host = parse_inventory(VALID).environment("production").hosts[0]
    assert render_argv(["ls", "{root}/logs", "{address}"], host) == ["ls", "/srv/em/logs", "10.0.0.1"]
    with pytest.raises(ConfigError, match=r"unknown placeholder \{nope\}"):
        render_argv(["{nope}"], host)


def test_a_dr_read_query_names_one_of_the_dr_databases() -> None:
    data = copy.deepcopy(VALID)
    data["environments"]["production"]["dr"] = {
        "mongodb": {"uri": "block:dr-mongo-uri", "databases": ["em_dr"]}, "host": "api-1", "services": ["api"],
        "queries": [{"collection": "events", "database": "eventmanager"}]}
    assert ("environments.production.dr: queries[0].database 'eventmanager' is not one of dr.mongodb.databases (em_dr); "
            "name one of them or leave it out for the first") in error_of(data)
    data["environments"]["production"]["dr"]["queries"][0]["database"] = "em_dr"
    assert parse_inventory(data).environments["production"].dr.queries[0].database == "em_dr"  # type: ignore[union-attr]  # dr is set above



def test_a_service_runs_on_the_hosts_of_its_role_or_its_own_name() -> None:
    data = copy.deepcopy(VALID)
    services = data["environments"]["production"]["services"]
    services["worker"] = {**services["api"], "role": "api"}  # the worker runs beside the API
    env = parse_inventory(data).environment("production")
    assert env.service_role("api") == "api" and env.service_role("worker") == "api"
    assert [h.name for h in env.service_hosts("api")] == ["api-1", "api-2"]
    assert [h.name for h in env.service_hosts("worker")] == ["api-1", "api-2"]


@pytest.mark.parametrize(("paths", "expected"), [
    (["/var/log/em/*.log"], "has glob characters: list each log file"),
    (["var/log/em/api.log"], "is not absolute"),
    ([{"path": "/var/log/em/api.log", "service": "api"}], "services.api.reopen_logs"),
    ([{"path": "/var/log/em/api.log", "service": "mailer", "method": "copytruncate"}], "'mailer' is not one of"),
    ([{"path": "/var/log/em/api.log", "method": "move"}], "logs.paths"),
])
def test_log_paths_name_the_field_and_the_fix(paths: list[object], expected: str) -> None:
    assert expected in error_of(broken("environments.production.logs.paths", paths))


def test_a_log_rotated_by_rename_takes_its_services_reopen_command() -> None:
    data = broken("environments.production.logs.paths", [{"path": "{root}/api.log", "service": "api"}])
    data["environments"]["production"]["services"]["api"]["reopen_logs"] = ["systemctl", "kill", "-s", "HUP", "em-api"]
    data["environments"]["production"]["logs"]["temp_dirs"] = [{"path": "{root}/tmp", "older_than": "3d", "delete": True}]
    env = parse_inventory(data).environment("production")
    assert env.logs is not None and env.logs.files()[0].method == "rename"
    assert env.logs.temp_dirs[0].patterns == ["*"] and env.logs.temp_dirs[0].delete
    targets = log_targets(env, env.hosts[0])
    assert [(t.path, t.reopen) for t in targets] == [("/srv/em/api.log", ["systemctl", "kill", "-s", "HUP", "em-api"])]
    assert log_targets(env, env.hosts[1].model_copy(update={"roles": ["worker"]})) == []  # not an api host


def test_a_bare_log_path_is_copytruncated_on_every_host() -> None:
    env = parse_inventory(VALID).environment("production")
    assert env.logs is not None and [(f.path, f.method, f.service) for f in env.logs.files()] == [
        ("/var/log/em/api.log", "copytruncate", None)]


def test_no_emergency_action_is_preapproved_unless_the_inventory_says_so() -> None:
    """The guide: production emergencies are 24/7 *with approval*; pre-approving is a deliberate choice."""
    assert parse_inventory(VALID).environment("production").emergency_preapproved == []
    chosen = broken("environments.production.emergency_preapproved", ["restart"])
    assert parse_inventory(chosen).environment("production").emergency_preapproved == ["restart"]


@pytest.mark.parametrize("value", ["-delete", "../etc", "/srv//em", "/srv/em/", "relative"])
def test_a_host_var_that_renders_a_bad_path_is_refused(value: str) -> None:
    from upkeep.config.models import HostConfig
    from upkeep.config.render import host_path

    host = HostConfig(name="h1", address="10.0.0.1", vars={"root": value})
    with pytest.raises(ConfigError, match="write an absolute path"):
        host_path("{root}/api.log" if value.startswith("/") else "{root}", host, "logs.paths[0]")
