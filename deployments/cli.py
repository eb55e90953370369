"""The `upkeep` command: check the inventory, run the sandbox, serve, plan and inspect schedules."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import yaml

from upkeep.config.loader import DEFAULT_PATH, ENV_VAR, config_path, load_inventory
from upkeep.config.models import Inventory
from upkeep.errors import ConfigError, UpkeepError


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def cmd_check_config(args: argparse.Namespace) -> int:
    from deployments.specs import PREFECT_YAML, display_path, schedule_differences, write_command

    path = args.file or args.config
    try:
        inv = load_inventory(path)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    for name, env in inv.environments.items():
        window = "anytime" if env.window.always else f"{env.window.cron} {env.window.timezone} for {env.window.duration}"
        out(f"{name}: {len(env.hosts)} host(s), services {', '.join(env.services) or '-'}, window {window}, "
            f"emergency {env.emergency}")
    out("inventory OK")
    target = Path(args.prefect_yaml) if args.prefect_yaml else PREFECT_YAML
    if not target.exists() and not args.prefect_yaml:
        out(f"no {display_path(target)}: schedules not compared")
        return 0
    try:
        data = yaml.safe_load(target.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        sys.stderr.write(f"{target}: cannot read it as a prefect.yaml ({exc}); name one with --prefect-yaml FILE\n")
        return 1
    differences = schedule_differences(inv, data)
    if not differences:
        out(f"{display_path(target)}: schedules agree with the inventory's windows")
        return 0
    fix = write_command(config_path(path)) + ("" if target.resolve() == PREFECT_YAML else f" --output {target}")
    level = "error" if args.strict else "warning (exit 0; --strict makes it an error)"
    sys.stderr.write(f"{level}: {display_path(target)} disagrees with the inventory's windows "
                     f"({len(differences)} difference(s)):\n")
    for line in differences:
        sys.stderr.write(f"  {line}\n")
    sys.stderr.write(f"fix: `{fix}` (renders it from this inventory)\n")
    return 1 if args.strict else 0


def _inventory(config: str | None) -> tuple[Inventory, str | None]:
    """The inventory (--config, $UPKEEP_CONFIG or ./upkeep.yaml); the example one, and a note saying so, when there is none."""
    from deployments.specs import EXAMPLE_INVENTORY, display_path, example_inventory

    if config or os.environ.get(ENV_VAR) or DEFAULT_PATH.exists():
        return load_inventory(config), None  # one named but unreadable is still an error
    return example_inventory(), (f"no inventory (./{DEFAULT_PATH}, ${ENV_VAR} or --config): showing the guide's "
                                 f"default windows, from {display_path(EXAMPLE_INVENTORY)}")


def cmd_windows(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from upkeep.windows import describe_decision, next_windows

    inv, note = _inventory(args.config)
    if note:
        out(note)
    now = datetime.now(UTC)
    for name, env in inv.environments.items():
        window = env.window.to_window()
        out(f"{name}: {describe_decision(window, now).reason}")
        if window.always:
            continue
        tz = ZoneInfo(window.timezone)
        for occ in next_windows(window, now, args.count):
            out(f"  {occ.start:%a %Y-%m-%d %H:%M} – {occ.end:%H:%M} UTC   "
                f"({occ.start.astimezone(tz):%a %H:%M} – {occ.end.astimezone(tz):%H:%M} {window.timezone})")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from deployments.specs import deployment_specs, next_runs

    inv, note = _inventory(args.config)
    if note:
        out(note)
    now = datetime.now(UTC)
    for spec in deployment_specs(inv):
        if spec.cron is None:
            out(f"{spec.name:34} on demand (run by a composite, or from the UI)")
            continue
        runs = ", ".join(f"{t:%a %m-%d %H:%M}" for t in next_runs(spec, now, args.count))
        out(f"{spec.name:34} {spec.cron:18} {spec.timezone:5} next (UTC): {runs}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from deployments.plan import plan_lines

    for line in plan_lines(load_inventory(args.config), args.routine, args.env, emergency=args.emergency):
        out(line)
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from upkeep.notify import Message, Severity, SlackNotifier
    from upkeep.resources import Resources

    with Resources.from_config(args.config, args.env) as res:
        notifier = res.notifier
        if not isinstance(notifier, SlackNotifier):
            out(f"{args.env}: no Slack configured (slack, or environments.{args.env}.slack): notices go to the run logs only")
            return 1
        for channel, kinds in notifier.routes.destinations().items():
            escalation = kinds == ["escalations"]
            text = (f"test notice from `upkeep alerts test`: {channel} receives "
                    f"{' and '.join(kinds)} notices of {args.env}. Nothing is wrong.")
            order: list[Severity] = ["critical", "warning", "resolved", "info"]  # the most severe it receives
            severity = "critical" if escalation else next(s for s in order if s in kinds)
            notifier.send(Message(args.env, "alerts", text, severity, escalate=escalation))
            out(f"sent to {channel} ({', '.join(kinds)})")
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    from deployments.specs import (
        EXAMPLE_INVENTORY,
        PREFECT_YAML,
        README,
        display_path,
        render_prefect_yaml,
        render_readme,
        write_command,
    )

    config = Path(args.config) if args.config else EXAMPLE_INVENTORY  # not $UPKEEP_CONFIG: prefect.yaml is a file of the repo
    text = render_prefect_yaml(load_inventory(config), config)
    target = Path(args.output) if args.output else PREFECT_YAML
    readme = README.read_text() if target.resolve() == PREFECT_YAML and README.exists() else None
    if args.write:
        try:
            target.write_text(text)
            if readme is not None:  # the repository's own: its README's routine tables too
                README.write_text(render_readme(readme))
        except OSError as exc:
            sys.stderr.write(f"{target}: cannot write it ({exc.strerror}); name another with --output FILE\n")
            return 1
        out(f"wrote {target} from the windows of {display_path(config)}" + (" and README.md's routine tables"
                                                                              if readme is not None else ""))
        return 0
    if readme is not None and render_readme(readme) != readme:
        sys.stderr.write("README.md's routine tables are out of date: run `upkeep deployments --write`\n")
        return 1
    if not target.exists() or target.read_text() != text:
        fix = write_command(config) + ("" if target.resolve() == PREFECT_YAML else f" --output {target}")
        state = "missing" if not target.exists() else "out of date"
        sys.stderr.write(f"{display_path(target)} is {state} for the windows of {display_path(config)}: run `{fix}`\n")
        return 1
    out(f"{display_path(target)} agrees with deployments/specs.py and the windows of {display_path(config)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from deployments.serve import serve_all

    if args.config:
        os.environ["UPKEEP_CONFIG"] = str(Path(args.config).resolve())
    serve_all(limit=args.limit, paused=args.paused)
    return 0


def _stop_with_parent(stop: Callable[[], None], parent: int, what: str) -> None:
    """Call `stop` once `parent` is no longer this process's parent: it died (killed, or stopped before its clean-up
    ran) and this process was handed to init. Checked every 2 s; the parent's PID cannot be reused meanwhile."""
    while os.getppid() == parent:
        time.sleep(2.0)
    logging.getLogger(f"upkeep.{what}").warning("the process that started it (pid %d) is gone: stopping", parent)
    stop()


