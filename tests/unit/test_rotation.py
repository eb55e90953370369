"""Log rotation without servers: the pure decisions, and the engine on this machine (LocalHost, a temp directory)."""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from upkeep.config.models import RotationPolicy
from upkeep.errors import CommandError, RotationError
from upkeep.hosts.base import CommandResult
from upkeep.hosts.local import LocalHost
from upkeep.rotation import LogTarget, rotate_log
from upkeep.rotation.archive import path_word
from upkeep.rotation.commands import bounded, holders, rename_new
from upkeep.rotation.plan import Entry, parse_listing, retention, rotation_due

NOW = datetime(2026, 12, 6, 2, 0, 5, tzinfo=UTC)
POLICY = RotationPolicy(compression="gzip", keep=3, grace=timedelta(seconds=0.1), reopen_timeout=timedelta(seconds=2))


def entries(*names: str, size: int = 10) -> list[Entry]:
    return [Entry(n, size, 0.0) for n in names]


# -- pure ------------------------------------------------------------------------------------------
def test_listing_groups_generations_and_their_half_done_states() -> None:
    state = parse_listing("app.log", entries(
        "app.log", "app.log-20261204T020000Z.gz", "app.log-20261205T020000Z", "app.log-20261205T020000Z.gz.part",
        "app.log-20261206T020000Z", "app.log-20261206T020000Z.gz", "app.log-20261206T020001Z.copying", "other.log",
        "app.log.bak"), True, "gzip")
    assert state.live is not None and state.live.name == "app.log"
    by = {g.base: g for g in state.generations}
    assert by["app.log-20261204T020000Z"].done
    assert by["app.log-20261205T020000Z"].raw and by["app.log-20261205T020000Z"].part and not by["app.log-20261205T020000Z"].done
    assert by["app.log-20261206T020000Z"].raw and by["app.log-20261206T020000Z"].final
    assert by["app.log-20261206T020001Z"].copying
    assert [g.base for g in state.generations][0] == "app.log-20261204T020000Z"  # oldest first


def test_rotation_is_due_daily_or_over_the_size_never_when_empty() -> None:
    rotated_today = parse_listing("a.log", [Entry("a.log", 50, 0), *entries("a.log-20261206T000001Z.gz")], True, "gzip")
    assert rotation_due(rotated_today, NOW, "daily", 100) is None
    assert "over the 100-byte limit" in (rotation_due(parse_listing("a.log", [Entry("a.log", 150, 0), *entries(
        "a.log-20261206T000001Z.gz")], True, "gzip"), NOW, "daily", 100) or "")
    yesterday = parse_listing("a.log", [Entry("a.log", 50, 0), *entries("a.log-20261205T230000Z.gz")], True, "gzip")
    assert rotation_due(yesterday, NOW, "daily", 100) == "daily, last rotated 2026-12-05"
    assert rotation_due(yesterday, NOW, "weekly", 100) is None
    assert rotation_due(parse_listing("a.log", [Entry("a.log", 0, 0)], True, "gzip"), NOW, "daily", 100) is None
    assert rotation_due(parse_listing("a.log", [Entry("a.log", 5, 0)], True, "gzip"), NOW, "daily", 100) == "never rotated"


def test_retention_deletes_beyond_keep_only_what_is_archived() -> None:
    names = [f"a.log-2026120{d}T020000Z.gz" for d in range(1, 7)]
    state = parse_listing("a.log", entries(*names), True, "gzip")
    plan = retention(state.generations, 3, archived={names[0], names[2]})
    assert [g.base + ".gz" for g in plan.delete] == [names[2], names[0]]
    assert [g.base + ".gz" for g in plan.held] == [names[1]]  # beyond keep, not archived: kept
    assert len(plan.keep) == 3
    assert len(retention(state.generations, 3, archived=None).delete) == 3  # no archive configured: logrotate's rule


# -- the engine on this machine -----------------------------------------------------------------------
def lines_of(directory: Path) -> list[str]:
    """Every line of the live file and every rotated file, decompressed."""
    out: list[str] = []
    for f in sorted(directory.iterdir()):
        data = gzip.decompress(f.read_bytes()) if f.name.endswith(".gz") else f.read_bytes()
        out += data.decode().splitlines()
    return out


def write(path: Path, start: int, count: int) -> None:
    with path.open("a") as fh:
        fh.writelines(f"line {n}\n" for n in range(start, start + count))


