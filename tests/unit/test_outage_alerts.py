"""Outage alerts, service levels and I/O rates, with synthetic samples (pure, no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from upkeep.config.models import AlertRule, Thresholds, outage_rules
from upkeep.hosts.procfs import parse_diskstats, parse_io, parse_net_dev
from upkeep.humanize import metric
from upkeep.monitoring.rules import AlertState, evaluate_samples, subject_of, unsent
from upkeep.monitoring.samples import Sample, frame, io_rates, level_breaches, level_samples, service_levels, split_counters
from upkeep.notify import Message, Routes

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
RULES = outage_rules(Thresholds())


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def run_checks(series: dict[tuple[str, str, str], list[float]], rules: list[AlertRule] = RULES,
               locked: dict[str, str] | None = None) -> list[tuple[int, str, str, str]]:
    """One health check a minute; `series`: (host, target, metric) → a value per minute. Returns
    (minute, rule, subject, kind) of every notice, states kept between checks as the store keeps them."""
    states: dict[tuple[str, str], AlertState] = {}
    notices = []
    length = max(len(v) for v in series.values())
    for n in range(length):
        samples = [Sample(minute(n), "production", host, target, m, values[n])
                   for (host, target, m), values in series.items() if n < len(values)]
        changed, events, _ = evaluate_samples(rules, states, samples, locked or {})
        states.update({(s.rule, s.subject): s for s in changed})
        notices += [(n, e.rule.name, e.subject, e.kind) for e in events]
    return notices


def test_a_down_service_pages_once_escalates_once_and_resolves_once() -> None:
    down = [1.0] * 2 + [0.0] * 40 + [1.0] * 3  # down from minute 2 to 41
    notices = run_checks({("host1", "api", "up"): down, ("host2", "api", "up"): [1.0] * 45})
    assert notices == [(3, "service_down", "host1/api", "fire"),  # the second failed check in a row
                       (18, "service_down", "host1/api", "escalate"),  # 15 minutes after it fired
                       (42, "service_down", "host1/api", "resolve")]


def test_a_down_service_repeats_after_the_repeat_interval_only() -> None:
    notices = run_checks({("host1", "worker", "up"): [0.0] * 130})
    kinds = [(n, kind) for n, _, _, kind in notices]
    assert kinds == [(1, "fire"), (16, "escalate"), (76, "repeat")]  # escalation counts as a notice; then hourly


def test_one_failed_check_is_not_an_outage() -> None:
    assert run_checks({("host1", "api", "up"): [1, 0, 1, 0, 1, 1]}) == []


def test_database_and_host_outages_have_their_own_rules_and_subjects() -> None:
    notices = run_checks({("database", "database", "up"): [0.0, 0.0, 1.0],
                          ("host3", "host", "up"): [1.0, 0.0, 0.0, 0.0, 1.0]})
    assert (1, "database_unreachable", "database", "fire") in notices
    assert (2, "database_unreachable", "database", "resolve") in notices
    assert (2, "host_unreachable", "host3", "fire") in notices and (4, "host_unreachable", "host3", "resolve") in notices
    assert not [x for x in notices if x[1] == "service_down"]


def test_slow_service_and_service_levels_fire_on_their_thresholds() -> None:
    slow = [350.0] * 7
    notices = run_checks({("host1", "api", "response_time_ms"): slow, ("", "api", "availability"): [0.9995, 0.998],
                          ("", "api", "error_rate"): [0.005, 0.02]})
    assert (5, "service_slow", "host1/api", "fire") in notices  # held 5 minutes over 200 ms
    assert (1, "availability_below_slo", "api", "fire") in notices  # 99.8 % < 99.9 % over the period
    assert (1, "error_rate_high", "api", "fire") in notices  # 2 % > 1 %


def test_a_host_under_maintenance_is_held_back_not_lost() -> None:
    states: dict[tuple[str, str], AlertState] = {}
    samples = [Sample(minute(n), "production", "host1", "api", "up", 0.0) for n in range(2)]
    for s in samples:
        changed, events, held = evaluate_samples(RULES, states, [s], {"host1": "system-update run 42"})
        states.update({(c.rule, c.subject): c for c in changed})
    assert events == [] and len(held) == 1 and "under maintenance (system-update run 42)" in held[0]


def test_notice_texts_say_what_is_down_since_when() -> None:
    rules = [r for r in RULES if r.name == "service_down"]
    states: dict[tuple[str, str], AlertState] = {}
    texts = []
    for n, value in enumerate([0.0, 0.0, 0.0, 1.0]):
        changed, events, _ = evaluate_samples(rules, states, [Sample(minute(n), "p", "host1", "api", "up", value)], {})
        states.update({(c.rule, c.subject): c for c in changed})
        texts += [(e.text, e.severity) for e in events]
    assert texts == [("service_down: host1/api down since 12:00 UTC (1 min)", "critical"),
                     ("RESOLVED service_down: host1/api is back (was down since 12:00 UTC, 3 min)", "resolved")]


def test_a_rule_watches_its_target_only() -> None:
    rule = AlertRule(name="api_slow", metric="response_time_ms", target="api", threshold=100, duration=timedelta(0))
    assert rule.matches("response_time_ms", "api") and not rule.matches("response_time_ms", "worker")
    anyservice = outage_rules(Thresholds())[0]
    assert anyservice.matches("up", "worker")
    assert not anyservice.matches("up", "host") and not anyservice.matches("up", "database")
    assert subject_of("host1", "api") == "host1/api" and subject_of("host1", "host") == "host1"
    assert subject_of("database", "database") == "database" and subject_of("", "api") == "api"


def test_service_levels_compute_availability_error_rate_and_percentiles() -> None:
    rows = []
    for n in range(100):
        rows.append(Sample(minute(n), "p", "host1", "api", "up", 0.0 if n < 2 else 1.0))
        rows.append(Sample(minute(n), "p", "host1", "api", "response_time_ms", 500.0 if n % 50 == 3 else float(n)))
    levels = service_levels(frame(rows), response_time_ms=200)
    [api] = levels.to_dict("records")
    assert api["probes"] == 100 and api["availability"] == pytest.approx(0.98)
    assert api["error_rate"] == pytest.approx(0.04)  # 2 probes failed + 2 answered slower than 200 ms, of 100
    assert api["p95_ms"] == pytest.approx(pd.Series([500.0 if n % 50 == 3 else float(n) for n in range(100)]).quantile(0.95))
    assert api["p99_ms"] > api["p95_ms"]
    samples = level_samples(levels, T0, "p")
    assert {s.metric for s in samples} == {"availability", "error_rate", "p95_ms", "p99_ms"}
    assert all(s.host == "" for s in samples)
    lines = level_breaches(levels.to_dict("records"), availability=0.999, error_rate=0.01)
    assert lines == ["api: availability 98.000% < target 99.9%", "api: error rate 4.00% > target 1%"]
    assert metric("availability", 0.9995) == "99.95 %" and metric("error_rate", 0.01) == "1 %"


DISKSTATS = """\
   8       0 sda 1000 0 2048 0 500 0 4096 0 0 0 0
   8       1 sda1 900 0 2000 0 400 0 4000 0 0 0 0
 253       0 dm-0 800 0 1000 0 300 0 3000 0 0 0 0
   7       0 loop0 10 0 64 0 0 0 0 0 0 0 0
 259       0 nvme0n1 100 0 100 0 100 0 100 0 0 0 0
