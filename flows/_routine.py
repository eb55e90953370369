"""The frame every routine shares: resources, window guard, pre → execute → post stages, report.

    @flow(name=CLEAR_CACHE.flow)
    def clear_cache(environment: str, ...):
        with Routine(CLEAR_CACHE, environment, config) as r:   # the spec says it is disruptive
            if not r.guard(emergency):            # outside the window: touches nothing
                return r.skipped()
            with r.stage("pre"): r.fan_out(verify_service, hosts, ...)      # runs as pre:verify-...
            with r.stage("execute", disruptive=True, rollback=undo): ...  # rollback runs on failure
            with r.stage("post"): ...

The stage a block is in is the stage of every task it calls (upkeep.stages): the UI shows
`post:notify`, the report files each host's row under it.

One disruptive routine per environment at a time: once the window guard lets a disruptive routine go
ahead, it takes its environment's slot (`upkeep-disruptive-<env>`, a Prefect global concurrency limit
of 1, created when missing) and holds it to the end of the run. A second one waits for it until its
window's cutoff (an always-open window, or an emergency run: the environment's `max_slot_wait`), then
ends Skipped, touching nothing. The slot is re-entrant within a run: the routines a composite or
another routine calls run inside their caller's slot (`hold_slot`, `composite_slot`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import State, Task, get_run_logger
from prefect.states import Completed
from prefect.utilities.annotations import opaque

import upkeep.blocks  # noqa: F401 - registers the S3 result storage block type a worker's run may be told to use
from flows._approvals import Approval, ItemApproval, ask
from flows._slots import hold_slot, holds
from tasks._base import run_key
from tasks.monitoring import maintenance_lock
from tasks.notify import notify
from tasks.reports import Progress, publish_override, publish_report
from upkeep.config.approvals import ApprovalKind
from upkeep.config.models import EnvironmentConfig
from upkeep.decisions.guard import guard_decision, step_allowed
from upkeep.errors import FanOutError, UpkeepError, WindowClosed
from upkeep.hosts.fanout import FanOutResult, Status, fan_out
from upkeep.humanize import duration, step_times
from upkeep.notify import Severity
from upkeep.report import RoutineReport, StageRecord, StepStatus
from upkeep.resources import Resources, routine_resources, use_resources
from upkeep.routines import RoutineSpec, slot_name
from upkeep.runrecords import run_record
from upkeep.stages import Stage, current_stage, in_stage
from upkeep.windows import wait_bound


class Routine:
    """One run of a routine: its spec (upkeep.routines), environment, resources, report."""

    def __init__(self, spec: RoutineSpec, environment: str, config: str | None = None, *, dry_run: bool = False,
                 resources: Resources | None = None) -> None:
        """`resources`: the clients to use (default: the caller's when they serve this environment,
        else new ones from the inventory at `config`; upkeep.resources.routine_resources)."""
        self.spec, self.name = spec, spec.id
        self.environment, self.config = environment, config
        self.disruptive, self.override = spec.disruptive, False
        self.report = RoutineReport(spec.id, environment, dry_run=dry_run)
        self.res = resources
        self._scope = ExitStack()
        self._locked = False
        self.approver: str | None = None  # who answered the last approval request (approve_items)

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> Routine:
        self.logger = get_run_logger()
        with ExitStack() as scope:
            if self.res is None:
                self.res = scope.enter_context(routine_resources(self.environment, self.config))
            else:
                scope.enter_context(use_resources(self.res))
            self._scope = scope.pop_all()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and self.report.outcome == "running":
            self.report.outcome = f"failed: {str(exc) or type(exc).__name__}"
        elif self.report.outcome == "running":
            self.report.outcome = "completed"
        try:
            if self._locked:
                try:
                    maintenance_lock([], run_key(), self.name, self.env.window.duration, release=True)
                except Exception as err:  # noqa: BLE001 - the report still goes out; the lock expires with the window
                    self.report.notes.append(f"maintenance lock not released ({err}); it expires with the window")
                    self.logger.error("maintenance lock not released: %s", err)
            publish_report(self.report, table=self.spec.cadence != "minutely" or "failed" in self.report.counts())
            self._keep_record(failed=exc is not None)
        finally:
            self._scope.__exit__(exc_type, exc, tb)

    def _keep_record(self, *, failed: bool) -> None:
        """The run's durable record in S3 (upkeep.runrecords); a failure to write it is noted, never fatal."""
        try:  # no task: one small PUT, and a minute health check should not add a task run for it
            store = self.res.run_records() if self.res is not None else None
            if store is not None:
                key = store.put(run_record(self.report, run_key(), failed=failed))
                self.logger.info("run record kept: s3://%s/%s", store.bucket, key)
        except Exception as err:  # noqa: BLE001 - the run's own outcome stands; the log says the record is missing
            self.logger.error("run record not kept: %s", err)

    @property
    def env(self) -> EnvironmentConfig:
        assert self.res is not None
        return self.res.env

    @property
    def resources(self) -> Resources:
        """The run's clients (upkeep.resources), for a stage that calls the core directly."""
        assert self.res is not None, "resources are there inside `with Routine(...)`"
        return self.res

    # -- window guard -----------------------------------------------------------------------------
    def guard(self, emergency: bool = False, *, preapproved: bool = False) -> bool:
        """True when the routine may touch anything now (see upkeep.decisions.guard); then the
        environment's hosts are marked as under maintenance (their health alerts are suppressed)."""
        with in_stage("guard"):
            return self._guard(emergency, preapproved)

    def _guard(self, emergency: bool, preapproved: bool) -> bool:
        started = time.monotonic()
        now = datetime.now(UTC)
        decision = guard_decision(self.env.window.to_window(), self.env.emergency, now, emergency=emergency,
                                  preapproved=preapproved)
        self.logger.info("window guard: %s (%s)", decision.action, decision.reason)
        if decision.action == "skip":
            self.report.add("guard", "window", "skipped", detail=decision.reason, seconds=time.monotonic() - started)
            self.report.outcome = f"skipped: {decision.reason}"
            self.notify(f"not run: {decision.reason}", "warning")
            return False
        if decision.action == "ask_approval":
            approval = self._ask_approval(decision.reason)
            if approval is None or not approval.approve:
                return False
            self._record_override(approval.approver, approval.reason)
        elif decision.action == "notify_and_proceed":
            self._record_override("policy", decision.reason)
            self.notify(decision.reason, "warning")
        self.override = decision.override
        self.report.add("guard", "window", "done", detail=decision.reason, seconds=time.monotonic() - started)
        if self.disruptive and not self._take_slot():
            return False
        if self.env.monitoring is not None:  # the lock lives in the monitoring store
            self._locked = maintenance_lock([h.name for h in self.env.hosts], run_key(), self.name, self.env.window.duration)
        return True

    def _take_slot(self) -> bool:
        """Hold the environment's slot to the end of the run, waiting for it until the window's cutoff (an
        override or an always-open window: `max_slot_wait`); False (the run ends Skipped) when it stayed taken."""
        started, name = time.monotonic(), slot_name(self.environment)
        if holds(name):
            self.report.add("guard", "slot", "done", detail=f"{name}: inside the caller's slot")
            return True
        window, longest = self.env.window.to_window(), self.env.max_slot_wait
        wait = longest if self.override else wait_bound(window, datetime.now(UTC), longest)
        self.logger.info("waiting up to %s for %s", wait, name)
        if self._scope.enter_context(hold_slot(self.environment, wait)):
            waited = time.monotonic() - started
            after = f" after waiting {duration(waited)}" if waited >= 1 else ""
            self.report.add("guard", "slot", "done", detail=f"{name}: held{after}", seconds=waited)
            return True
        until = "the longest wait" if window.always or self.override else "the window's cutoff"
        reason = (f"another disruptive routine held {name} until {until} (waited {duration(wait)}); "
                  "nothing was touched")
        self.report.add("guard", "slot", "skipped", detail=reason, seconds=time.monotonic() - started)
        self.report.outcome = f"skipped: {reason}"
        self.logger.warning("not run: %s", reason)
        self.notify(f"not run: {reason}", "warning")
        return False

    def disruptive_slot(self, wait: timedelta) -> AbstractContextManager[bool]:
        """The environment's slot for a disruptive action of a routine that is not disruptive itself (the health
        check's cache clear): `with r.disruptive_slot(timedelta(seconds=20)) as held: if held: ...` — held is
        False when a disruptive routine kept it for all of `wait` (a note in the report says so)."""
        return self._noted_slot(wait)

    @contextmanager
    def _noted_slot(self, wait: timedelta) -> Iterator[bool]:
        with hold_slot(self.environment, wait) as held:
            if not held:
                note = f"{slot_name(self.environment)} busy for {duration(wait)}: a disruptive routine is running"
                self.report.notes.append(note)
                self.logger.warning("%s", note)
            yield held

    def _ask_approval(self, reason: str) -> Approval | None:
        self.notify(f"{reason}: waiting for approval (the Prefect UI, or Slack's buttons)", "warning")
        asked = ask(self, "emergency", Approval, key="emergency-approval", what=f"run outside the window ({reason})",
                    timeout=self.env.approval_timeout, summary=f"{reason}. Approve to let this run go ahead now.")
        if asked is None:
            self.report.add("guard", "approval", "skipped", detail="no approval before the timeout")
            self.report.outcome = "skipped: emergency approval timed out; nothing was touched"
            self.notify("emergency approval timed out; nothing was touched", "warning")
            return None
        approval, verdict = asked
        if not approval.approve:
            self.report.add("guard", "approval", "skipped", detail=f"refused by {verdict.approver}: {approval.reason}")
            self.report.outcome = f"skipped: refused by {verdict.approver}"
            self.notify(f"emergency run refused by {verdict.approver}: {approval.reason}", "info")
        return approval.model_copy(update={"approver": verdict.approver})

    def _record_override(self, who: str, why: str) -> None:
        when = datetime.now(UTC).isoformat(timespec="seconds")
        note = f"Override outside the maintenance window — approved by **{who}** at {when}: {why}"
        self.report.notes.append(note)
        self.report.add("guard", "approval", "done", detail=f"{who}: {why}")
        publish_override(self.report, who, why, when)
        self.logger.warning("override recorded: %s at %s: %s", who, when, why)

    def approve_items(self, items: dict[str, str], kind: ApprovalKind, valid: set[str] | None = None) -> list[str]:
        """Ask once, in the Prefect UI (and Slack), which of `items` (id → description) may go ahead, of someone on
        the `kind` approver list; `valid`: the ids an answer may name (default: the item ids). An unanswered request
        approves nothing."""
        if not items:
            return []
        listing = "\n".join(f"- `{item}`: {text}" for item, text in sorted(items.items()))
        self.notify(f"{len(items)} item(s) need approval in the Prefect UI", "warning")
        description = (f"## {self.name} on {self.environment}: approve items\n\n{listing}\n\nList the ids you approve "
                       "(an id approves any version; `id=version` only that one).")
        asked = ask(self, kind, ItemApproval.with_initial_data(description=description, approver="", approved=[]),
                    key="item-approval", what=f"{len(items)} item(s): {', '.join(sorted(items))}",
                    timeout=self.env.approval_timeout, summary=f"{listing}\n\nApprove approves every item listed.",
                    items=sorted(items))
        if asked is None:
            self.report.notes.append("no approval before the timeout: every item that needs one is held back")
            return []
        answer, verdict = asked
        self.approver = verdict.approver
        accepted = set(items) if valid is None else valid
        unknown = sorted(set(answer.approved) - accepted)
        approved = sorted(set(answer.approved) & accepted)
        self.report.notes.append(f"approved by **{verdict.approver}**: {', '.join(approved) or 'nothing'}"
                                 + (f" (ignored unknown ids: {', '.join(unknown)})" if unknown else ""))
        if approved:
            self._record_override(verdict.approver, f"approved {', '.join(approved)} {answer.reason}".strip())
        return approved

    def notify(self, text: str, severity: Severity = "info") -> None:
        """One message to the team about this run (environment, routine and run link added)."""
        notify(self.name, text, severity)

    def skipped(self) -> State:
        """The final state of a run that touched nothing (shown as 'Skipped' in the UI)."""
        return Completed(name="Skipped", message=self.report.outcome)

    # -- hosts --------------------------------------------------------------------------------------
    def select_hosts(self, names: list[str] | None = None, role: str | None = None) -> list[str]:
        """Host names of the environment (a subset when `names`), optionally with a role."""
        assert self.res is not None
        return list(self.res.hosts.select(names, role=role))

    def fan_out(self, step: Task[..., Any] | Callable[..., Any], hosts: list[str], /, label: str | None = None,
                **kwargs: Any) -> FanOutResult[Any]:
        """Run `step(host, **kwargs)` on every host with the environment's concurrency and error
        budget; record each host's outcome; raise one combined error when any host failed."""
        progress = Progress.start(self.name, self.environment, len(hosts)) if len(hosts) >= 10 else None

        def one(host: str) -> Any:
            try:
                return step(host, **kwargs)
            finally:
                if progress:
                    progress.advance()

        result = fan_out({h: h for h in hosts}, one, max_concurrency=self.env.max_concurrency,
                         max_errors=self.env.max_errors)
        if progress:
            progress.finish()
        return self.record(label or _step_name(step), result).raise_on_failure()

    def group(self, step: Task[..., FanOutResult[Any]] | Callable[..., FanOutResult[Any]], hosts: Collection[str], /,
              label: str | None = None, **kwargs: Any) -> FanOutResult[Any]:
        """Run a stage task that acts on all `hosts` at once (`step(hosts, **kwargs)`, one task run; `hosts`:
        names, or a mapping keyed by them); record each host's outcome, failed or not; re-raise its FanOutError."""
        label = label or _step_name(step)
        try:
            # opaque: plain data, no futures inside; spares Prefect's walk through every host's items
            result = step(opaque(hosts), **{k: opaque(v) for k, v in kwargs.items()})
        except FanOutError as exc:
            self.record(label, exc.result)
            raise
        return self.record(label, result)

    def record(self, label: str, result: FanOutResult[Any]) -> FanOutResult[Any]:
        """One report row per host of a fan-out's result (in the current stage), and one log line."""
        stage = current_stage()
        if stage is None:
            raise UpkeepError(f"{label}: a step's outcome is recorded in a stage: call it inside `with r.stage(...)`")
        status: dict[Status, StepStatus] = {Status.SUCCEEDED: "done", Status.FAILED: "failed", Status.SKIPPED: "skipped"}
        for host, outcome in result.outcomes.items():
            detail = outcome.message or _describe(outcome.value)
            if outcome.steps:  # the time of each step the host went through
                detail = f"{detail} (took: {step_times(outcome.steps)})" if detail else f"took: {step_times(outcome.steps)}"
            self.report.add(stage, label, status[outcome.status], host=host, detail=detail,
                            seconds=outcome.duration if outcome.started else None)
        self.logger.info("%s %s: %s", stage, label, result.summary())
        return result

    # -- stages -----------------------------------------------------------------------------------
    @contextmanager
    def stage(self, name: Stage, *, disruptive: bool = False, rollback: Callable[[], Any] | None = None) -> Iterator[StageRecord]:
        """Run a stage (the current stage of every task called inside); a disruptive one re-checks
        the window first; rollback runs on failure."""
        if disruptive and self.disruptive:
            allowed, why = step_allowed(self.env.window.to_window(), datetime.now(UTC), override=self.override)
            if not allowed:
                skipped = StageRecord(name)
                skipped.finish("skipped", why)
                self.report.stages.append(skipped)
                self.report.outcome = f"stopped before {name}: {why}"
                raise WindowClosed(why)
        record = StageRecord(name)
        self.report.stages.append(record)
        self.logger.info("stage %s: start", name)
        try:
            with in_stage(name):
                yield record
        except BaseException as exc:
            record.finish("failed", str(exc))
            if rollback is not None:
                self._rollback(rollback)
            raise
        record.finish("done")

    def _rollback(self, rollback: Callable[[], Any]) -> None:
        record = StageRecord("rollback")
        self.report.stages.append(record)
        try:
            with in_stage("rollback"):
                rollback()
            record.finish("done")
        except Exception as exc:  # noqa: BLE001 - reported; the original failure is re-raised
            record.finish("failed", str(exc))
            self.logger.error("rollback failed: %s", exc)


