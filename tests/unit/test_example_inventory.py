"""examples/upkeep.yaml: it loads, has the guide's windows, and sets every field of every model."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from deployments.cli import main
from upkeep.config import load_inventory
from upkeep.config.models import Inventory
from upkeep.config.render import render, render_argv

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "upkeep.yaml"

# Fields the example leaves out on purpose, each with the reason (kept short: every entry weakens
# the coverage check). A field named here must still exist and must stay unset in the example.
NOT_IN_EXAMPLE: dict[tuple[str, str], str] = {
    ("PackageSource", "root"): "only for manager 'sandbox', the pretend package manager of Upkeep's own test stack",
}


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return load_inventory(EXAMPLE)


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The model classes an annotation mentions (through Optional, list, dict, Annotated...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)


def _reachable(root: type[BaseModel]) -> set[type[BaseModel]]:
    """Every model class reachable from `root` through field annotations."""
    seen: set[type[BaseModel]] = set()
    todo = [root]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for info in model.model_fields.values():
            todo.extend(_models_in(info.annotation))
    return seen


def _fields_set(value: Any, found: dict[type[BaseModel], set[str]]) -> None:
    """Union of `model_fields_set` per class, descending only into fields the file set (not defaults)."""
    if isinstance(value, BaseModel):
        found[type(value)] |= value.model_fields_set
        for name in value.model_fields_set:
            _fields_set(getattr(value, name), found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _fields_set(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _fields_set(item, found)


def test_example_validates(inventory: Inventory) -> None:
    assert inventory.version == 1
    assert all(env.hosts and env.services and env.mongodb for env in inventory.environments.values())


def test_example_has_the_guides_windows(inventory: Inventory) -> None:
    assert list(inventory.environments) == ["production", "staging", "development"]
    prod, staging, dev = (inventory.environment(n) for n in ("production", "staging", "development"))
    assert (prod.window.cron, prod.window.timezone, prod.window.duration) == ("0 2 * * 0", "UTC", timedelta(hours=2))
    assert (staging.window.cron, staging.window.timezone, staging.window.duration) == ("0 22 * * *", "UTC", timedelta(hours=1))
    assert dev.window.always and dev.window.cron is None
    assert (prod.emergency, staging.emergency, dev.emergency) == ("approval", "notify", "anytime")


def test_example_sets_every_field_of_every_model(inventory: Inventory) -> None:
    found: dict[type[BaseModel], set[str]] = defaultdict(set)
    _fields_set(inventory, found)
    missing = []
    for model in sorted(_reachable(Inventory), key=lambda m: m.__name__):
        for field in model.model_fields:
            if (model.__name__, field) in NOT_IN_EXAMPLE:
                assert field not in found[model], f"{model.__name__}.{field} is set now: drop it from NOT_IN_EXAMPLE"
            elif field not in found[model]:
                missing.append(f"{model.__name__}.{field}")
    assert not missing, f"not set anywhere in examples/upkeep.yaml: {', '.join(missing)}; add it to examples/upkeep.yaml " \
                        "(with a short comment: what it does and its default)"
    for model_name, field in NOT_IN_EXAMPLE:
        assert any(m.__name__ == model_name and field in m.model_fields for m in _reachable(Inventory)), \
            f"NOT_IN_EXAMPLE names {model_name}.{field}, which no longer exists"


def test_example_placeholders_resolve_on_every_host(inventory: Inventory) -> None:
    """Every {placeholder} a service, an npm source or a backup refers to exists on the hosts that use it."""
    for env in inventory.environments.values():
        names = {h.name for h in env.hosts}
        for name, svc in env.services.items():
            hosts = env.hosts_with_role(svc.role or name)
            assert hosts, f"service {name}: no host has role {svc.role or name}"
            for host in hosts:
                render(svc.health_url, host)
                for argv in (svc.start, svc.stop, svc.restart, svc.clear_cache, svc.rollback):
                    render_argv(argv or [], host)
                render(svc.log_file or "", host)
        updated = env.hosts_with_role(env.updates.role) if env.updates.role else env.hosts
        for src in env.updates.sources:
            for host in updated:
                render(src.app_dir or "", host)
        assert {c.host for c in env.backup.config_files} <= names
        assert {t.service for t in env.updates.smoke_tests} <= set(env.services)


def test_check_config_accepts_the_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["check-config", "examples/upkeep.yaml"]) == 0