"""
NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 999999      10    0    0    0     0          0         0   999999      10    0    0    0     0       0          0
  eth0: 1000        10    0    0    0     0          0         0     2000      20    0    0    0     0       0          0
  eth1: 500          5    0    0    0     0          0         0      250       5    0    0    0     0       0          0
"""


def test_io_counters_from_proc_count_whole_disks_and_real_interfaces() -> None:
    assert parse_diskstats(DISKSTATS, {"sda", "dm-0", "loop0", "nvme0n1"}) == ((2048 + 100) * 512, (4096 + 100) * 512)
    assert parse_net_dev(NET_DEV) == (1500, 2250)
    io = parse_io("sda\nnvme0n1\nloop0\n", DISKSTATS, NET_DEV)
    assert io.as_dict() == {"disk_read": 2148 * 512, "disk_write": 4196 * 512, "net_rx": 1500, "net_tx": 2250}


def test_io_rates_are_deltas_between_probes() -> None:
    before = {"host1": (T0, {"disk_read": 1000, "disk_write": 0, "net_rx": 10, "net_tx": 10}),
              "host2": (T0, {"disk_read": 9_000_000, "disk_write": 0, "net_rx": 0, "net_tx": 0}),
              "host3": (T0 - timedelta(hours=1), {"disk_read": 0, "disk_write": 0, "net_rx": 0, "net_tx": 0})}
    now = {"host1": (minute(1), {"disk_read": 61_000, "disk_write": 600, "net_rx": 6_010, "net_tx": 10}),
           "host2": (minute(1), {"disk_read": 1_000, "disk_write": 0, "net_rx": 0, "net_tx": 0}),  # rebooted
           "host3": (minute(1), {"disk_read": 60, "disk_write": 0, "net_rx": 0, "net_tx": 0}),  # too old a reading
           "host4": (minute(1), {"disk_read": 60, "disk_write": 0, "net_rx": 0, "net_tx": 0})}  # no earlier one
    rates = {(s.host, s.metric): s.value for s in io_rates(before, now, "p")}
    assert rates[("host1", "disk_read_bytes_per_s")] == 1000.0 and rates[("host1", "disk_write_bytes_per_s")] == 10.0
    assert rates[("host1", "net_rx_bytes_per_s")] == 100.0 and rates[("host1", "net_tx_bytes_per_s")] == 0.0
    assert ("host2", "disk_read_bytes_per_s") not in rates and ("host2", "net_rx_bytes_per_s") in rates
    assert not [h for h, _ in rates if h in ("host3", "host4")]
    probes, counters = split_counters([Sample(T0, "p", "h", "host", "disk_read_bytes_total", 5.0),
                                       Sample(T0, "p", "h", "host", "cpu_percent", 5.0)])
    assert [s.metric for s in probes] == ["cpu_percent"] and counters == {"h": (T0, {"disk_read": 5})}


