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
PATHS = ["/api/events", "/api/events/{id}", "/api/users/{id}", "/api/login", "/health"]


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
    """A day of the application's JSON request log (as the stand-in writes it), ending now: mostly
    fast 200s, a few slow requests, 4xx from a couple of addresses, 0.5 % server errors. Written
    once: a log that already has lines is left as it is."""
    if path.exists() and path.stat().st_size:
        return
    rnd = random.Random(f"{seed}-{host}")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    lines = []
    for minute in range(hours * 60, 0, -1):
        for _ in range(per_minute):
            ts = now - timedelta(minutes=minute, seconds=rnd.uniform(0, 60))
            route = rnd.choice(PATHS).replace("{id}", str(rnd.randrange(1500)))
            roll = rnd.random()
            status, level, msg = 200, "info", "ok"
            if roll < 0.005:
                status, level, msg = 500, "error", "MongoServerError: connection pool cleared"
            elif roll < 0.03:
                status, level, msg = rnd.choice([(401, "warn", "invalid credentials"), (404, "warn", "not found")])
            duration = rnd.lognormvariate(3.0, 0.6) * (8 if roll > 0.995 else 1)
            ip = rnd.choice(["10.0.2.15", "10.0.2.16", "10.0.3.40"]) if status >= 400 else f"10.0.1.{rnd.randrange(2, 250)}"
            lines.append({"ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "level": level,
                          "method": "POST" if route == "/api/login" else "GET", "path": route, "status": status,
                          "duration_ms": round(duration, 2), "ip": ip, "msg": msg})
    lines.sort(key=lambda e: e["ts"])
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
