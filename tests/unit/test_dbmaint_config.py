"""Database maintenance's configuration: a wrong rule is refused before anything runs, naming the field and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from upkeep.config import parse_inventory
from upkeep.errors import ConfigError

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "upkeep.yaml").read_text())


def production(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    dm = data["environments"]["production"]["database_maintenance"]
    dm.update(changes)
    return data


def rule(**changes: Any) -> dict[str, Any]:
    return {"collection": "events", "date_field": "ends_at", "older_than": "730d", **changes}


def test_the_example_parses_with_its_rules() -> None:
    dm = parse_inventory(production()).environments["production"].database_maintenance
    assert dm is not None and [r.collection for r in dm.stale_data] == ["events", "sessions"]
    assert dm.stale_data[1].archive is False and dm.drop_unused == "approve"


@pytest.mark.parametrize(("bad", "says"), [
    (rule(older_than="0s"), "an age of zero would remove every document"),
    (rule(filter={"$where": "sleep(100)"}), "operator $where is not allowed here"),
    (rule(filter={"status": {"$function": {}}}), "filter.status: operator $function is not allowed"),
    (rule(date_field="ends at"), "date_field"),
    (rule(colour="red"), "colour"),
])
def test_a_bad_rule_names_the_field(bad: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match="stale_data") as err:
        parse_inventory(production(stale_data=[bad]))
    assert says in str(err.value)


def test_archiving_needs_a_bucket_and_one_rule_per_collection() -> None:
    data = production()
    del data["environments"]["production"]["s3"]["archive"]
    with pytest.raises(ConfigError, match="archives events first, but s3.archive is not set: add s3.archive.bucket"):
        parse_inventory(data)
    with pytest.raises(ConfigError, match="a second rule for events"):
        parse_inventory(production(stale_data=[rule(), rule(older_than="1d")]))
    with pytest.raises(ConfigError, match="'other' is not one of mongodb.databases"):
        parse_inventory(production(database="other"))