def test_routes_send_by_severity_and_escalations_with_a_mention() -> None:
    routes = Routes("#ops", {"critical": "#oncall"}, escalation_channel="#bridge", mention="@here")
    assert routes.channel(Message("p", "health-check", "x", "warning")) == "#ops"
    assert routes.channel(Message("p", "health-check", "x", "critical")) == "#oncall"
    escalated = Message("p", "health-check", "service_down: host1/api still down", "critical", escalate=True)
    assert routes.channel(escalated) == "#bridge"
    assert escalated.render("@here").startswith("<!here> :rotating_light: *[p] health-check*:")
    assert routes.destinations() == {"#ops": ["info", "warning", "resolved"], "#oncall": ["critical"], "#bridge": ["escalations"]}


def test_a_failed_probe_counts_once_in_the_error_rate() -> None:
    rows = []
    for n in range(10):  # one probe in ten times out (up 0, ~5 s of latency); the others answer in 20 ms
        rows.append(Sample(minute(n), "p", "host1", "api", "up", 0.0 if n == 0 else 1.0))
        rows.append(Sample(minute(n), "p", "host1", "api", "response_time_ms", 5000.0 if n == 0 else 20.0))
    [api] = service_levels(frame(rows), response_time_ms=200).to_dict("records")
    assert api["availability"] == pytest.approx(0.9) and api["error_rate"] == pytest.approx(0.1)


def test_maintenance_holds_a_notice_back_until_the_lock_is_gone_and_a_recovery_is_always_told() -> None:
    rules = [r for r in RULES if r.name == "service_down"]
    states: dict[tuple[str, str], AlertState] = {}
    sent: list[tuple[int, str]] = []
    for n, (value, locked) in enumerate([(0.0, True), (0.0, True), (0.0, True), (0.0, False), (1.0, True)]):
        sample = Sample(minute(n), "p", "host1", "api", "up", value)
        changed, events, _ = evaluate_samples(rules, states, [sample], {"host1": "system-update run 7"} if locked else {})
        states.update({(c.rule, c.subject): c for c in changed})
        sent += [(n, e.kind) for e in events]
    assert sent == [(3, "fire"), (4, "resolve")]  # paged once the lock was gone; the recovery told despite a lock


def test_a_notice_that_could_not_be_sent_leaves_its_state_as_it_was() -> None:
    rules = [r for r in RULES if r.name == "service_down"]
    before = {("service_down", "host1/api"): AlertState("service_down", "host1/api", "pending", T0, None, 0.0)}
    changed, events, _ = evaluate_samples(rules, before, [Sample(minute(1), "p", "host1", "api", "up", 0.0)], {})
    assert [e.kind for e in events] == ["fire"] and changed[0].status == "firing"
    kept = unsent(changed, before, failed=events)
    assert kept == [before[("service_down", "host1/api")]]  # still pending: the next check fires (and sends) again
    assert unsent(changed, before, failed=[]) == changed
