"""Stand-ins a test injects through `upkeep.resources.Resources`: a host with no machine behind it,
a notifier that keeps what it was sent. Not mocks of a library: each implements one of our small
interfaces (`upkeep.hosts.base.Host`, `upkeep.notify.Notifier`)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import BinaryIO

from upkeep.hosts.base import CommandResult, DiskUsage, ResourceUsage
from upkeep.notify import Message

GIB = 1024**3


class FakeHost:
    """A Host whose root filesystem is `free_percent` free; it records the commands it is asked to run."""

    def __init__(self, name: str, free_percent: float = 50.0) -> None:
        self.name, self.free_percent = name, free_percent
        self.commands: list[list[str]] = []
        self.files: dict[str, bytes] = {}
        self.closed = False

    def run(self, argv: Sequence[str], *, timeout: float | None = None, check: bool = True,
            stdin: bytes | None = None) -> CommandResult:
        self.commands.append([str(a) for a in argv])
        return CommandResult(self.name, [str(a) for a in argv], 0, "", "", 0.0)

    def read_file(self, path: str) -> bytes:
        return self.files.get(path, f"# {path} on {self.name}\n".encode())

    def open_file(self, path: str) -> BinaryIO:
        return io.BytesIO(self.read_file(path))

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.files[path] = data

    def resources(self) -> ResourceUsage:
        total = 100 * GIB
        free = int(total * self.free_percent / 100)
        return ResourceUsage(self.name, 5.0, 20.0, 8 * GIB, 0.1, [DiskUsage("/", total, total - free, free)])

    def close(self) -> None:
        self.closed = True


class RecordingNotifier:
    """A Notifier that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def send(self, message: Message) -> None:
        self.messages.append(message)

    def texts(self, routine: str | None = None) -> list[str]:
        return [m.text for m in self.messages if routine is None or m.routine == routine]
