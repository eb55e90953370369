"""One log rotation of one host in a process of its own, killed (SIGKILL) at a chosen step: what a
crashed worker leaves behind. Run by tests/integration/test_log_rotation.py:

    python -m tests.integration.rotate_once CONFIG ENV HOST PATH KEEP [STEP]
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import UTC, datetime

from upkeep.resources import Resources
from upkeep.rotation import LogTarget, rotate_log


def main(argv: list[str]) -> int:
    config, env, host, path, keep = argv[:5]
    kill_at = argv[5] if len(argv) > 5 else None

    def on_step(step: str) -> None:
        if step != kill_at:
            return
        if step == "compressing":  # in the middle of the compressor's run, not before it
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()
        else:
            os.kill(os.getpid(), signal.SIGKILL)

    with Resources.from_config(config, env) as res:
        assert res.env.logs is not None
        policy = res.env.logs.rotation.model_copy(update={"keep": int(keep)})
        out = rotate_log(res.hosts.get(host), LogTarget(path, reopen=["true"]), policy, archive=res.log_archive(),
                         now=datetime.now(UTC), force=True, on_step=on_step)
    sys.stdout.write(f"{out.errors}\n")
    return 0 if out.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
