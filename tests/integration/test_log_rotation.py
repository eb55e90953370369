"""Log rotation against real hosts (this machine and an sshd host) and SeaweedFS: zero loss under a
50k lines/s writer, killed runs completed by the next, S3 down, a corrupt archive, a full disk."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from sandbox.logwriter import missing_and_duplicates, sequence_numbers
from sandbox.procs import Proc, spawn
from sandbox.sshd import USER
from sandbox.stack import SECRETS, Stack
from upkeep.config.models import RotationPolicy
from upkeep.hosts.base import Host
from upkeep.hosts.local import LocalHost
from upkeep.resources import Resources
from upkeep.rotation import LogArchive, LogTarget, rotate_log
from upkeep.rotation.archive import path_word

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]
REMOTE = 4  # the fifth sshd host: no stand-in runs there
FAST = RotationPolicy(compression="gzip", keep=30, grace=timedelta(seconds=0.2), reopen_timeout=timedelta(seconds=10))


@pytest.fixture(scope="module")
def res(stack: Stack) -> Iterator[Resources]:
    with Resources.from_config(str(stack.inventory_path), "development") as r:
        yield r


def new_archive(stack: Stack, env: str | None = None) -> LogArchive:
    archive = LogArchive(stack.s3_client(), "upkeep-logs", "event-manager/", env or f"t-{uuid.uuid4().hex[:8]}")
    archive.ensure_bucket()
    return archive


def remote_dir(stack: Stack, name: str) -> Path:
    """A directory on the remote test host, owned by its login user."""
    assert stack.fleet is not None
    d = stack.fleet.hosts[REMOTE].root / name
    d.mkdir()
    os.chown(d, *_sbx())
    return d


def _sbx() -> tuple[int, int]:
    import pwd

    u = pwd.getpwnam(USER)
    return u.pw_uid, u.pw_gid


def all_numbers(directory: Path, log: str, archive: LogArchive, host: str) -> list[int]:
    """Every line number of the live file, the archives, and the rotated files not archived (each generation once)."""
    numbers: list[int] = []
    stored = archive.stored(host, str(directory / log))
    for obj in archive.objects(archive.folder(host, str(directory / log))):
        with archive.open(obj["Key"]) as body:
            numbers += sequence_numbers(gzip.decompress(body.read()).splitlines())
    for f in directory.iterdir():
        if f.name == log:
            numbers += sequence_numbers(f.read_bytes().splitlines())
        elif f.name.startswith(log) and f.name not in stored:
            data = gzip.decompress(f.read_bytes()) if f.name.endswith(".gz") else f.read_bytes()
            numbers += sequence_numbers(data.splitlines())
    return numbers


def start_writer(stack: Stack, log: Path, status: Path, as_user: bool) -> tuple[Proc, int]:
    pid_file = log.parent / "writer.pid"
    argv = [sys.executable, str(stack.tools / "logwriter.py"), "--file", str(log), "--rate", "50000", "--duration", "600",
            "--pid-file", str(pid_file), "--status-file", str(status), *(["--user", USER] if as_user else [])]
    proc = spawn(f"writer-{log.parent.name}", argv, stack.base / "logs" / f"writer-{log.parent.name}.log")
    deadline = time.monotonic() + 10
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.05)
    return proc, int(pid_file.read_text())


@pytest.mark.parametrize("where", ["local", "remote"])
def test_zero_loss_under_a_50k_lines_per_second_writer(stack: Stack, res: Resources, where: str) -> None:
    if where == "local":
        directory, host, name = stack.base / f"zl-{uuid.uuid4().hex[:6]}", LocalHost("local"), "local"
        directory.mkdir()
    else:
        directory, name = remote_dir(stack, f"zl-{uuid.uuid4().hex[:6]}"), stack.fleet.hosts[REMOTE].name  # type: ignore[union-attr]
        host = res.hosts.get(name)
    log, status = directory / "app.log", directory / "writer-status.json"  # the writer's user may write there
    archive = new_archive(stack)
    proc, pid = start_writer(stack, log, status, as_user=where == "remote")
    target = LogTarget(str(log), reopen=["kill", "-HUP", str(pid)])
    try:
        for i in range(20):
            time.sleep(0.3)
            out = rotate_log(host, target, FAST, archive=archive, now=datetime.now(UTC), force=True)
            assert out.ok, out.errors
            assert out.rotated, f"rotation {i} rotated nothing"
    finally:
        proc.stop()
    deadline = time.monotonic() + 10
    while not status.exists():
        assert time.monotonic() < deadline, "the writer left no status"
        time.sleep(0.05)
    written = json.loads(status.read_text())
    last = written["last"]
    assert written["reopens"] >= 20
    assert last >= 20 * 0.3 * 50_000 * 0.5, f"the writer wrote only {last} lines"
    missing, duplicated = missing_and_duplicates(all_numbers(directory, "app.log", archive, name), last)
    assert (missing[:10], duplicated[:10]) == ([], []), f"{len(missing)} lines lost, {len(duplicated)} duplicated"
    assert len(archive.stored(name, str(log))) >= 20


def seed_lines(path: Path, start: int, count: int) -> None:
    with path.open("a") as fh:
        fh.writelines(f'{{"n": {n}, "msg": "static line {n} of the kill test, padded to compress for a while"}}\n'
                      for n in range(start, start + count))


def rotate_in_process(stack: Stack, log: Path, keep: int, kill_at: str | None = None) -> int:
    assert stack.fleet is not None
    argv = [sys.executable, "-m", "tests.integration.rotate_once", str(stack.inventory_path), "development",
            stack.fleet.hosts[REMOTE].name, str(log), str(keep), *([kill_at] if kill_at else [])]
    return subprocess.run(argv, cwd=ROOT, env={**os.environ, **stack.secrets()}, capture_output=True, timeout=120).returncode


@pytest.mark.parametrize("step", ["renamed", "reopened", "compressing", "uploading", "deleting"])
def test_a_run_killed_at_each_step_is_completed_by_the_next(stack: Stack, res: Resources, step: str) -> None:
    directory = remote_dir(stack, f"kill-{step}")
    log = directory / "app.log"
    host = stack.fleet.hosts[REMOTE].name  # type: ignore[union-attr]
    archive = res.log_archive()
    assert archive is not None
    seed_lines(log, 1, 150_000)
    total = 150_000
    if step == "deleting":  # a generation beyond keep=1 must exist and be archived before the killed run
        assert rotate_in_process(stack, log, keep=1) == 0
        seed_lines(log, total + 1, 1000)
        total += 1000
        time.sleep(1.1)  # a new stamp
    assert rotate_in_process(stack, log, keep=1, kill_at=step) == -signal.SIGKILL
    seed_lines(log, total + 1, 10)  # the application goes on writing (a new file after a rename)
    total += 10
    time.sleep(1.1)
    assert rotate_in_process(stack, log, keep=1) == 0, "the next run completes"
    left = sorted(p.name for p in directory.iterdir())
    assert not [n for n in left if n.endswith((".part", ".copying"))], left
    missing, duplicated = missing_and_duplicates(all_numbers(directory, "app.log", archive, host), total)
    assert (missing[:5], duplicated[:5]) == ([], []), f"{len(missing)} lost, {len(duplicated)} duplicated"
    assert len([n for n in left if n.endswith(".gz")]) == 1, f"keep=1 once the archives are verified: {left}"


def test_s3_down_keeps_files_on_the_host_and_the_next_run_archives_them(stack: Stack, res: Resources) -> None:
    directory = remote_dir(stack, "s3-down")
    log = directory / "app.log"
    host: Host = res.hosts.get(stack.fleet.hosts[REMOTE].name)  # type: ignore[union-attr]
    down = LogArchive(boto3.client("s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                                   aws_access_key_id=SECRETS["UPKEEP_SANDBOX_S3_KEY"],
                                   aws_secret_access_key=SECRETS["UPKEEP_SANDBOX_S3_SECRET"],
                                   config=Config(retries={"max_attempts": 1}, connect_timeout=1)),
                      "upkeep-logs", "event-manager/", "s3down")
    policy = FAST.model_copy(update={"keep": 1})
    for i in range(3):
        seed_lines(log, i * 100 + 1, 100)
        out = rotate_log(host, LogTarget(str(log), reopen=["true"]), policy, archive=down, now=datetime.now(UTC), force=True)
        assert not out.ok and out.rotated and out.compressed and out.deleted == []
        time.sleep(1.1)
    assert len([p for p in directory.iterdir() if p.name.endswith(".gz")]) == 3, "nothing deleted while S3 is down"
    up = new_archive(stack, "s3down")
    out = rotate_log(host, LogTarget(str(log), reopen=["true"]), policy, archive=up, now=datetime.now(UTC))
    assert out.ok, out.errors
    assert len(out.archived) == 3 and len(out.deleted) == 2
    assert sorted(all_numbers(directory, "app.log", up, host.name)) == list(range(1, 301))


def test_an_archive_that_does_not_match_keeps_the_local_copy(stack: Stack, res: Resources) -> None:
    directory = remote_dir(stack, "mismatch")
    log = directory / "app.log"
    host = res.hosts.get(stack.fleet.hosts[REMOTE].name)  # type: ignore[union-attr]
    archive = new_archive(stack)
    keep_all = FAST.model_copy(update={"keep": 5})
    seed_lines(log, 1, 500)
    first = rotate_log(host, LogTarget(str(log), reopen=["true"]), keep_all, archive=archive, now=datetime.now(UTC))
    assert first.ok and len(first.archived) == 1
    key = first.archived[0]
    head = archive.s3.head_object(Bucket=archive.bucket, Key=key)
    body = archive.s3.get_object(Bucket=archive.bucket, Key=key)["Body"].read()
    corrupt = bytes([body[0] ^ 0xFF]) + body[1:]  # same size, one byte flipped: a listing cannot tell
    archive.s3.put_object(Bucket=archive.bucket, Key=key, Body=corrupt, Metadata=head["Metadata"])
    time.sleep(1.1)
    seed_lines(log, 501, 10)
    out = rotate_log(host, LogTarget(str(log), reopen=["true"]), FAST.model_copy(update={"keep": 1}), archive=archive,
                     now=datetime.now(UTC), force=True)
    assert out.deleted == [] and any("does not match" in h for h in out.held), out
    assert (directory / key.rsplit("/", 1)[-1]).exists(), "the local copy is kept"
    restored = archive.s3.get_object(Bucket=archive.bucket, Key=key)["Body"].read()
    assert restored == body, "the archive was replaced from the local copy"
    again = rotate_log(host, LogTarget(str(log), reopen=["true"]), FAST.model_copy(update={"keep": 1}), archive=archive,
                       now=datetime.now(UTC))
    assert again.ok and again.deleted == [key.rsplit("/", 1)[-1]]
    assert sorted(all_numbers(directory, "app.log", archive, host.name)) == list(range(1, 511))


def test_a_full_disk_leaves_the_live_log_and_the_rotated_lines_intact(stack: Stack) -> None:
    mount = stack.base / f"full-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip()}): needs root with CAP_SYS_ADMIN")
    try:
        log = mount / "app.log"
        with log.open("w") as fh:  # random-ish text: compresses poorly, so the compressed copy needs real space
            fh.writelines(f'{{"n": {n}, "id": "{uuid.uuid4().hex}{uuid.uuid4().hex}"}}\n' for n in range(1, 9001))
        filler = mount / "filler"
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        filler.write_bytes(b"\0" * max(0, free - 8192))
        out = rotate_log(LocalHost(), LogTarget(str(log), reopen=["true"]), FAST, archive=None, now=datetime.now(UTC))
        assert not out.ok and "disk full" in out.errors[0], out.errors
        names = sorted(p.name for p in mount.iterdir())
        assert not [n for n in names if n.endswith((".part", ".gz"))], names
        rotated = [mount / n for n in names if n.startswith("app.log-")]
        assert len(rotated) == 1
        assert list(sequence_numbers(rotated[0].read_bytes().splitlines())) == list(range(1, 9001))
        filler.unlink()
        again = rotate_log(LocalHost(), LogTarget(str(log), reopen=["true"]), FAST, archive=None, now=datetime.now(UTC))
        assert again.ok and again.compressed, again.errors
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_path_word_keeps_logs_of_one_host_apart() -> None:
    assert path_word("/var/log/app/api.log") != path_word("/var/log/worker/api.log")