def _watch_parent(stop: Callable[[], None], parent: int | None, what: str) -> None:
    if parent is not None:  # started by `upkeep serve` (or the sandbox) in a session of its own: nothing else stops it
        threading.Thread(target=_stop_with_parent, args=(stop, parent, what), name=f"{what}-parent", daemon=True).start()


def cmd_approvals(args: argparse.Namespace) -> int:
    import signal

    from deployments.approvals import serve_approvals

    logging.basicConfig(level=logging.INFO, format="%(asctime)s approvals %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _watch_parent(stop.set, args.parent, "approvals")
    try:
        serve_approvals(args.config, stop)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_probe_agent(args: argparse.Namespace) -> int:
    import signal

    from upkeep.hosts.agent import ProbeAgent

    logging.basicConfig(level=logging.INFO, format="%(asctime)s probe-agent %(levelname)s %(message)s")
    agent = ProbeAgent(args.config, Path(args.socket) if args.socket else None, idle_close=args.idle_close)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    _watch_parent(agent.shutdown, args.parent, "probe_agent")
    try:
        agent.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from sandbox.stack import Stack, StackSettings, default_base, stop_from_state

    base = Path(args.base).resolve() if args.base else default_base()
    if args.action == "fail":
        from sandbox.stack import fail_next

        out(fail_next(base, args.host, args.step, args.times))
        return 0
    if args.action == "down":
        pids = stop_from_state(base)
        out(f"stopped {len(pids)} process(es)" if pids else "no sandbox running there")
        return 0
    if (base / "state.json").exists():
        sys.stderr.write(f"a sandbox is already running from {base}: `upkeep sandbox down --base {base}` first\n")
        return 1
    stack = Stack(StackSettings(base, ssh_hosts=args.hosts, prefect_port=args.prefect_port, engine=args.engine,
                                workers=args.workers, paused=args.paused)).up()
    out(f"sandbox up: inventory {stack.inventory_path}; Prefect UI http://127.0.0.1:{stack.ports['prefect']}")
    if args.engine == "postgres":
        out(f"Prefect's database: PostgreSQL on 127.0.0.1:{stack.ports['postgres']}")
    if args.workers:
        out(f"{args.workers} process worker(s) on pool upkeep-process run prefect.yaml's deployments "
            f"(logs: {stack.base / 'logs'}/worker-N.log)")
    kept = stack.base / "prefect-auth"
    if stack.authenticated:  # the string itself is never printed: it stays in its 0600 file (or your environment)
        out("the Prefect server asks for its auth string (the UI's login page too): "
            + (f"it is in {kept}" if kept.exists() else "the one in $PREFECT_API_AUTH_STRING"))
    out("environment for upkeep commands:")
    for key, value in {**stack.prefect_env(), **stack.secrets(), "UPKEEP_CONFIG": str(stack.inventory_path)}.items():
        if key == "PREFECT_API_AUTH_STRING":
            value = f'"$(cat {shlex.quote(str(kept))})"' if kept.exists() else '"$PREFECT_API_AUTH_STRING"'
        else:
            value = shlex.quote(value)
        out(f"export {key}={value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from deployments.demo import run_demo
    from sandbox.stack import default_base

    return run_demo(Path(args.base).resolve() if args.base else default_base(), prefect_port=args.prefect_port,
                    hosts=args.hosts, once=args.once)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="upkeep", description="Maintenance routines of the Event Manager, on Prefect.")
    p.add_argument("--config", help="inventory file (default: $UPKEEP_CONFIG or ./upkeep.yaml)")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser(
        "check-config", help="validate an inventory file; compare its windows with prefect.yaml's schedules",
        description="Validate an inventory (FILE, else --config, $UPKEEP_CONFIG or ./upkeep.yaml), then compare the "
                    "schedules its windows imply with prefect.yaml's (one line per differing deployment, and the fix). "
                    "Exit 1 when the inventory is invalid; a schedule difference is a warning (exit 0) unless --strict: "
                    "it matters to `prefect deploy` from prefect.yaml, while `upkeep serve` schedules from the inventory "
                    "itself.")
    c.add_argument("file", nargs="?")
    c.add_argument("--prefect-yaml", metavar="FILE", help="the prefect.yaml to compare with (default: the repository's; "
                                                          "when that is absent, schedules are not compared)")
    c.add_argument("--strict", action="store_true", help="exit 1 when prefect.yaml's schedules differ from the windows")
    c.set_defaults(fn=cmd_check_config)
    c = sub.add_parser("windows", help="the next maintenance windows per environment")
    c.add_argument("-n", "--count", type=int, default=3)
    c.set_defaults(fn=cmd_windows)
    c = sub.add_parser("schedule", help="the next runs of every deployment")
    c.add_argument("-n", "--count", type=int, default=2)
    c.set_defaults(fn=cmd_schedule)
    c = sub.add_parser("plan", help="what a routine would do now (dry run, touches nothing)")
    c.add_argument("routine")
    c.add_argument("--env", required=True)
    c.add_argument("--emergency", action="store_true")
    c.set_defaults(fn=cmd_plan)
    c = sub.add_parser("alerts", help="alerting: `alerts test --env E` sends a test notice to every route of E",
                       description="Send a test notice through the real path (the inventory's Slack, its token from "
                                   "the environment or a Secret block, each route: per severity and escalation).")
    c.add_argument("action", choices=["test"])
    c.add_argument("--env", required=True)
    c.set_defaults(fn=cmd_alerts)
    c = sub.add_parser(
        "deployments", help="check (or --write) prefect.yaml against deployments/specs.py and an inventory's windows",
        description="Render prefect.yaml from deployments/specs.py and an inventory's environments and windows: --config "
                    "FILE (a site's own inventory), else examples/upkeep.yaml (the guide's windows: the checked-in "
                    "prefect.yaml); $UPKEEP_CONFIG is not read here. Without --write, exit 1 unless the file is "
                    "up to date.")
    c.add_argument("--write", action="store_true", help="write the file (default: only check it)")
    c.add_argument("--config", default=argparse.SUPPRESS, help="the inventory (default: examples/upkeep.yaml)")
    c.add_argument("--output", "--prefect-yaml", dest="output", metavar="FILE",
                   help="the prefect.yaml to write or check (default: prefect.yaml at the repository's root)")
    c.set_defaults(fn=cmd_deployments)
    c = sub.add_parser("serve", help="serve every deployment from this process")
    c.add_argument("--limit", type=int, default=None, help="at most this many runs at once")
    c.add_argument("--paused", action="store_true", help="register schedules paused: runs start only when triggered")
    c.set_defaults(fn=cmd_serve)
    c = sub.add_parser("probe-agent", help="keep SSH connections for the health checks (`upkeep serve` starts it)",
                       description="Hold one SSH connection per host of the environments whose monitoring.probe_agent names "
                                   "this socket and answer their health checks' probes over it (upkeep/hosts/agent.py). "
                                   "Re-reads the inventory when it changes; stops on SIGTERM or Ctrl-C.")
    c.add_argument("--socket", help="the socket to listen on (default: the one monitoring.probe_agent names)")
    c.add_argument("--idle-close", type=float, default=600.0, metavar="SECONDS",
                   help="close a connection not used for this long (default: 600)")
    c.add_argument("--parent", type=int, default=None, metavar="PID",
                   help="stop when process PID (the `upkeep serve` that started it) is gone")
    c.set_defaults(fn=cmd_probe_agent)
    c = sub.add_parser("approvals", help="relay Slack's Approve / Refuse clicks to the waiting runs (Socket Mode)",
                       description="Hold the Slack Socket Mode connection of each app the inventory's "
                                   "environments.<env>.approvals.app_token names, and resume the run a clicked "
                                   "approval request names, with the clicker's Slack user id, signed with "
                                   "approvals.key (deployments/approvals.py). One per app: `upkeep serve` starts it.")
    c.add_argument("--parent", type=int, default=None, metavar="PID",
                   help="stop when process PID (the `upkeep serve` that started it) is gone")
    c.set_defaults(fn=cmd_approvals)
    for name, fn, text in (("sandbox", cmd_sandbox, "start/stop the local stack of real servers"),
                           ("demo", cmd_demo, "sandbox + Prefect UI + deployments + one routine run")):
        c = sub.add_parser(name, help=text)
        if name == "sandbox":
            c.add_argument("action", choices=["up", "down", "fail"],
                           help="fail: make a step of the stand-in fail on one host (a failed run to retry)")
            c.add_argument("--host", default="host2", help="fail: which sandbox host (default: host2)")
            c.add_argument("--step", default="clear-cache", choices=["clear-cache", "restart", "start", "stop"],
                           help="fail: which service action (default: clear-cache)")
            c.add_argument("--times", type=int, default=50, help="fail: how many calls fail (0: fixed again)")
            c.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite",
                           help="up: Prefect's database (postgres: Debian's PostgreSQL, started here on loopback)")
            c.add_argument("--workers", type=int, default=0, metavar="N",
                           help="up: N process workers running prefect.yaml's deployments (`prefect deploy --all`)")
            c.add_argument("--paused", action="store_true",
                           help="up: with --workers, register the deployments paused (only triggered runs execute)")
        else:
            c.add_argument("--once", action="store_true", help="stop after the first runs (for CI)")
        c.add_argument("--base", help="the stack's directory (default: .sandbox here, or a directory of this "
                                      "checkout's under /var/tmp when the test hosts' user cannot enter the checkout)")
        c.add_argument("--hosts", type=int, default=3)
        c.add_argument("--prefect-port", type=int, default=4200)
        c.set_defaults(fn=fn)
    c = sub.add_parser("watchdog",
                       help="create or update the watchdog automations (missed health checks, late runs, crashed runs)",
                       description="Create or update, on the Prefect server of PREFECT_API_URL, each environment's watchdog: "
                                   "Prefect automations that notify Slack when no health check has completed for "
                                   "monitoring.watchdog.health_check_within, or a scheduled run is Late (UI: Automations). "
                                   "`upkeep serve` does this itself; run it after `prefect deploy` with workers. "
                                   "Also: a run with no heartbeat for monitoring.watchdog.crashed_after (its process "
                                   "died) is marked Crashed.")
    c.add_argument("--paused", action="store_true",
                   help="the deployments' schedules are paused: create the schedule watches disabled (crashed runs "
                        "are still marked)")
    c.set_defaults(fn=cmd_watchdog)
    c = sub.add_parser("results-block", help="save each environment's S3 result storage block (for workers)",
                       description="Save, on the Prefect server of PREFECT_API_URL, one result storage block per "
                                   "environment with S3 (`upkeep-results-<env>`: the run records' bucket, prefix "
                                   "<records prefix><env>/results/, the inventory's endpoint and secret references — "
                                   "never the keys), which prefect.yaml's deployments name: a run retried on another "
                                   "worker finds its completed steps' results. Run it after `prefect deploy --all`.")
    c.set_defaults(fn=cmd_results_block)
    return p


