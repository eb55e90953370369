"""Backups against SeaweedFS and SecantusDB, verification by real restore, the DR test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from flows.backup import backup
from flows.dr_test import dr_test
from flows.verify_backup import verify_backup
from sandbox.faultproxy import FaultProxy
from sandbox.stack import Stack
from tests.helpers import report_of, artifacts_of, inventory_variant, slack_calls
from upkeep.backup.manifest import MANIFEST, SIGNATURE, Manifest, sign
from upkeep.backup.store import BackupStore

pytestmark = pytest.mark.stack
KEY = b"sandbox-manifest-signing-key"


@pytest.fixture(scope="module")
def store(stack: Stack) -> BackupStore:
    return BackupStore(stack.s3_client(), "upkeep-backups", "event-manager/")


@pytest.fixture(scope="module")
def backup_id(stack: Stack) -> str:
    return backup(environment="development")


def objects(store: BackupStore, backup_id: str) -> dict[str, int]:
    out = {}
    for page in store.s3.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=store.key(backup_id, "")):
        out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return out


def test_backup_then_verify_passes(store: BackupStore, backup_id: str) -> None:
    manifest = store.load_manifest(backup_id)
    counts = {c.qualified: c.count for c in manifest.collections}
    assert counts == {"eventmanager.events": 1500, "eventmanager.sessions": 900, "eventmanager.users": 600}
    events = next(c for c in manifest.collections if c.name == "events")
    assert events.indexes == ["_id_", "owner_1_starts_-1", "starts_1"]
    assert [c.path.endswith("config/app.json") for c in manifest.config_files] == [True]
    assert backup_id in [r.backup_id for r in store.list_backups()]
    assert store.verified_ok(backup_id)  # the backup flow verified it, test restore included

    state = verify_backup(environment="development", backup_id=backup_id, return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result["documents"] == 3000 and result["docs_per_second"] > 0
    report = report_of(state.state_details.flow_run_id)
    assert "test restore: 3000 documents in" in report.data and "documents/s" in report.data


def _flip(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]


def test_every_injected_corruption_is_detected_and_nothing_is_deleted(stack: Stack, store: BackupStore, backup_id: str,
                                                                      tmp_path: Path) -> None:
    manifest = store.load_manifest(backup_id)
    data_key = next(c for c in manifest.collections if c.name == "events").data.key
    before = objects(store, backup_id)

    def rewrite(relative: str, change: Callable[[bytes], bytes | None]) -> Callable[[], None]:
        original = store.read_bytes(backup_id, relative)
        changed = change(original)
        if changed is None:
            store.s3.delete_object(Bucket=store.bucket, Key=store.key(backup_id, relative))
        else:
            store.put_bytes(backup_id, relative, changed)
        return lambda: store.put_bytes(backup_id, relative, original)

    def resigned_manifest(edit: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        original, sig = store.manifest(backup_id)
        data = json.loads(original)
        edit(data)
        body = Manifest.model_validate(data).model_dump_json(indent=2).encode()
        store.put_bytes(backup_id, MANIFEST, body)
        store.put_bytes(backup_id, SIGNATURE, sign(body, KEY).encode())

        def undo() -> None:
            store.put_bytes(backup_id, MANIFEST, original)
            store.put_bytes(backup_id, SIGNATURE, sig.encode())
        return undo

    def events_count_plus_one(data: dict[str, Any]) -> None:
        next(c for c in data["collections"] if c["name"] == "events")["count"] += 1

    def tampered(data: bytes) -> bytes:
        return data.replace(b'"count": 1500', b'"count": 1400')

    cases: list[tuple[str, Callable[[], Callable[[], None]], dict[str, Any], str]] = [
        ("flipped byte", lambda: rewrite(data_key, _flip), {}, f"{data_key}: checksum mismatch"),
        ("truncated object", lambda: rewrite(data_key, lambda d: d[: len(d) // 2]), {}, f"{data_key}: size mismatch"),
        ("missing object", lambda: rewrite(data_key, lambda d: None), {}, f"{data_key}: missing object"),
        ("missing required collection", lambda: (lambda: None),
         {"backup": {"required_collections": ["eventmanager.events", "eventmanager.payments"], "manifest_key": "env:UPKEEP_SANDBOX_MANIFEST_KEY"}},
         "eventmanager.payments: required collection missing from the backup"),
        ("tampered manifest", lambda: rewrite(MANIFEST, tampered), {}, "manifest signature mismatch"),
        ("wrong document count", lambda: resigned_manifest(events_count_plus_one), {},
         "eventmanager.events: document count mismatch: manifest 1501, restored 1500"),
        ("too-old newest backup", lambda: (lambda: None),
         {"backup": {"max_age": "1s", "manifest_key": "env:UPKEEP_SANDBOX_MANIFEST_KEY"}}, "older than the allowed 0:00:01"),
    ]
    detected = []
    for name, corrupt, env_changes, expected in cases:
        config = inventory_variant(stack, tmp_path / f"{len(detected)}.yaml", "development", **env_changes)
        undo = corrupt()
        try:
            state = verify_backup(environment="development", config=config, backup_id=backup_id, return_state=True)
        finally:
            undo()
        if state.is_failed() and expected in state.message:
            detected.append(name)
        else:
            pytest.fail(f"{name}: not detected as expected ({expected!r}); run ended {state.name}: {state.message}")
    assert len(detected) == 7, detected
    assert objects(store, backup_id) == before  # verification deleted and changed nothing
    assert verify_backup(environment="development", backup_id=backup_id, return_state=True).is_completed()
    alerts = [c["args"]["text"] for c in slack_calls(stack) if "FAILED verification" in c["args"].get("text", "")]
    assert len(alerts) >= 7


def test_daily_maintenance_runs_its_routines(store: BackupStore, backup_id: str) -> None:
    from flows.maintenance import daily_maintenance

    before = len(store.list_backups())
    outcomes = daily_maintenance(environment="development")
    assert outcomes == {"disk_check": "Completed", "backup": "Completed"}
    assert len(store.list_backups()) == before + 1


@pytest.fixture
def s3_failing_uploads(stack: Stack) -> Iterator[FaultProxy]:
    with FaultProxy(stack.s3_url, fail=("PUT", r"\.bson\.gz")) as proxy:
        yield proxy


def test_s3_unavailable_during_upload(stack: Stack, store: BackupStore, s3_failing_uploads: FaultProxy, tmp_path: Path) -> None:
    data = yaml.safe_load(stack.inventory_path.read_text())
    s3 = {**data["environments"]["development"]["s3"], "endpoint_url": s3_failing_uploads.url}
    config = inventory_variant(stack, tmp_path / "inv.yaml", "development", s3=s3)
    complete_before = store.list_backups()
    state = backup(environment="development", config=config, return_state=True)
    assert state.is_failed()
    assert "upload" in state.message and "ServiceUnavailable" in state.message
    assert s3_failing_uploads.failed >= 6  # boto3's own retries, then the task's retries
    assert store.list_backups() == complete_before  # no half-written backup is listed as complete


def test_dr_test_reports_rto_and_rpo(stack: Stack, backup_id: str, tmp_path: Path) -> None:
    state = dr_test(environment="development", return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert 0 < result["rto_seconds"] < 300 and result["rpo_seconds"] >= 0
    report = report_of(state.state_details.flow_run_id)
    assert "RTO" in report.data and "RPO" in report.data and "PASS" in report.data

    data = yaml.safe_load(stack.inventory_path.read_text())
    dr = {**data["environments"]["development"]["dr"], "rto_target": "1ms"}
    config = inventory_variant(stack, tmp_path / "inv.yaml", "development", dr=dr)
    state = dr_test(environment="development", config=config, return_state=True)
    assert state.is_failed() and "RTO" in state.message and "FAIL" in state.message
