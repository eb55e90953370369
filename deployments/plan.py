"""`upkeep plan ROUTINE --env ENV`: what a routine would do now, touching nothing."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

from upkeep.config.models import Inventory
from upkeep.config.render import render, render_argv
from upkeep.decisions.guard import guard_decision
from upkeep.errors import ConfigError


def plan_lines(inventory: Inventory, routine: str, env_name: str, *, emergency: bool = False,
               now: datetime | None = None, service: str = "api") -> list[str]:
    """Human-readable plan: guard decision, then per stage and host what would run."""
    env = inventory.environment(env_name)
    now = now or datetime.now(UTC)
    lines = [f"{routine} on {env_name} at {now.isoformat(timespec='seconds')}"]
    hosts = env.hosts
    if routine == "disk-check":
        lines.append("guard: not disruptive, runs on its schedule")
        lines += [f"execute: {h.name}: read /proc and df; free space ≥ {env.thresholds.disk_free_min_percent:g}%" for h in hosts]
        return lines
    if routine != "clear-cache":
        raise ConfigError(f"no plan for routine {routine!r}; known: disk-check, clear-cache")
    decision = guard_decision(env.window.to_window(), env.emergency, now, emergency=emergency)
    lines.append(f"guard: {decision.action} — {decision.reason}")
    if not decision.proceeds_now and decision.action != "ask_approval":
        lines.append("nothing would be touched")
        return lines
    svc = env.services.get(service)
    if svc is None:
        raise ConfigError(f"service {service!r} is not in environments.{env_name}.services")
    targets = env.hosts_with_role(svc.role or service)
    lines += [f"pre: {h.name}: GET {render(svc.health_url, h)}" for h in targets]
    if svc.clear_cache is None:
        lines.append(f"execute: services.{service}.clear_cache is not configured")
    else:
        lines += [f"execute: {h.name}: {shlex.join(render_argv(svc.clear_cache, h))}" for h in targets]
    lines += [f"post: {h.name}: GET {render(svc.health_url, h)}" for h in targets]
    lines.append(f"concurrency {env.max_concurrency}, max_errors {env.max_errors}")
    return lines
