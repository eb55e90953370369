"""What the demo's routines find on a fresh stack: the Event Manager's database (events, users,
sessions, with indexes), a day of its request log on each application host, and package sources
on every host (installed and available versions for the sandbox package manager)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo

# Updates the policy applies without an approval (a security fix, a minor release), so that a
# system update triggered from the UI on development goes through and ends Completed.
INSTALLED = {"event-manager": "2.3.1", "openssl": "3.0.14-1", "express": "4.18.2"}
AVAILABLE: dict[str, Any] = {
    "event-manager": {"version": "2.4.0", "kind": "minor"},
    "openssl": {"version": "3.0.15-1", "kind": "security"},
    "express": "4.18.2",  # up to date
}
#: The API's requests in the seeded log, (method, route): relative weight.
ROUTES = {("GET", "/api/events"): 30, ("GET", "/api/events/:id"): 25, ("POST", "/api/events"): 4, ("PUT", "/api/events/:id"): 3,
          ("GET", "/api/users/:id"): 10, ("POST", "/api/login"): 12, ("GET", "/health"): 16}
#: The worker's jobs besides `send-reminders`, which runs every minute.
WORKER_JOBS = ["sync-calendar", "index-search", "cleanup-sessions"]


def seed_database(uri: str, database: str = "eventmanager", events: int = 1500, users: int = 600, sessions: int = 900) -> None:
    """Create the collections once (idempotent: a seeded database is left as it is)."""
    rnd = random.Random(42)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    with client:
        db = client[database]
        if "events" in db.list_collection_names():
            return
        db.users.insert_many([{"_id": i, "email": f"user{i}@example.org", "active": i % 7 != 0,
                               "created": start + timedelta(hours=i)} for i in range(users)])
        db.events.insert_many([{"_id": i, "name": f"Event {i}", "owner": rnd.randrange(users),
                                "starts": start + timedelta(days=rnd.randrange(365)), "seats": rnd.randrange(20, 500),
                                "tags": rnd.sample(["music", "tech", "sport", "art", "food"], 2)} for i in range(events)])
        db.sessions.insert_many([{"_id": f"s{i:05d}", "user": rnd.randrange(users),
                                  "expires": start + timedelta(days=rnd.randrange(400))} for i in range(sessions)])
        db.users.create_index([("email", 1)], unique=True, name="email_1")
        db.events.create_index([("starts", 1)], name="starts_1")
        db.events.create_index([("owner", 1), ("starts", -1)], name="owner_1_starts_-1")
        db.sessions.create_index([("expires", 1)], name="expires_1")


def seed_packages(roots: Iterable[Path], owner: tuple[int, int]) -> None:
    """(Re)set every host's package sources to the demo's versions, owned by the hosts' login user
    (the sandbox package manager writes them as that user)."""
    for root in roots:
        d = root / "packages"
        d.mkdir(exist_ok=True)
        for name in ("fail-apply", "fail-rollback", "history.jsonl"):
            (d / name).unlink(missing_ok=True)
        for name, data in (("installed.json", INSTALLED), ("available.json", AVAILABLE)):
            (d / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        for path in (d, d / "installed.json", d / "available.json"):
            os.chown(path, *owner)


def seed_log(path: Path, host: str, *, hours: int = 24, per_minute: int = 2, seed: int = 7) -> None:
    """A day of the application's JSON log (as the stand-in writes it), ending now: `per_minute` API
    requests a minute, mostly fast 200s, a few slow ones, 4xx (401s at the login, mostly from two
    addresses), 0.5 % server errors; and two worker job lines a minute (`"service": "worker"`, a
    `job`, no HTTP fields). Deterministic for a host and seed; written once: a log that already has
    lines is left as it is."""
    if path.exists() and path.stat().st_size:
        return
    rnd = random.Random(f"{seed}-{host}")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    lines = []
    for minute in range(hours * 60, 0, -1):
        base = now - timedelta(minutes=minute)
        lines += [_request_line(rnd, base + timedelta(seconds=rnd.uniform(0, 60))) for _ in range(per_minute)]
        lines += [_worker_line(rnd, base + timedelta(seconds=rnd.uniform(0, 60)), job)
                  for job in ("send-reminders", rnd.choice(WORKER_JOBS))]
    lines.sort(key=lambda e: e["ts"])
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))


def _ts(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _request_line(rnd: random.Random, when: datetime) -> dict[str, Any]:
    """One API request, in the stand-in's schema."""
    method, route = rnd.choices(list(ROUTES), weights=list(ROUTES.values()))[0]
    path = route.replace(":id", str(rnd.randrange(1, 1500)))
    user: str | None = f"user{rnd.randrange(600)}@example.org"
    ip = f"10.0.1.{rnd.randrange(2, 250)}"
    roll = rnd.random()
    status, msg = (201, "created") if method == "POST" and route == "/api/events" else (200, "ok")
    if route == "/health":
        user, ip, msg = None, "10.0.0.2", "api healthy"  # the load balancer's probe
    elif route == "/api/login" and roll < 0.18:  # failed logins, mostly from two addresses
        ip = rnd.choice(["10.0.2.15", "10.0.2.16"]) if rnd.random() < 0.8 else ip
        status, msg = 401, "invalid credentials"
    elif roll < 0.005:
        status, msg = 500, "MongoServerError: connection pool cleared"
    elif roll < 0.03:
        status, msg = 404, "not found"
        ip = rnd.choice(["10.0.2.15", "10.0.2.16", "10.0.3.40"])
    duration = rnd.lognormvariate(3.0, 0.6) * (8 if roll > 0.995 else 1)
    level = "error" if status >= 500 else "warn" if status >= 400 else "info"
    return {"ts": _ts(when), "level": level, "service": "api", "method": method, "path": path, "route": route,
            "status": status, "duration_ms": round(duration, 2), "ip": ip, "user": user, "msg": msg}


def _worker_line(rnd: random.Random, when: datetime, job: str) -> dict[str, Any]:
    """One background job run of the worker; 1 % fail."""
    failed = rnd.random() < 0.01
    duration = rnd.lognormvariate(5.5, 0.8)
    return {"ts": _ts(when), "level": "error" if failed else "info", "service": "worker", "job": job,
            "duration_ms": round(duration, 2), "msg": f"{job} failed: SMTP timeout" if failed else f"{job} done"}


def seed_temp(directory: Path, owner: tuple[int, int]) -> None:
    """A temp directory as an application leaves it: old upload and .tmp files (10 days), a fresh one,
    a file the patterns do not match, and a symlink out of the directory (never followed)."""
    if directory.exists():
        return
    directory.mkdir()
    old = datetime.now(UTC).timestamp() - 10 * 86400
    files = {"upload-1.part": old, "upload-2.part": old, "render-7.tmp": old, "render-8.tmp": None, "keep.pid": old}
    for name, mtime in files.items():
        f = directory / name
        f.write_bytes(b"x" * 4096)
        if mtime is not None:
            os.utime(f, (mtime, mtime))
        os.chown(f, *owner)
    (directory / "upload-outside").symlink_to("/etc/hostname")
    os.lchown(directory / "upload-outside", *owner)
    os.chown(directory, *owner)
