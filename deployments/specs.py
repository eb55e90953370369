"""Every deployment — routine × environment — with its schedule, derived from an inventory's windows.

The windows are the ones the window guard enforces at run time: `environments.<env>.window` of an
inventory (`WindowConfig.to_window()`); there is no other copy. Disruptive routines start when their
environment's window opens; an environment without a window ("anytime") runs them on their cadence.
Non-disruptive routines run on their own cadence everywhere. Routines that a composite
(daily/weekly/monthly/quarterly maintenance, `upkeep.routines.COMPOSITES`) already runs are deployed
without a schedule (`own_cadence`: no disruptive routine starts both alone and inside a composite at
the window's opening): they are there to be triggered from the UI, and the composite is what the
calendar runs. Disruptive runs of one environment share its slot (`deployments.limits`).

The checked-in `prefect.yaml` is rendered from the example inventory (`examples/upkeep.yaml`: the
guide's windows) by `upkeep deployments --write`; a site renders its own with `--config FILE`.
`upkeep serve` builds the same specs from the inventory it runs against, and `upkeep check-config`
reports where an inventory's windows and a prefect.yaml disagree (`schedule_differences`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from upkeep.blocks import block_reference
from upkeep.config.loader import load_inventory
from upkeep.config.models import RUN_HEARTBEAT, Inventory
from upkeep.routines import ROUTINES, RoutineSpec, own_cadence
from upkeep.windows import Window

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_INVENTORY = ROOT / "examples" / "upkeep.yaml"  # the guide's windows; what the checked-in prefect.yaml is from
PREFECT_YAML = ROOT / "prefect.yaml"
README = ROOT / "README.md"
BEGIN = "<!-- routines:begin — generated from upkeep/routines.py and upkeep/guide.py by `upkeep deployments --write` -->"
END = "<!-- routines:end -->"
WORK_POOL = "upkeep-process"
CADENCE: dict[str, str] = {  # when non-disruptive work runs (UTC), and disruptive work where there is no window
    "minutely": "* * * * *",
    "daily": "0 6 * * *",
    "daily-midday": "0 12 * * *",  # the independent freshness check of the backups
    "weekly": "0 6 * * 1",
    "monthly": "0 6 1 * *",
    "quarterly": "0 6 1 1,4,7,10 *",
}


@dataclass(frozen=True)
class DeploymentSpec:
    routine: RoutineSpec
    environment: str
    cron: str | None
    timezone: str
    day_or: bool = True  # False: day of month AND day of week must both match ("first Sunday")

    @property
    def name(self) -> str:
        return self.routine.deployment_name(self.environment)

    @property
    def parameters(self) -> dict[str, Any]:
        return {"environment": self.environment, **self.routine.parameters}

    @property
    def tags(self) -> list[str]:
        return ["upkeep", self.routine.id, self.environment, "disruptive" if self.routine.disruptive else "non-disruptive"]


def schedule_for(routine: RoutineSpec, window: Window) -> tuple[str | None, str, bool]:
    """(cron, timezone, day_or): the window's start for disruptive routines, else the cadence in UTC.

    A weekly routine in a daily window takes Sunday's opening; a monthly one takes the month's
    first opening (the first Sunday of a weekly window: day 1-7 AND Sunday, so day_or=False).
    None for a routine without a cadence of its own (on demand, or run by a scheduled composite)."""
    cadence = own_cadence(routine)
    if cadence is None:
        return None, "UTC", True
    if routine.disruptive and not window.always:
        assert window.cron is not None
        minute, hour, _dom, _month, dow = window.cron.split()
        if cadence == "weekly" and dow == "*":
            return f"{minute} {hour} * * 0", window.timezone, True
        if cadence == "monthly":
            if dow == "*":
                return f"{minute} {hour} 1 * *", window.timezone, True
            return f"{minute} {hour} 1-7 * {dow}", window.timezone, False
        return window.cron, window.timezone, True
    return CADENCE[cadence], "UTC", True


def next_runs(spec: DeploymentSpec, after: datetime, n: int) -> list[datetime]:
    """The next n run times (UTC) of a deployment, honouring day_or=False."""
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    if spec.cron is None:
        return []
    local = after.astimezone(ZoneInfo(spec.timezone))
    out: list[datetime] = []
    if spec.day_or:
        it = CronSim(spec.cron, local)
        return [next(it).astimezone(UTC) for _ in range(n)]
    minute, hour, dom, month, dow = spec.cron.split()
    it = CronSim(f"{minute} {hour} {dom} {month} *", local)  # then keep the days that match both
    while len(out) < n:
        t = next(it)
        if (t.isoweekday() % 7) == int(dow):
            out.append(t.astimezone(UTC))
    return out


@cache
def example_inventory() -> Inventory:
    """The example inventory (`examples/upkeep.yaml`): the guide's environments and windows."""
    return load_inventory(EXAMPLE_INVENTORY)


def deployment_specs(inventory: Inventory | None = None) -> list[DeploymentSpec]:
    """Every routine × every environment of the inventory (default: the example inventory), scheduled by its window."""
    inv = inventory if inventory is not None else example_inventory()
    out = []
    for routine in ROUTINES:
        for env in inv.environments.values():
            cron, tz, day_or = schedule_for(routine, env.window.to_window())
            out.append(DeploymentSpec(routine, env.name, cron, tz, day_or))
    return out


