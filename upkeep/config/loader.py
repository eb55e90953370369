"""Read and validate an inventory file; explain every error by field path, value and fix."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from upkeep.config.models import Inventory
from upkeep.errors import ConfigError

ENV_VAR = "UPKEEP_CONFIG"
DEFAULT_PATH = Path("upkeep.yaml")


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The inventory path: the explicit one, else $UPKEEP_CONFIG, else ./upkeep.yaml."""
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load_inventory(path: str | os.PathLike[str] | None = None) -> Inventory:
    """Load and validate the inventory; raise ConfigError listing every problem."""
    p = config_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the inventory ({exc.strerror}); pass --config or set {ENV_VAR}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    return parse_inventory(data, source=str(p))


def parse_inventory(data: Any, *, source: str = "<inventory>") -> Inventory:
    """Validate already-parsed data (a dict) as an Inventory."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the inventory must be a mapping with an 'environments' key")
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        problems = explain(exc, data)
        raise ConfigError(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems)) from exc


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (the key itself)"
        elif str(part).startswith(("function-", "constrained-")) or part in {"str", "int", "list[str]"}:
            continue  # union/validator branch names pydantic puts in locations
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _allowed_keys(data: Any, loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = Inventory
    for part in loc[:-1]:
        if model is None:
            return []
        if isinstance(part, int) or part not in model.model_fields:
            continue
        annotation = model.model_fields[part].annotation
        model = _model_in(annotation)
    return sorted(model.model_fields) if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if found := _model_in(arg):
            return found
    return None


def explain(exc: ValidationError, data: Any = None) -> list[str]:
    """One line per error: `field.path: bad value → what is wrong; how to fix it`."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = _path(loc)
        kind = err["type"]
        value = err.get("input")
        if kind == "extra_forbidden":
            allowed = _allowed_keys(data, loc)
            key = str(loc[-1])
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
            lines.append(f"{path}: unknown key; remove it or fix the spelling ({hint})")
        elif kind == "missing":
            lines.append(f"{path}: required field is missing; add it")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            secret = "secret reference" in msg  # never echo what may be a secret value
            shown = "" if secret or isinstance(value, (dict, list)) else f" (got {value!r})"
            lines.append(f"{path}: {msg}{shown}")
    return lines
