"""free_port: the kernel's choice by default; with $UPKEEP_SANDBOX_PORTS, the next free port of that range, never
the same one twice in a process, skipping ports something already holds, a clear error when the range is spent."""

from __future__ import annotations

import socket

import pytest

from sandbox import procs
from sandbox.procs import SandboxError, free_port


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(procs, "_handed", set())


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_without_a_range_the_kernel_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(procs.PORTS_ENV, raising=False)
    assert 1024 < free_port() < 65536


def test_a_range_hands_out_each_port_once_and_skips_a_held_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # three consecutive free ports, below the test stacks' ranges (20000-31999) and the kernel's ephemeral ones
    base = next(p for p in range(12000, 19997, 3) if all(_bindable(p + i) for i in range(3)))
    monkeypatch.setenv(procs.PORTS_ENV, f"{base}-{base + 2}")
    with socket.socket() as held:
        held.bind(("127.0.0.1", base + 1))  # something holds the middle one
        held.listen()
        assert [free_port(), free_port()] == [base, base + 2]
        with pytest.raises(SandboxError, match="every port of the range"):
            free_port()


def test_a_malformed_range_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(procs.PORTS_ENV, "20000")
    with pytest.raises(SandboxError, match=r"UPKEEP_SANDBOX_PORTS='20000': expected LOW-HIGH"):
        free_port()
