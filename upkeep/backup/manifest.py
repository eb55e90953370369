"""The backup manifest: what a backup holds and the checksums that prove it.

Written last: a backup without a manifest is incomplete and never listed. The manifest is
signed (HMAC-SHA256 with the configured key, else a plain SHA-256) in a sidecar object, so a
changed manifest is detected.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from upkeep import __version__, humanize

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="object key relative to the backup's prefix")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256: also S3's own checksum, checked on upload")
    blake3: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                               description="BLAKE3-256, what verification checks (SHA-256 when absent: older backups)")

    def describe(self) -> str:
        """'25 KB · blake3 962a3923…'"""
        return f"{humanize.size(self.size)} · " + (humanize.digest(self.blake3, "blake3") if self.blake3
                                                     else humanize.digest(self.sha256, "sha256"))


class CollectionEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database: str
    name: str
    count: int = Field(ge=0)
    content_sha256: str = Field(description="SHA-256 of the documents' BSON, in _id order")
    data: FileEntry
    metadata: FileEntry
    indexes: list[str]

    @property
    def qualified(self) -> str:
        return f"{self.database}.{self.name}"

    def describe(self) -> str:
        """'1,500 documents · 25 KB · blake3 962a3923… · 3 indexes'"""
        return (f"{humanize.count(self.count, 'document')} · {self.data.describe()} · "
                f"{humanize.count(len(self.indexes), 'index', 'indexes')}")


class ConfigFileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str
    path: str
    file: FileEntry

    def describe(self) -> str:
        return f"{self.host}:{self.path} · {self.file.describe()}"


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = 1
    backup_id: str
    environment: str
    created_at: datetime
    completed_at: datetime
    source: str = Field(description="where the data came from (no credentials)")
    tool: str = f"upkeep {__version__}"
    collections: list[CollectionEntry]
    config_files: list[ConfigFileEntry] = Field(default_factory=list)

    def files(self) -> list[FileEntry]:
        return [f for c in self.collections for f in (c.data, c.metadata)] + [c.file for c in self.config_files]

    @property
    def document_count(self) -> int:
        return sum(c.count for c in self.collections)


def new_backup_id(now: datetime | None = None) -> str:
    """Sortable and unique: 20261122T020000Z-3f9a."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def backup_time(backup_id: str) -> datetime:
    return datetime.strptime(backup_id.split("-")[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def sign(manifest_bytes: bytes, key: bytes | None) -> str:
    """`hmac-sha256:<hex>` with a key, else `sha256:<hex>` (detects corruption, not forgery)."""
    if key:
        return "hmac-sha256:" + hmac.new(key, manifest_bytes, hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()


def signature_ok(manifest_bytes: bytes, signature: str, key: bytes | None) -> bool:
    return signature_problem(manifest_bytes, signature, key) is None


def signature_problem(manifest_bytes: bytes, signature: str, key: bytes | None) -> str | None:
    """Why `signature` does not vouch for `manifest_bytes` under `key`, or None when it does. A
    signature of the other scheme (keyed vs unkeyed) is named as such: a key added, rotated away or
    missing in the configuration reads differently from a changed manifest."""
    expected, given = sign(manifest_bytes, key), signature.strip()
    scheme, _, _ = given.partition(":")
    if scheme != expected.partition(":")[0]:
        if scheme == "hmac-sha256":
            return "the manifest is signed with a key but no manifest key is configured (backup.manifest_key)"
        if scheme == "sha256":
            return "the manifest is unsigned (written without a manifest key) but a key is configured now"
        return f"unknown signature scheme {scheme[:20]!r}"
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        return ("signature mismatch: the manifest was changed after it was written" if key else
                "checksum mismatch: the manifest was changed after it was written")
    return None
