"""Report text: sizes, counts, durations, digests and metrics read as a person would write them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flows._routine import _describe
from upkeep import humanize
from upkeep.backup.manifest import CollectionEntry, ConfigFileEntry, FileEntry
from upkeep.decisions.recovery import recovery_verdict


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (999, "999 B"), (25_448, "25 KB"), (1_500_000_000, "1.5 GB"),
                                         (8_003, "8.0 KB"), (10**16, "10 PB")])
def test_size(n: int, text: str) -> None:
    assert humanize.size(n) == text


@pytest.mark.parametrize(("seconds", "text"), [(0.1804, "180 ms"), (2.13, "2.1 s"), (45, "45 s"), (300, "5 min"),
                                               (125, "2 min 5 s"), (3600 * 3 + 720, "3 h 12 min"),
                                               (26 * 3600, "26 h"), (52 * 3600, "2 d 4 h"), (-90, "-1 min 30 s")])
def test_duration(seconds: float, text: str) -> None:
    assert humanize.duration(seconds) == text
    assert humanize.duration(timedelta(seconds=seconds)) == text


def test_counts_digests_and_metrics() -> None:
    assert humanize.count(1, "document") == "1 document" and humanize.count(1500, "document") == "1,500 documents"
    assert humanize.count(3, "index", "indexes") == "3 indexes"
    assert humanize.digest("962a3923c3382516a7358ac6", "blake3") == "blake3 962a3923…"
    assert [humanize.metric(m, v) for m, v in [("up", 1), ("up", 0), ("response_time_ms", 70.3),
                                               ("db_ping_ms", 3.21), ("cpu_percent", 81.54), ("disk_percent", 9.0)]] == \
        ["up", "down", "70 ms", "3.2 ms", "81.5 %", "9 %"]
    assert humanize.metric_name("response_time_ms") == "response time" and humanize.metric_name("disk_io") == "disk io"


def test_backup_entries_describe_themselves_without_a_repr() -> None:
    data = FileEntry(key="eventmanager/events.bson.gz", size=25_448, sha256="c" * 64, blake3="962a3923" + "0" * 56)
    meta = FileEntry(key="eventmanager/events.metadata.json", size=212, sha256="d" * 64)
    entry = CollectionEntry(database="eventmanager", name="events", count=1500, content_sha256="e" * 64, data=data,
                            metadata=meta, indexes=["_id_", "starts_1", "owner_1_starts_-1"])
    assert _describe(entry) == "1,500 documents · 25 KB · blake3 962a3923… · 3 indexes"
    assert _describe(ConfigFileEntry(host="api-1", path="/etc/em/app.json", file=meta)) == \
        "api-1:/etc/em/app.json · 212 B · sha256 dddddddd…"


def test_describe_falls_back_to_fields_never_to_a_repr() -> None:
    class Plain:
        def __init__(self) -> None:
            self.name, self.size = "events", 12

    text = _describe(Plain())
    assert text == "name events, size 12" and "=" not in text and "object at" not in text
    assert _describe({"sandbox": {"event-manager": "2.4.0", "openssl": "3.0.15-1"}}) == \
        "sandbox: event-manager 2.4.0, openssl 3.0.15-1"


def test_recovery_objectives_in_units() -> None:
    verdict = recovery_verdict(2.1, timedelta(seconds=80), timedelta(minutes=5), timedelta(hours=26))
    assert verdict.lines == ["RTO 2.1 s against a target of 5 min: PASS",
                             "RPO 1 min 20 s (age of the restored data) against a target of 26 h: PASS"]
