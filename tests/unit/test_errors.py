"""One exception module: every exception of the product is a class in `upkeep/errors.py`, under `UpkeepError`."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import upkeep.errors as errors

ROOT = Path(__file__).resolve().parents[2]


def test_every_exception_class_is_defined_in_the_errors_module() -> None:
    known = {name for name, obj in vars(errors).items() if inspect.isclass(obj) and issubclass(obj, BaseException)}
    elsewhere = []
    for package in ("upkeep", "tasks", "flows", "deployments"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "upkeep" / "errors.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                        ast.unparse(b).split(".")[-1] in known | {"Exception", "BaseException", "RuntimeError", "ValueError"}
                        for b in node.bases):
                    elsewhere.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not elsewhere, "exceptions outside upkeep/errors.py (move them there, re-export if needed): " + ", ".join(elsewhere)


def test_every_error_is_an_upkeep_error() -> None:
    classes = [obj for obj in vars(errors).values() if inspect.isclass(obj) and issubclass(obj, BaseException)]
    assert len(classes) > 20
    assert all(issubclass(c, errors.UpkeepError) for c in classes), [c.__name__ for c in classes]
