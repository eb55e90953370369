"""Rotate one log file on one host: rename (or copytruncate), reopen, wait until the writer has
let go, compress, archive to S3, keep `keep` — resuming whatever an earlier run left half done.

What it deletes: a compressed file's raw original once the compressed file is complete, an
interrupted compressor's partial output, and rotated files beyond `keep` whose archive was read
back and matched (all of them beyond `keep` when no archive is configured, as logrotate does).
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from upkeep.config.models import RotationPolicy
from upkeep.errors import ArchiveError, RotationError, UpkeepError
from upkeep.hosts.base import Host
from upkeep.rotation import commands as cmd
from upkeep.rotation.archive import LogArchive
from upkeep.rotation.plan import (
    PLAIN,
    SUFFIX,
    Compression,
    Generation,
    LogState,
    next_base,
    parse_listing,
    period_day,
    retention,
    rotation_due,
)

StepHook = Callable[[str], None]


@dataclass(frozen=True)
class LogTarget:
    """A log file on a host, and how its writer lets go of it."""

    path: str  # absolute, placeholders rendered
    reopen: list[str] | None = None  # argv, rendered; needed by method "rename"
    method: Literal["rename", "copytruncate"] = "rename"
    service: str | None = None


@dataclass
class RotationOutcome:
    """What one run did to one log file (plain data: the report's sentences are made from it)."""

    host: str
    path: str
    rotated: list[str] = field(default_factory=list)  # new generations (base names)
    reason: str | None = None
    compressed: list[str] = field(default_factory=list)  # final names
    archived: list[str] = field(default_factory=list)  # keys
    deleted: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # sentences: what was kept back and why
    lost_bytes: int = 0  # copytruncate's window (a lower bound)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)  # dry run
    bytes_raw: int = 0
    bytes_compressed: int = 0
    lines: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def rotate_log(host: Host, target: LogTarget, policy: RotationPolicy, *, archive: LogArchive | None, now: datetime,
               dry_run: bool = False, force: bool = False, on_step: StepHook | None = None,
               metadata: dict[str, str] | None = None) -> RotationOutcome:
    """One log of one host, start to end; errors of a step are recorded and the steps that do not
    depend on it still run (a failed upload does not stop the next file's compression)."""
    return _Rotation(host, target, policy, archive, now, dry_run, force, on_step or (lambda _: None), metadata or {}).run()


class _Rotation:
    def __init__(self, host: Host, target: LogTarget, policy: RotationPolicy, archive: LogArchive | None, now: datetime,
                 dry_run: bool, force: bool, hook: StepHook, metadata: dict[str, str]) -> None:
        self.host, self.target, self.policy, self.archive = host, target, policy, archive
        self.now, self.dry_run, self.force, self.hook, self.metadata = now, dry_run, force, hook, metadata
        self.dir, self.name = posixpath.split(target.path)
        self.out = RotationOutcome(host.name, target.path)
        self.lines: dict[str, int] = {}  # line counts taken before compressing (saves decompressing to count)

    def at(self, name: str) -> str:
        return posixpath.join(self.dir, name)

    def state(self) -> LogState:
        entries = cmd.list_dir(self.host, self.dir, self.name)
        return parse_listing(self.name, entries, self.policy.compress, self.policy.compression)

    def run(self) -> RotationOutcome:
        try:
            state = self.state()
            if self.dry_run:
                self._plan(state)
                return self.out
            state = self._resume_copies(state)
            state = self._rotate(state)
            state = self._settle(state)
            archived = self._archive(state) if self.archive is not None else None
            self._retention(state, archived)
        except UpkeepError as exc:
            self.out.errors.append(str(exc))
        return self.out

    # -- dry run ----------------------------------------------------------------------------------
    def _plan(self, state: LogState) -> None:
        reason = "forced" if self.force and state.live and state.live.size else rotation_due(
            state, self.now, self.policy.frequency, self.policy.max_size)
        plan = self.out.planned
        if reason:
            size = state.live.size if state.live else 0
            plan.append(f"rotate {self.target.path} ({size:,} bytes; {reason}) by {self.target.method}")
        pending = [g for g in state.generations if not g.done]
        if pending:
            plan.append(f"finish {len(pending)} interrupted rotation(s): {', '.join(g.base for g in pending)}")
        stored = self.archive.stored(self.host.name, self.target.path) if self.archive is not None else None
        if stored is not None:
            todo = [g.final.name for g in state.generations if g.done and g.final and stored.get(g.final.name) != g.final.size]
            if todo:
                plan.append(f"archive {len(todo)} file(s) to S3: {', '.join(todo[:5])}{' …' if len(todo) > 5 else ''}")
        keep = retention(state.generations, self.policy.keep, set(stored) if stored is not None else None)
        if keep.delete:
            plan.append(f"delete {len(keep.delete)} file(s) beyond the {self.policy.keep} kept"
                        f"{' (after reading back their archive)' if stored is not None else ''}: "
                        + ", ".join(g.final.name for g in keep.delete if g.final))
        if not plan:
            plan.append(f"nothing to do for {self.target.path}")

    # -- copytruncate resume ------------------------------------------------------------------------
    def _resume_copies(self, state: LogState) -> LogState:
        changed = False
        for g in state.generations:
            if g.copying is not None:  # the copy never completed: the live file was not truncated
                cmd.remove(self.host, self.at(g.copying.name))
                self.out.notes.append(f"dropped an interrupted copy ({g.copying.name}); the live file still has its lines")
                changed = True
            if g.copied is None:
                continue
            copied, raw = self.at(g.copied.name), self.at(g.base)
            if state.live is None or cmd.truncated_since(self.host, self.target.path, copied, g.copied.size, state.live.size):
                cmd.rename(self.host, copied, raw)
                self.out.notes.append(f"finished an interrupted copytruncate ({g.base})")
            else:
                cmd.remove(self.host, copied)
                self.out.notes.append(f"dropped an untruncated copy ({g.copied.name}); the live file still has its lines")
            changed = True
        return self.state() if changed else state

    # -- rotate -----------------------------------------------------------------------------------
    def _rotate(self, state: LogState) -> LogState:
        live = state.live
        reason = "forced" if self.force and live and live.size else rotation_due(state, self.now, self.policy.frequency,
                                                                                 self.policy.max_size)
        if reason is None or live is None:
            return state
        base = next_base(self.name, state, self.now)
        if self.target.method == "copytruncate":
            copied_name = self.at(base + ".copied")
            copied, before = cmd.copy_truncate(self.host, self.target.path, self.at(base + ".copying"), copied_name,
                                               live.size)
            self.hook("copied")
            cmd.rename(self.host, copied_name, self.at(base))
            self.out.lost_bytes += max(0, before - copied)
            self.out.notes.append(f"copytruncate: at least {max(0, before - copied):,} bytes written between the copy "
                                  f"and the truncate were lost (rename + reopen loses none)")
        else:
            if not self.target.reopen:  # refused before anything moves
                raise RotationError(self.host.name, f"{self.target.path} is rotated by rename but no reopen command is "
                                    "configured (services.<name>.reopen_logs): the writer would keep writing the rotated file")
            cmd.rename_new(self.host, self.target.path, self.at(base), live.inode)
            self.hook("renamed")
        self.out.rotated.append(base)
        self.out.reason = reason
        return self.state()

    # -- reopen, wait, compress ---------------------------------------------------------------------
    def _settle(self, state: LogState) -> LogState:
        pending = [g for g in state.generations if not g.done]
        if not pending:
            return state
        if self.target.method == "rename" and any(g.raw is not None for g in pending):
            if not self.target.reopen:
                raise RotationError(self.host.name, f"{self.target.path} was renamed but no reopen command is configured "
                                    "(services.<name>.reopen_logs): the writer keeps writing the rotated file")
            said = cmd.run_argv(self.host, self.target.reopen)  # harmless when repeated: a resumed run sends it again
            self.hook("reopened")
            self.out.notes.append("reopen sent" + (f" ({said[:80]})" if said and "\n" not in said else ""))
        for g in pending:
            try:
                self._finish(g)
            except UpkeepError as exc:
                self.out.errors.append(str(exc))
        return self.state()

    def _finish(self, g: Generation) -> None:
        raw = self.at(g.base)
        if g.raw is None:  # a part beside a final file: left by a compressor that outlived its run; tidy it
            if g.part is not None and g.final is not None:
                cmd.remove(self.host, self.at(g.part.name))
            return
        if g.final is not None:
            if g.final.mtime == g.raw.mtime:  # complete, made from the raw file as it still is: only the raw one to remove
                cmd.remove(self.host, raw, *([self.at(g.part.name)] if g.part else []))
                self.out.compressed.append(g.final.name)
                return
            # the raw file changed after it was compressed (a late write): compressed again below
            cmd.remove(self.host, self.at(g.final.name))
            self.out.notes.append(f"{g.base} was written after its compression: compressed again")
        grace, timeout = self.policy.grace.total_seconds(), self.policy.reopen_timeout.total_seconds()
        blind = False
        if self.target.method == "rename":
            released, blind, how = cmd.released(self.host, raw, timeout)
            if not released:
                self.out.held.append(f"{g.base} not compressed: {how}; the next run tries again")
                return
        if not self.policy.compress:
            ok, how = cmd.settled(self.host, raw, grace, timeout) if blind else (True, "")
            if ok:
                cmd.rename(self.host, raw, self.at(g.base + PLAIN))  # settled: final, uncompressed
                self.out.compressed.append(g.base + PLAIN)
            else:
                self.out.held.append(f"{g.base} not settled: {how}; the next run tries again")
            return
        if g.part is not None:
            cmd.remove(self.host, self.at(g.part.name))
        final = g.base + SUFFIX[self.policy.compression]
        part = self.at(final + ".part")
        if self.archive is not None:  # the archive's metadata; saves decompressing to count later
            self.lines[g.base] = cmd.count_lines(self.host, raw, None, g.raw.size)
        self.hook("compressing")
        if blind and not self._compressed_while_settling(raw, part, grace, timeout):
            self.out.held.append(f"{g.base} not compressed: still written {timeout:g} s after the reopen; the next run "
                                 "tries again")
            return
        if not blind:
            cmd.compress_part(self.host, raw, part, self.policy.compression, g.raw.size)
        cmd.finalize(self.host, part, self.at(final), raw)
        self.hook("compressed")
        self.out.compressed.append(final)
        self.out.lines += self.lines.get(g.base, 0)
        self.out.bytes_raw += g.raw.size

    def _compressed_while_settling(self, raw: str, part: str, grace: float, timeout: float) -> bool:
        """When other users' processes cannot be inspected, the grace period runs while the file is
        compressed: unchanged size and mtime across the compression (and at least `grace`) mean the
        writer let go before it began; a change throws the output away and waits, as without it."""
        started = time.monotonic()
        before = cmd.size_and_mtime(self.host, raw)
        cmd.compress_part(self.host, raw, part, self.policy.compression, before[0])
        time.sleep(max(0.0, grace - (time.monotonic() - started)))
        if cmd.size_and_mtime(self.host, raw) == before:
            return True
        cmd.remove(self.host, part)
        ok, _how = cmd.settled(self.host, raw, grace, timeout)
        if not ok:
            return False
        if self.archive is not None:
            self.lines[posixpath.basename(raw)] = cmd.count_lines(self.host, raw, None, before[0])
        cmd.compress_part(self.host, raw, part, self.policy.compression, before[0])
        return True

    # -- archive ----------------------------------------------------------------------------------
    def _finals(self, state: LogState) -> list[Generation]:
        """Finished generations (final file, nothing else left), oldest first."""
        return [g for g in state.generations if g.done]

    def _archive(self, state: LogState) -> set[str]:
        assert self.archive is not None
        try:
            stored = self.archive.stored(self.host.name, self.target.path)
        except ArchiveError as exc:
            self.out.errors.append(f"rotated files kept on {self.host.name}, not archived: {exc}")
            return set()  # nothing counts as archived: nothing beyond `keep` is deleted
        verified = set()
        since: datetime | None = None
        for g in self._finals(state):
            assert g.final is not None
            name, period_start, since = g.final.name, since, g.stamp
            if stored.get(name) == g.final.size:
                verified.add(name)
                continue
            if name in stored:  # a different file under this name: never overwritten, never counted as archived
                self.out.errors.append(f"{name} kept on {self.host.name}: the archive holds a file of {stored[name]:,} bytes "
                                       f"under its name, not its {g.final.size:,}; check s3://{self.archive.bucket}/"
                                       f"{self.archive.folder(self.host.name, self.target.path)}")
                continue
            try:
                self._upload(g, period_start)
                verified.add(name)
            except UpkeepError as exc:
                self.out.errors.append(f"{name} kept on {self.host.name}, not archived: {exc}")
        return verified

    def _upload(self, g: Generation, period_start: datetime | None = None) -> None:
        """Archive one finished generation; `period_start`: when the generation before it was rotated
        (its first lines were written after that)."""
        assert self.archive is not None and g.final is not None
        path = self.at(g.final.name)
        name = g.final.name
        compression: Compression | None = "gzip" if name.endswith(".gz") else "zstd" if name.endswith(".zst") else None
        lines = self.lines.get(g.base)
        if lines is None:
            lines = cmd.count_lines(self.host, path, compression, g.final.size)
        digest = cmd.sha256(self.host, path, g.final.size)
        key = self.archive.key(self.host.name, self.target.path, period_day(g), g.final.name)
        meta = {**self.metadata, "host": self.host.name, "path": self.target.path, "rotated-at": g.stamp.isoformat(),
                "period": f"{period_start.isoformat() if period_start else 'unknown'}/{g.stamp.isoformat()}",
                "compression": compression or "none", "service": self.target.service or ""}
        obj = self.archive.upload(self.host, path, key, sha256=digest, lines=lines, metadata=meta,
                                  on_first_chunk=lambda: self.hook("uploading"))
        self.hook("uploaded")
        self.out.archived.append(obj.key)
        self.out.bytes_compressed += obj.size

    # -- retention --------------------------------------------------------------------------------
    def _retention(self, state: LogState, archived: set[str] | None) -> None:
        finals = self._finals(state)
        plan = retention(finals, self.policy.keep, archived)
        for g in plan.held:
            self.out.held.append(f"{g.final.name if g.final else g.base} is beyond the {self.policy.keep} kept but not "
                                 "archived yet: kept until it is")
        for g in plan.delete:
            assert g.final is not None
            path = self.at(g.final.name)
            if self.archive is not None:
                key = self.archive.key(self.host.name, self.target.path, period_day(g), g.final.name)
                try:
                    match, how = self.archive.read_back(key, cmd.sha256(self.host, path, g.final.size))
                except ArchiveError as exc:
                    match, how = False, str(exc)
                if not match:
                    self.out.held.append(f"{g.final.name} kept: {how}")
                    self._reupload(g)
                    continue
            self.hook("deleting")
            cmd.remove(self.host, path)
            self.out.deleted.append(g.final.name)

    def _reupload(self, g: Generation) -> None:
        """An archive that does not match its local copy is replaced; the local copy is deleted on a later run."""
        try:
            self._upload(g, None)
            self.out.notes.append(f"{g.final.name if g.final else g.base}: archive replaced from the local copy")
        except UpkeepError as exc:
            self.out.errors.append(f"{g.base}: archive does not match and could not be replaced: {exc}")
