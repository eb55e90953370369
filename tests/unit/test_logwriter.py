"""The numbered-line log writer (sandbox/logwriter.py): its helpers, and a real writer renamed and reopened."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sandbox.logwriter import missing_and_duplicates, sequence_numbers

REPO = Path(__file__).resolve().parents[2]
RATE = 50_000
#: Below the target rate by enough not to flake on a busy 2-CPU machine: the rate controller keeps up
#: unless the writer is starved of CPU for more than a tenth of the run.
MIN_RATE = 45_000


def test_sequence_numbers_reads_n_and_skips_fragments() -> None:
    lines = [b'{"n": 1, "ts": "t", "msg": "line 1"}\n', b"\n", b'{"n": 2, "ts": "t", "ms',  # cut by a copy
             b'g": "line 2"}\n', b'{"ts": "t", "n": 3}\n', b'{"n": 10, "ts": "t", "msg": "x"}']
    assert list(sequence_numbers(lines)) == [1, 3, 10]


def test_missing_and_duplicates() -> None:
    assert missing_and_duplicates([3, 1, 2], 3) == ([], [])
    assert missing_and_duplicates([1, 2, 2, 2, 5, 4, 4], 6) == ([3, 6], [2, 4])
    assert missing_and_duplicates([], 2) == ([1, 2], [])
    with pytest.raises(ValueError, match="outside 1..3"):
        missing_and_duplicates([1, 4], 3)


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a writer of ``tmp_path/app.log``; return it once its pid file says the log is open."""
    pid_file = tmp_path / "writer.pid"
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.logwriter", "--file", str(tmp_path / "app.log"),
                             "--pid-file", str(pid_file), "--status-file", str(tmp_path / "status.json"), *args],
                            cwd=REPO, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while not pid_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the writer did not start: {proc.communicate()[1]!r}")
        time.sleep(0.01)
    assert int(pid_file.read_text()) == proc.pid
    return proc, pid_file


def _wait_for(path: Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not re-created"
        time.sleep(0.002)


def test_writer_loses_nothing_across_renames_and_reopens(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    proc, _ = _start(tmp_path, "--rate", str(RATE), "--duration", "30")
    try:
        for i in range(1, 6):
            time.sleep(0.25)
            log.rename(tmp_path / f"app.log.{i}")
            os.kill(proc.pid, signal.SIGHUP)
            _wait_for(log)  # the writer reopened: the next rename moves the new file
        time.sleep(0.25)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["reopens"] == 5
    files = [log, *(tmp_path / f"app.log.{i}" for i in range(1, 6))]
    assert all(f.stat().st_size > 0 for f in files)
    numbers = [n for f in files for n in sequence_numbers(f.read_bytes().splitlines())]
    assert missing_and_duplicates(numbers, status["last"]) == ([], [])
    assert len(numbers) == status["last"]
    rate = status["last"] / status["seconds"]
    assert rate >= MIN_RATE, f"achieved {rate:,.0f} lines/s over {status['seconds']} s (target {RATE:,})"


def test_writer_stops_at_count_and_lines_look_like_a_log(tmp_path: Path) -> None:
    proc, _ = _start(tmp_path, "--rate", "100000", "--count", "1234")
    assert proc.wait(timeout=10) == 0
    assert proc.stderr is not None
    proc.stderr.close()
    assert json.loads((tmp_path / "status.json").read_text())["last"] == 1234
    lines = (tmp_path / "app.log").read_bytes().splitlines()
    first = json.loads(lines[0])
    assert set(first) == {"n", "ts", "msg"} and first["n"] == 1 and first["msg"].startswith("line 1 ")
    assert all(100 <= len(line) + 1 <= 150 for line in lines)
    assert (tmp_path / "app.log").stat().st_mode & 0o777 == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_writer_drops_to_user_before_opening() -> None:
    shared = Path(tempfile.mkdtemp(prefix="upkeep-logwriter-"))  # pytest's tmp_path is private to root
    try:
        shared.chmod(0o777)
        proc, _ = _start(shared, "--count", "10", "--user", "nobody")
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        proc.stderr.close()
        assert (shared / "app.log").stat().st_uid == pwd.getpwnam("nobody").pw_uid
    finally:
        shutil.rmtree(shared)
