"""The documentation checks, the configuration review and the support queue (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from upkeep.reviews import configreview as cr
from upkeep.reviews import docs, support

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
A, B, C = "a" * 64, "b" * 64, "c" * 64

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "paths": {
        "/api/events": {"get": {}, "post": {}, "parameters": []},
        "/api/events/{eventId}": {"get": {}, "summary": "one event"},
        "/api/venues/{slug}": {"get": {}},
        "/api/reports": {"get": {}},
    },
}


# -- API routes ------------------------------------------------------------------------------------
def test_described_routes_are_spelled_like_the_log_analysis() -> None:
    assert docs.described_routes(OPENAPI) == {"GET /api/events", "POST /api/events", "GET /api/events/:id",
                                              "GET /api/venues/:id", "GET /api/reports"}
    based = {"servers": [{"url": "https://api.example.org/v1/"}], "paths": {"/users/{id}": {"delete": {}}}}
    assert docs.described_routes(based) == {"DELETE /v1/users/:id"}
    assert docs.described_routes({"swagger": "2.0", "basePath": "/api", "paths": {"/x": {"get": {}}}}) == {"GET /api/x"}
    with pytest.raises(ValueError, match="no `paths` object.*openapi.json"):
        docs.described_routes({"openapi": "3.0.3"})


def test_route_findings_served_undescribed_and_described_unserved() -> None:
    served = {"GET /api/events": 5_000, "GET /api/events/:id": 812, "HEAD /api/events": 3,
              "GET /api/venues/main-hall": 40,  # a slug is logged as itself: {slug} covers it
              "GET /api/admin/export": 1_204, "POST /api/events/:id/cancel": 2,
              "GET /health": 10_080, "GET /worker-health": 10_080, "POST /_control/restart": 1, "GET (no route)": 4}
    found = docs.route_findings(docs.described_routes(OPENAPI), served)
    assert [(f.level, f.subject) for f in found] == [
        ("warning", "GET /api/admin/export"), ("warning", "POST /api/events/:id/cancel"),  # busiest first
        ("info", "GET /api/reports"), ("info", "POST /api/events")]
    assert found[0].title == "GET /api/admin/export answered 1,204 requests this week but is not in the API description"
    assert found[2].title == "GET /api/reports is in the API description but answered no request this week"


def test_served_routes_sum_the_daily_summaries() -> None:
    days = [{"routes": {"GET /api/events": {"requests": 10, "p95_ms": 5}}},
            {"routes": {"GET /api/events": {"requests": 5}, "GET /api/events/:id": {"requests": 2}}}, {}]
    assert docs.served_routes(days) == {"GET /api/events": 15, "GET /api/events/:id": 2}


# -- changelog and links ---------------------------------------------------------------------------------
CHANGELOG = """# Changelog
## [Unreleased]
## [1.4.2] - 2026-11-30
### Fixed
- seat counts (## 9.9.9 in a line is not a heading)
## 1.4.1
## v1.4.0
## 1.3.9 (2026-10-01)
## [2.0.0-rc.1] - 2026-12-01
### 3.0 is not a version heading: level 3 with words
"""


def test_changelog_versions_in_every_heading_format() -> None:
    assert docs.changelog_versions(CHANGELOG) == ["1.4.2", "1.4.1", "1.4.0", "1.3.9", "2.0.0-rc.1"]
    assert docs.changelog_versions("# Changelog\n\nNothing yet.\n") == []


def test_deployed_versions_missing_from_the_changelog_name_their_hosts() -> None:
    versions = docs.changelog_versions(CHANGELOG)
    assert docs.changelog_finding(versions, {"web-1": "1.4.2", "web-2": "v1.4.1"}) == []
    found = docs.changelog_finding(versions, {"web-1": "1.5.0", "web-2": "1.5.0", "web-3": "1.4.2", "web-4": None})
    assert [(f.level, f.subject) for f in found] == [("warning", "changelog 1.5.0"), ("info", "version on web-4")]
    assert found[0].title == "Version 1.5.0, deployed on web-1 and web-2, is not in the changelog"
    assert "the latest it lists is 1.4.2" in found[0].evidence
    assert "lists no version" in docs.changelog_finding([], {"web-1": "1.4.2"})[0].evidence


def test_failed_links_are_warnings_and_redirects_are_fine() -> None:
    found = docs.link_findings({"https://d/ok": (200, ""), "https://d/moved": (301, ""), "https://d/gone": (404, ""),
                                "https://d/down": (None, "connection refused"), "https://d/err": (500, "")})
    assert [(f.subject, f.title) for f in found] == [
        ("https://d/down", "The documentation link https://d/down could not be fetched: connection refused"),
        ("https://d/err", "The documentation link https://d/err answered HTTP 500"),
        ("https://d/gone", "The documentation link https://d/gone answered HTTP 404")]


def test_documentation_section_sentence_first_then_the_lists() -> None:
    review = docs.DocsReview(
        described=frozenset(docs.described_routes(OPENAPI)),
        served={"GET /api/events": 100, "GET /api/events/:id": 7, "GET /api/admin/export": 1_204, "GET /health": 9},
        versions=("1.4.2", "1.4.1"), deployed={"web-1": "1.4.2", "web-2": "1.4.2"},
        links={"https://d/a": (200, ""), "https://d/b": (404, "")})
    assert review.describe() == ("The API description covers 2 of 3 served routes; the changelog lists the deployed "
                                 "1.4.2; 1 of 2 documentation links resolve.")
    text = docs.markdown(review)
    assert text.startswith("## Documentation\n\nThe API description covers")
    assert "| `GET /api/admin/export` | 1,204 |" in text and "- `GET /api/reports`" in text
    assert "| web-1 | 1.4.2 | yes |" in text and "| https://d/b | HTTP 404 |" in text
    assert "ReviewFinding(" not in text and "frozenset" not in text
    assert {f.level for f in review.findings()} == {"warning", "info"}
    late = docs.DocsReview(versions=("1.4.2",), deployed={"web-1": "1.5.0"}, links={"https://d/a": (200, "")})
    assert late.describe() == "The changelog misses the deployed 1.5.0; the documentation link resolves."
    assert docs.DocsReview().describe() == "No documentation check was configured."


# -- configuration review ---------------------------------------------------------------------------------
def test_config_changes_changed_added_removed_unreadable() -> None:
    approved = {"web-1": {"/etc/app.conf": A, "/etc/nginx.conf": B, "/etc/old.conf": C, "/etc/secret.conf": C},
                "web-2": {"/etc/app.conf": A}}
    observed: cr.Observed = {
        "web-1": {"/etc/app.conf": "sha256:" + A.upper(), "/etc/nginx.conf": C, "/etc/new.conf": A,
                  "/etc/old.conf": None, "/etc/secret.conf": "unreadable: Permission denied"},
        "web-2": "ssh: connection timed out",  # a host that could not be read: not "removed"
        "web-3": {"/etc/app.conf": B},  # no approved copy yet: proposed, not accused
    }
    changes = cr.config_changes(observed, approved)
    assert [(c.host, c.path, c.change) for c in changes] == [
        ("web-1", "/etc/secret.conf", "unreadable"), ("web-1", "/etc/new.conf", "added"),
        ("web-1", "/etc/nginx.conf", "changed"), ("web-1", "/etc/old.conf", "removed"),
        ("web-2", cr.HOST, "unreadable")]
    assert changes[0].approved == C and changes[0].error == "Permission denied"
    assert changes[2].describe() == "/etc/nginx.conf on web-1 changed since it was approved (sha256 bbbbbbbb… → sha256 cccccccc…)"
    assert changes[4].describe() == ("The configuration files of web-2 could not be read (ssh: connection timed out); "
                                     "the approved copy is kept")
    assert [f.level for f in cr.findings(changes)] == ["warning"] * 5
    first = cr.config_changes(observed, None)  # the first review: only what could not be read
    assert [(c.host, c.change) for c in first] == [("web-1", "unreadable"), ("web-2", "unreadable")]


def test_proposal_items_round_trip_and_keep_what_was_not_read() -> None:
    observed: cr.Observed = {"web-1": {"/etc/b conf": B, "/etc/a.conf": A, "/etc/gone": None, "/etc/s": "denied"},
                             "web-2": "unreachable"}
    proposed = cr.proposal(observed, {"web-1": {"/etc/s": C}})
    assert proposed == {"web-1": ("/etc/a.conf sha256:" + A, "/etc/b conf sha256:" + B, "/etc/s sha256:" + C)}
    assert cr.parse_items(proposed["web-1"]) == {"/etc/a.conf": A, "/etc/b conf": B, "/etc/s": C}
    for bad in ("/etc/a.conf " + A, "/etc/a.conf sha256:xyz", "sha256:" + A):
        with pytest.raises(ValueError, match="is not '<path> sha256:<64 hex digits>': approve"):
            cr.parse_items([bad])


def test_config_section_sentence_and_per_host_tables() -> None:
    observed: cr.Observed = {"web-1": {"/etc/app.conf": B, "/etc/x.conf": A}, "web-2": {"/etc/app.conf": A},
                             "web-3": {"/etc/app.conf": A}}
    approved = {"web-1": {"/etc/app.conf": A, "/etc/x.conf": A}, "web-2": {"/etc/app.conf": A}}
    text = cr.markdown(observed, approved)
    assert ("1 of 2 hosts match their approved configuration (4 files checked); web-1: 1 changed; web-3: no approved "
            "copy yet (proposed below).") in text
    assert "| `/etc/app.conf` | sha256 aaaaaaaa… | sha256 bbbbbbbb… | changed |" in text
    assert "| `/etc/x.conf` | sha256 aaaaaaaa… | sha256 aaaaaaaa… | unchanged |" in text
    assert "### web-3\n\n| path | approved | live | change |" in text and "| — | sha256 aaaaaaaa… | proposed |" in text
    assert "No configuration approved yet: 4 files read on 3 hosts" in cr.markdown(observed, None)


# -- support queue -----------------------------------------------------------------------------------------
def _raw(id_: int, priority: str | None, status: str, hours: float, title: str = "Cannot publish event") -> dict[str, Any]:
    created = (NOW - timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
    return {"id": id_, "subject": title, "priority": priority, "status": status, "created_at": created}


QUEUE = [_raw(812, "urgent", "open", 9), _raw(813, "critical", "new", 1, "Slow search"),
         _raw(814, "high", "pending", 30, "Export wrong"), _raw(815, "high", "hold", 2, "Typo"),
         _raw(790, "urgent", "solved", 50, "Login down"), _raw(816, None, "open", 100, "Question")]


def test_support_shapes_and_zendesk_priorities() -> None:
    as_list = support.parse_tickets(QUEUE)
    assert support.parse_tickets({"tickets": QUEUE}) == as_list == support.parse_tickets({"data": QUEUE})
    assert [(t.id, t.priority, t.open) for t in as_list] == [
        ("812", "critical", True), ("813", "critical", True), ("814", "high", True), ("815", "high", True),
        ("790", "critical", False), ("816", "normal", True)]
    api = {"data": [{"id": "7", "attributes": {"title": "From JSON:API", "priority": "low", "status": "closed",
                                               "created_at": "2026-12-06T10:00:00"}}]}
    [t] = support.parse_tickets(api)
    assert (t.title, t.priority, t.open, t.created_at) == ("From JSON:API", "low", False, datetime(2026, 12, 6, 10, tzinfo=UTC))


@pytest.mark.parametrize("payload,message", [
    ({"items": []}, r"an object with keys \['items'\], not a list of tickets"),
    ([{"subject": "x"}], "ticket 1 of the support queue has no 'id'"),
    ([_raw(1, "high", "open", 1), {**_raw(2, "high", "open", 1), "subject": ""}], "ticket #2 .* no 'title' or 'subject'"),
    ([_raw(3, "blocker", "open", 1)], "ticket #3 .*priority 'blocker' is none of"),
    ([_raw(4, "high", "escalated", 1)], "ticket #4 .*status 'escalated' is none of"),
    ([{**_raw(5, "high", "open", 1), "created_at": "yesterday"}], "ticket #5 .*created_at 'yesterday' is not an ISO 8601"),
])
def test_a_bad_ticket_is_named_with_its_field(payload: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        support.parse_tickets(payload)


def test_overdue_by_sla_and_solved_ignored() -> None:
    tickets = support.parse_tickets(QUEUE)
    assert [t.id for t in support.overdue(tickets, NOW)] == ["812", "814"]  # critical > 4 h, high > 24 h
    assert [t.id for t in support.overdue(tickets, NOW, {"normal": timedelta(days=3)})] == ["816"]
    found = support.findings(tickets, NOW)
    assert [(f.level, f.subject) for f in found] == [("critical", "ticket #812"), ("warning", "ticket #814"),
                                                     ("info", "ticket #813")]
    assert found[0].title == "#812 'Cannot publish event' (critical, open 9 h) is over its 4 h SLA"


def test_support_summary_and_section() -> None:
    tickets = support.parse_tickets(QUEUE)
    assert support.summary(tickets[:2], NOW) == ("Support queue: 2 open tickets, 2 critical; 1 critical ticket over its "
                                                 "4 h SLA: #812 'Cannot publish event' (open 9 h).")
    assert support.summary(tickets, NOW).endswith("; 1 high ticket over its 24 h SLA: #814 'Export wrong' (open 30 h).")
    assert support.summary(tickets[1:2], NOW) == "Support queue: 1 open ticket, 1 critical; none over its SLA."
    assert support.summary(tickets[4:5], NOW) == "Support queue: no open tickets (1 ticket read, all solved or closed)."
    text = support.markdown(tickets, NOW)
    assert text.startswith("## Support queue\n\nSupport queue: 5 open tickets, 2 critical;")
    assert "| critical | 2 | 1 | 4 h | 9 h |" in text and "| normal | 1 | 0 | — | 4 d 4 h |" in text
    assert "| #812 | Cannot publish event | critical | open | 9 h | 4 h |" in text