def _step_name(step: Any) -> str:
    """A task's name (`verify-service`), or a function's."""
    return str(getattr(step, "name", None) or getattr(step, "__name__", "step"))


def _describe(value: Any) -> str:
    """A short sentence for a step's result in the report: the value's own `describe()` or `detail`,
    never its repr (a value without either is named by its fields, unquoted)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(_describe(v) for v in value)[:200] if value else "nothing to do"
    if callable(getattr(value, "describe", None)):
        return str(value.describe())[:200]
    if isinstance(getattr(value, "detail", None), str):
        return str(value.detail)[:200]
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return "; ".join(f"{k}: " + _versions(v) for k, v in value.items())[:200]  # manager → {package: version}
    if isinstance(value, (str, int, float)):
        return str(value)[:200]
    fields = value.model_dump() if hasattr(value, "model_dump") else vars(value) if hasattr(value, "__dict__") else {}
    return ", ".join(f"{k} {v}" for k, v in fields.items() if isinstance(v, (str, int, float)))[:200]


def _versions(packages: dict[str, Any]) -> str:
    """'event-manager 2.4.0, openssl 3.0.15-1' (the first three, then how many more)."""
    shown = ", ".join(f"{name} {version}" for name, version in list(packages.items())[:3])
    return shown + (f" and {len(packages) - 3} more" if len(packages) > 3 else "")
