"""Disk hygiene without servers: the plan (pure) and the listing and removal on this machine."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from upkeep.hosts.local import LocalHost
from upkeep.hygiene import TempFile, list_temp, plan_cleanup, remove_files

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
OLD = (NOW - timedelta(days=10)).timestamp()
NEW = (NOW - timedelta(hours=1)).timestamp()


def test_the_plan_takes_old_files_matching_a_pattern_and_refuses_paths_outside() -> None:
    files = [TempFile("/srv/tmp/upload-1", 10, OLD, "f"), TempFile("/srv/tmp/upload-2", 10, NEW, "f"),
             TempFile("/srv/tmp/keep.pid", 10, OLD, "f"), TempFile("/srv/tmp/sub/render.tmp", 30, OLD, "f"),
             TempFile("/srv/tmp/../etc/passwd", 10, OLD, "f"), TempFile("/srv/tmpfoo/upload-3", 10, OLD, "f")]
    plan = plan_cleanup("/srv/tmp", files, older_than=timedelta(days=7), patterns=["upload-*", "*.tmp"], now=NOW)
    assert [f.path for f in plan.remove] == ["/srv/tmp/sub/render.tmp", "/srv/tmp/upload-1"]
    assert plan.bytes == 40 and plan.kept == 2
    assert plan.refused == ["/srv/tmp/../etc/passwd", "/srv/tmpfoo/upload-3"]  # a sibling sharing the prefix is outside


def test_listing_follows_no_symlink_and_removal_is_idempotent(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "upload-precious"
    precious.write_text("keep me")
    os.utime(precious, (OLD, OLD))
    temp = tmp_path / "tmp"
    temp.mkdir()
    (temp / "upload-old").write_text("x")
    os.utime(temp / "upload-old", (OLD, OLD))
    (temp / "linked-dir").symlink_to(outside, target_is_directory=True)  # a way out of the directory
    (temp / "upload-link").symlink_to(precious)
    os.utime(temp / "upload-link", (OLD, OLD), follow_symlinks=False)
    host = LocalHost()
    base, files = list_temp(host, str(temp))
    assert base == str(temp.resolve())
    assert str(outside / "upload-precious") not in {f.path for f in files}
    assert not any("linked-dir/" in f.path for f in files), "find did not descend through the symlink"
    plan = plan_cleanup(base, files, older_than=timedelta(days=7), patterns=["upload-*"], now=NOW)
    assert sorted(Path(f.path).name for f in plan.remove) == ["upload-link", "upload-old"]
    assert remove_files(host, plan, older_than=timedelta(days=7), patterns=["upload-*"]) == 2
    assert precious.read_text() == "keep me", "the link was removed, never its target"
    assert not (temp / "upload-old").exists() and (temp / "linked-dir").is_symlink()
    assert remove_files(host, plan, older_than=timedelta(days=7), patterns=["upload-*"]) == 0  # gone: a rerun is harmless


def test_a_directory_swapped_for_a_symlink_after_the_plan_leads_nowhere(tmp_path: Path) -> None:
    temp, outside = tmp_path / "tmp", tmp_path / "outside"
    (temp / "sub").mkdir(parents=True)
    outside.mkdir()
    for f in (temp / "sub" / "upload-1", outside / "upload-1"):
        f.write_text("x")
        os.utime(f, (OLD, OLD))
    host = LocalHost()
    base, files = list_temp(host, str(temp))
    plan = plan_cleanup(base, files, older_than=timedelta(days=7), patterns=["upload-*"], now=NOW)
    assert [Path(f.path).name for f in plan.remove] == ["upload-1"]
    (temp / "sub" / "upload-1").unlink()
    (temp / "sub").rmdir()
    (temp / "sub").symlink_to(outside, target_is_directory=True)  # swapped between the plan and the removal
    remove_files(host, plan, older_than=timedelta(days=7), patterns=["upload-*"])
    assert (outside / "upload-1").exists(), "find -delete does not follow the swapped-in symlink"