def run_environment(environment: str) -> dict[str, str]:
    """What every process running one of the environment's deployments needs in its environment (prefect.yaml's job
    variables; `upkeep serve` sets the same): results in the environment's S3 (`upkeep results-block`), so a retry on
    another worker reuses the completed steps; a heartbeat every RUN_HEARTBEAT, which the watchdog's crashed-runs
    automation counts on."""
    return {"PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK": block_reference(environment),
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(int(RUN_HEARTBEAT.total_seconds()))}


def prefect_yaml(specs: list[DeploymentSpec] | None = None) -> dict[str, Any]:
    """The content of prefect.yaml for these deployments (default: the example inventory's)."""
    specs = specs or deployment_specs()
    return {
        "name": "upkeep",
        "prefect-version": "3.9.1",
        "deployments": [
            {
                "name": s.name,
                "entrypoint": s.routine.entrypoint,
                "description": s.routine.description,
                "tags": s.tags,
                "parameters": s.parameters,
                "schedules": [{"cron": s.cron, "timezone": s.timezone, "day_or": s.day_or, "active": True}] if s.cron else [],
                "work_pool": {"name": WORK_POOL, "work_queue_name": s.environment,
                              "job_variables": {"env": run_environment(s.environment)}},
            }
            for s in specs
        ],
    }


def display_path(path: str | Path) -> str:
    """A path as prefect.yaml's header and the CLI name it: relative to the repository when inside it."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def write_command(config: str | Path | None = None) -> str:
    """The command that renders prefect.yaml from `config` (None: the example inventory)."""
    if config is None or Path(config).resolve() == EXAMPLE_INVENTORY:
        return "upkeep deployments --write"
    return f"upkeep deployments --write --config {display_path(config)}"


def render_prefect_yaml(inventory: Inventory | None = None, config: str | Path | None = None) -> str:
    """prefect.yaml's text for an inventory read from `config` (both None: the example inventory), with a header naming it."""
    source = display_path(config if config is not None else EXAMPLE_INVENTORY)
    text = (f"# Rendered from deployments/specs.py and the windows of {source} by `{write_command(config)}`; "
            "tests check they agree.\n")
    return text + yaml.safe_dump(prefect_yaml(deployment_specs(inventory)), sort_keys=False, width=120)


def _schedules(value: Any) -> list[tuple[str, str, bool]]:
    """A prefect.yaml deployment's schedules as (cron, timezone, day_or), Prefect's defaults filled in."""
    found = []
    for s in value if isinstance(value, list) else []:
        if isinstance(s, Mapping) and s.get("cron"):
            found.append((str(s["cron"]), str(s.get("timezone") or "UTC"), bool(s.get("day_or", True))))
    return found


def _describe(schedules: list[tuple[str, str, bool]]) -> str:
    if not schedules:
        return "no schedule (on demand)"
    return ", ".join(f'"{cron}" {tz}' + ("" if day_or else " (day_or: false)") for cron, tz, day_or in schedules)


def schedule_differences(inventory: Inventory, data: Any) -> list[str]:
    """One line per deployment whose schedule in prefect.yaml (parsed `data`) differs from what the inventory's
    windows imply, and one per environment that only one side has; empty when they agree."""
    specs = deployment_specs(inventory)
    raw = data.get("deployments") if isinstance(data, Mapping) else None
    listed: dict[str, tuple[str, list[tuple[str, str, bool]]]] = {}
    for d in raw if isinstance(raw, list) else []:
        if isinstance(d, Mapping) and isinstance(d.get("name"), str):
            params = d.get("parameters")
            env = params.get("environment") if isinstance(params, Mapping) else None
            listed[d["name"]] = (str(env or "?"), _schedules(d.get("schedules")))
    wanted = {s.name: s for s in specs}
    envs_specs = list(dict.fromkeys(s.environment for s in specs))
    envs_yaml = list(dict.fromkeys(env for env, _ in listed.values()))
    lines = [f"environment {env}: in prefect.yaml ({sum(e == env for e, _ in listed.values())} deployments), "
             "not in the inventory" for env in envs_yaml if env not in envs_specs]
    lines += [f"environment {env}: in the inventory, no deployments in prefect.yaml"
              for env in envs_specs if env not in envs_yaml]
    for name, spec in wanted.items():
        if spec.environment not in envs_yaml:
            continue  # said once for the whole environment
        implied = [(spec.cron, spec.timezone, spec.day_or)] if spec.cron else []
        if spec.routine.disruptive and spec.cron and not inventory.environments[spec.environment].window.always:
            what = f"the inventory's {spec.environment} window implies"
        else:
            what = f"its cadence ({own_cadence(spec.routine) or 'on demand'}) implies"
        if name not in listed:
            lines.append(f"{name}: not in prefect.yaml; {what} {_describe(implied)}")
        elif listed[name][1] != implied:
            lines.append(f"{name}: prefect.yaml says {_describe(listed[name][1])}; {what} {_describe(implied)}")
    lines += [f"{name}: in prefect.yaml, not a deployment of the inventory" for name, (env, _) in listed.items()
              if name not in wanted and env in envs_specs]
    return lines


def render_readme(text: str) -> str:
    """The README with its schedule and composite tables (between BEGIN and END) made from the specs and the guide
    items; a KeyError names the missing marker."""
    from upkeep.guide import composite_table, routine_table

    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise KeyError(f"README.md has no {BEGIN!r} … {END!r} section to write the routine tables into")
    body = ("\n\n" + routine_table() + "\nWhat each composite runs, in order, and every item of the guides' schedules "
            "with what does it:\n\n" + composite_table() + "\n")
    return text[: start + len(BEGIN)] + body + text[end:]
