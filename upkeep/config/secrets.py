"""Secret references: `env:NAME` or `block:NAME` (a Prefect Secret block), never values.

A reference is resolved only when a client is built, inside a run; the value is kept in a
`SecretStr` so that it never shows in a repr, a log line, a parameter or an artifact.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Annotated, Any, cast

from pydantic import AfterValidator, SecretStr

from upkeep.errors import SecretError

_REF = re.compile(r"^(env|block):([A-Za-z0-9_][A-Za-z0-9_.\-/]*)$")


def check_secret_ref(value: str) -> str:
    """Accept `env:NAME` / `block:NAME`; refuse anything that looks like a literal secret."""
    if not _REF.match(value):
        raise ValueError(
            "must be a secret reference, not a value: store the secret in an environment "
            "variable or a Prefect Secret block and write 'env:NAME' or 'block:NAME'"
        )
    return value


SecretRef = Annotated[str, AfterValidator(check_secret_ref)]


def _load_block(name: str) -> str:
    from prefect.blocks.system import Secret  # imported here: no Prefect work at import time

    block = cast("Secret[Any]", Secret.load(name))  # called from sync code: async_dispatch returns the block, not a coroutine
    value: Any = block.get()
    return value if isinstance(value, str) else str(value)


def resolve_secret(
    ref: str,
    *,
    environ: dict[str, str] | None = None,
    load_block: Callable[[str], str] = _load_block,
) -> SecretStr:
    """Resolve a reference to its value; raise SecretError naming the reference (not the value)."""
    m = _REF.match(ref)
    if not m:
        raise SecretError(f"{ref[:8]}…: not a secret reference (env:NAME or block:NAME)")
    kind, name = m.groups()
    if kind == "env":
        env = os.environ if environ is None else environ
        if name not in env:
            raise SecretError(f"secret env:{name} is not set; export {name}=… in the worker's environment")
        return SecretStr(env[name])
    try:
        return SecretStr(load_block(name))
    except (ValueError, KeyError, RuntimeError) as exc:
        raise SecretError(
            f"secret block:{name} cannot be loaded ({type(exc).__name__}); "
            f"create it with `prefect block create secret` or in the UI under Blocks"
        ) from exc
