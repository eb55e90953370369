"""Sample Event Manager data for the sandbox database: events, users, sessions, with indexes."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pymongo


def seed_database(uri: str, database: str = "eventmanager", events: int = 1500, users: int = 600, sessions: int = 900) -> None:
    """Create the collections once (idempotent: a seeded database is left as it is)."""
    rnd = random.Random(42)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
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