def cmd_results_block(args: argparse.Namespace) -> int:
    from deployments.blocks import save_block
    from upkeep.blocks import S3ResultStorage, block_name

    inventory = load_inventory(args.config)
    saved = 0
    for env in inventory.environments.values():
        where = env.s3.records_location() if env.s3 is not None else None
        if env.s3 is None or where is None:
            out(f"{env.name}: no s3 configured: its runs keep results on the machine that ran them")
            continue
        save_block(S3ResultStorage(bucket=where.bucket, prefix=f"{where.prefix}{env.name}/results/",
                                   endpoint_url=env.s3.endpoint_url, region=env.s3.region,
                                   access_key_id=env.s3.access_key_id, secret_access_key=env.s3.secret_access_key),
                   block_name(env.name))
        out(f"{env.name}: results in s3://{where.bucket}/{where.prefix}{env.name}/results/ (block {block_name(env.name)})")
        saved += 1
    return 0 if saved else 1


def cmd_watchdog(args: argparse.Namespace) -> int:
    from deployments.watchdog import ensure_watchdog

    for line in ensure_watchdog(load_inventory(args.config), enabled=not args.paused):
        out(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except UpkeepError as exc:
        sys.stderr.write(f"upkeep: {exc}\n")
        return 1
    except BrokenPipeError:  # `upkeep schedule | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
