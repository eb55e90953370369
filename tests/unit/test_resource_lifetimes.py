"""Injected resources without any server: given clients are used as they are and left open, built
ones are closed, a routine called by another reuses its caller's, and the core's operations run on
a fake host (tests/fakes.py) with no Prefect run around them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeHost, RecordingNotifier
from upkeep.config.loader import load_inventory
from upkeep.errors import ConfigError, UpkeepError
from upkeep.hosts.local import LocalHost
from upkeep.notify import Message
from upkeep.operations import host_disk_verdicts, run_service_command, services_on
from upkeep.resources import Resources, current_resources, routine_resources, use_resources

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "upkeep.yaml"


@pytest.fixture(scope="module")
def example_path() -> str:
    return str(EXAMPLE)


class ClosingClient:
    """Stands for a pymongo or boto3 client given by a test: it only records whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_given_clients_are_used_and_left_open(example_path: str) -> None:
    inventory = load_inventory(example_path)
    hosts = {"prod-app-1": FakeHost("prod-app-1"), "prod-app-2": FakeHost("prod-app-2")}
    mongo, s3, notifier = ClosingClient(), object(), RecordingNotifier()
    with Resources(inventory, "production", hosts=hosts, mongo=mongo, s3=s3, notifier=notifier) as res:
        assert res.hosts.get("prod-app-1") is hosts["prod-app-1"]
        assert res.mongo is mongo and res.s3 is s3 and res.notifier is notifier
        res.notifier.send(Message("production", "disk-check", "hello"))
    assert not mongo.closed and not any(h.closed for h in hosts.values())
    assert notifier.texts("disk-check") == ["hello"]


def test_built_hosts_are_closed_given_ones_are_not(example_path: str) -> None:
    inventory = load_inventory(example_path)
    given = FakeHost("dev-1")
    with Resources(inventory, "development", hosts={"dev-1": given}) as res:
        assert res.hosts.get("dev-1") is given
    assert not given.closed
    with Resources(inventory, "development") as res:
        built = res.hosts.get("dev-1")
        assert isinstance(built, LocalHost)  # the inventory says `transport: local`
        assert res._pool is not None
    assert res._pool is None  # closed with the resources that built it


def test_a_host_given_for_a_name_the_inventory_lacks_is_named(example_path: str) -> None:
    with pytest.raises(ConfigError, match=r"hosts given for prod-app-9, which environments.production.hosts does not list"):
        Resources(load_inventory(example_path), "production", hosts={"prod-app-9": FakeHost("prod-app-9")})


def test_an_unknown_environment_fails_when_the_resources_are_made(example_path: str) -> None:
    with pytest.raises(ConfigError, match="qa"):
        Resources(load_inventory(example_path), "qa")


def test_a_routine_called_by_another_reuses_its_callers_resources(example_path: str, tmp_path: Path) -> None:
    with pytest.raises(UpkeepError, match="inside a routine"):
        current_resources()
    with routine_resources("production", example_path) as outer:
        assert current_resources() is outer and outer.source == example_path
        with routine_resources("production") as inner:  # the same environment: the caller's
            assert inner is outer
        with routine_resources("production", str(Path(example_path).parent / "." / "upkeep.yaml")) as inner:
            assert inner is outer  # the same file by another spelling
        copy = tmp_path / "site.yaml"
        copy.write_text(EXAMPLE.read_text())
        with routine_resources("production", str(copy)) as inner:  # another inventory file: its own
            assert inner is not outer and current_resources() is inner
        with routine_resources("staging", example_path) as inner:  # another environment: its own
            assert inner is not outer and inner.environment == "staging"
        assert current_resources() is outer
    with pytest.raises(UpkeepError):
        current_resources()


def test_injected_resources_serve_a_routine_of_their_environment(example_path: str) -> None:
    res = Resources(load_inventory(example_path), "development", hosts={"dev-1": FakeHost("dev-1")})
    with use_resources(res), routine_resources("development") as inner:
        assert inner is res
    assert not res.serves("development", example_path)  # given as an object: no file to compare with


def test_core_operations_run_on_a_fake_host(example_path: str) -> None:
    hosts: dict[str, Any] = {"prod-app-1": FakeHost("prod-app-1", free_percent=3.0)}
    res = Resources(load_inventory(example_path), "production", hosts=hosts)
    said = run_service_command(res, "prod-app-1", "api", "clear_cache")
    assert hosts["prod-app-1"].commands == [["sudo", "-u", "eventmanager", "/srv/event-manager/current/bin/em-admin",
                                             "clear-cache", "api"]]
    assert said.startswith("clear cache api: done in ")
    assert run_service_command(res, "prod-app-1", "api", "restart", dry_run=True) == "restart api: not run (dry run)"
    assert len(hosts["prod-app-1"].commands) == 1
    with pytest.raises(ConfigError, match="service 'cache' is not configured in environments.production.services"):
        run_service_command(res, "prod-app-1", "cache", "restart")
    [root] = host_disk_verdicts(res, "prod-app-1", 10.0)
    assert not root.ok and "3.0% free" in root.detail
    assert services_on(res, "prod-app-1") == ["api", "worker"]