def test_rename_rotation_compresses_keeps_and_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    target = LogTarget(str(log), reopen=["true"])
    n = 0
    for i in range(5):
        write(log, n, 100)
        n += 100
        out = rotate_log(LocalHost(), target, POLICY, archive=None, now=NOW + timedelta(days=i), force=False)
        assert out.ok, out.errors
        assert out.rotated and out.compressed and out.bytes_raw > 0  # lines are counted for the archive only
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len([x for x in names if x.endswith(".gz")]) == 3  # keep 3: the two oldest deleted (no archive configured)
    assert "app.log" not in names  # nothing written since the last rotation (the writer creates it)
    assert sorted(lines_of(tmp_path), key=lambda s: int(s.split()[1])) == [f"line {k}" for k in range(200, 500)]


def test_not_due_does_nothing_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, 0, 10)
    target = LogTarget(str(log), reopen=["true"])
    plan = rotate_log(LocalHost(), target, POLICY, archive=None, now=NOW, dry_run=True)
    assert plan.planned and "rotate" in plan.planned[0] and "never rotated" in plan.planned[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log"]
    rotate_log(LocalHost(), target, POLICY, archive=None, now=NOW)
    write(log, 10, 10)
    again = rotate_log(LocalHost(), target, POLICY, archive=None, now=NOW + timedelta(hours=1))
    assert again.rotated == [] and again.ok  # rotated today already, under max_size


def test_copytruncate_reports_its_window_and_keeps_the_live_file(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, 0, 50)
    out = rotate_log(LocalHost(), LogTarget(str(log), method="copytruncate"), POLICY, archive=None, now=NOW)
    assert out.ok and out.rotated and log.exists() and log.stat().st_size == 0
    assert out.lost_bytes == 0 and "copytruncate" in out.notes[0]
    assert len(lines_of(tmp_path)) == 50


@pytest.mark.parametrize("leftover", ["part", "final", "copying", "copied-truncated", "copied-not-truncated"])
def test_a_run_resumes_what_a_killed_run_left(tmp_path: Path, leftover: str) -> None:
    log = tmp_path / "app.log"
    raw = tmp_path / "app.log-20261205T020000Z"
    write(raw, 0, 100)
    method = "rename"
    if leftover == "part":  # the compressor was killed: a truncated .gz.part beside the raw file
        (tmp_path / "app.log-20261205T020000Z.gz.part").write_bytes(gzip.compress(raw.read_bytes())[:20])
    elif leftover == "final":  # killed after the compressed file was complete, before the raw one was removed
        final = tmp_path / "app.log-20261205T020000Z.gz"
        final.write_bytes(gzip.compress(raw.read_bytes()))
        os.utime(final, ns=(raw.stat().st_atime_ns, raw.stat().st_mtime_ns))  # as compression leaves it (touch -r)
    else:
        method = "copytruncate"
        copy = tmp_path / f"app.log-20261205T020000Z.{leftover.split('-')[0]}"
        if leftover == "copying":  # the copy never completed: the live file was not truncated
            (tmp_path / "app.log").write_bytes(raw.read_bytes())
            raw.write_bytes(raw.read_bytes()[:700])  # a partial copy
            raw.rename(copy)
        elif leftover == "copied-truncated":
            raw.rename(copy)
        else:
            (tmp_path / "app.log").write_bytes(raw.read_bytes())  # not truncated: the live file still holds the copied lines
            raw.rename(copy)
        write(log, 100, 5)  # the application goes on writing
    target = LogTarget(str(log), reopen=["true"], method=method)  # type: ignore[arg-type]
    out = rotate_log(LocalHost(), target, POLICY, archive=None, now=NOW)
    assert out.ok, out.errors
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in left if n.endswith((".part", ".copying")) or n == "app.log-20261205T020000Z"], left
    numbers = sorted(int(s.split()[1]) for s in lines_of(tmp_path))
    expected = 105 if leftover.startswith("cop") else 100
    assert numbers == list(range(expected)), "every line exactly once"


class FullDisk(LocalHost):
    """This machine, but the compressor's output cannot be written (what ENOSPC looks like)."""

    def run(self, argv: Sequence[str], *, timeout: float | None = None, check: bool = True,
            stdin: bytes | None = None) -> CommandResult:
        if "gzip" in argv and "-c" in argv:  # timeout -s KILL N sh -c SCRIPT sh PART gzip RAW
            Path(argv[argv.index("-c") + 3]).write_bytes(b"\x1f\x8b partial")
            raise CommandError(self.name, list(argv), 1, "gzip: stdout: No space left on device")
        return super().run(argv, timeout=timeout, check=check, stdin=stdin)


def test_a_full_disk_keeps_the_rotated_file_whole_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, 0, 100)
    out = rotate_log(FullDisk(), LogTarget(str(log), reopen=["true"]), POLICY, archive=None, now=NOW)
    assert not out.ok and "disk full" in out.errors[0] and "nothing lost" in out.errors[0]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["app.log-20261206T020005Z"]  # no partial output; the lines are all in the rotated file
    assert len(lines_of(tmp_path)) == 100
    again = rotate_log(LocalHost(), LogTarget(str(log), reopen=["true"]), POLICY, archive=None, now=NOW)
    assert again.ok and again.compressed == ["app.log-20261206T020005Z.gz"]  # space back: the next run finishes it


def test_a_rename_without_a_reopen_command_is_refused_before_anything_moves(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, 0, 3)
    raw = tmp_path / "app.log-20261205T020000Z"
    write(raw, 3, 3)
    out = rotate_log(LocalHost(), LogTarget(str(log)), POLICY, archive=None, now=NOW)
    assert not out.ok and "no reopen command" in out.errors[0]
    assert os.path.exists(raw)  # left as it was


def test_the_writer_is_found_by_inode_through_a_symlinked_directory_and_a_reader_does_not_count(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    log = real / "app.log"
    log.write_text("x\n")
    host = LocalHost()
    with open(tmp_path / "link" / "app.log", "a") as writer:  # opened through the symlink: another name
        pids, _blind = holders(host, str(log))
        assert os.getpid() in pids
    with open(log) as _reader:  # like `tail -f`: reading only
        pids, _blind = holders(host, str(log))
        assert os.getpid() not in pids
    assert writer.closed


def test_a_rename_never_overwrites_a_rotated_file(tmp_path: Path) -> None:
    log, taken = tmp_path / "app.log", tmp_path / "app.log-20261206T020005Z"
    write(log, 0, 3)
    write(taken, 100, 3)
    with pytest.raises(RotationError, match="already existed"):
        rename_new(LocalHost(), str(log), str(taken), log.stat().st_ino)
    assert taken.read_text().startswith("line 100") and log.exists()


def test_a_rotated_file_written_after_its_compression_is_compressed_again(tmp_path: Path) -> None:
    log, raw = tmp_path / "app.log", tmp_path / "app.log-20261205T020000Z"
    write(raw, 0, 100)
    final = tmp_path / "app.log-20261205T020000Z.gz"
    final.write_bytes(gzip.compress(raw.read_bytes()))
    os.utime(final, ns=(raw.stat().st_atime_ns, raw.stat().st_mtime_ns))  # as compression leaves it (touch -r)
    write(raw, 100, 5)  # a late write by a writer that reopened lazily, seconds after the compression
    os.utime(raw, (raw.stat().st_atime, raw.stat().st_mtime + 5))
    out = rotate_log(LocalHost(), LogTarget(str(log), reopen=["true"]), POLICY, archive=None, now=NOW)
    assert out.ok and any("compressed again" in n for n in out.notes)
    assert sorted(int(s.split()[1]) for s in lines_of(tmp_path)) == list(range(105))


def test_key_words_of_two_paths_never_collide() -> None:
    assert path_word("/x/a/b/x.log") != path_word("/x/a_b/x.log")
    assert path_word("/var/log/app/api.log") == "var%2Flog%2Fapp%2Fapi.log"


def test_without_compression_a_settled_file_is_final_and_not_reopened_again(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, 0, 10)
    plain = POLICY.model_copy(update={"compress": False})
    counter = tmp_path / "reopens"
    reopen = ["sh", "-c", f"echo x >> {counter}"]
    first = rotate_log(LocalHost(), LogTarget(str(log), reopen=reopen), plain, archive=None, now=NOW)
    assert first.ok and first.compressed == ["app.log-20261206T020005Z.log"]
    second = rotate_log(LocalHost(), LogTarget(str(log), reopen=reopen), plain, archive=None, now=NOW)
    assert second.ok and second.compressed == []
    assert counter.read_text().count("x") == 1, "nothing pending: no reopen on later runs"


def test_long_commands_are_bounded_on_the_host_by_the_files_size() -> None:
    argv, limit = bounded(20 * 1024**3, ["gzip", "-c", "--", "/var/log/a"])
    assert argv[:4] == ["timeout", "-s", "KILL", "4096"] and argv[4:] == ["gzip", "-c", "--", "/var/log/a"]
    assert limit == 4096 + 30  # the client waits a little longer than the host allows: no orphan outlives us
    assert bounded(10, ["true"])[0][3] == "300"
