"""Rotated logs in S3: streamed from their host (hosts hold no S3 credentials), checked, kept 90 days.

Keys: `<prefix><environment>/<host>/<log path as one word>/<YYYY>/<MM>/<DD>/<rotated file name>`.
Each object carries its SHA-256 and line count in its metadata. An object counts as archived when
it exists with the local file's size (its upload was checked against the host's SHA-256 while it
streamed); before a local copy is deleted the object is read back and hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, BinaryIO, cast
from urllib.parse import quote

from upkeep.errors import ArchiveError
from upkeep.hosts.base import Host

RULE_ID = "upkeep-log-retention"
CHUNK = 8 * 1024 * 1024


def path_word(path: str) -> str:
    """`/var/log/app/api.log` → `var%2Flog%2Fapp%2Fapi.log`: one key segment per log file of a host,
    percent-encoded so that two paths never share it (`/a/b_c` and `/a_b/c` stay apart)."""
    return quote(path.strip("/"), safe="") or "_"


@dataclass(frozen=True)
class ArchivedObject:
    key: str
    size: int
    sha256: str
    lines: int


class _Hashing:
    """A reader that hashes what passes through it and refuses to end on the wrong digest (so the
    upload it feeds fails instead of storing a file that changed under it)."""

    def __init__(self, raw: BinaryIO, expected: str, on_first_chunk: Callable[[], None] | None) -> None:
        self._raw, self._expected, self._hook = raw, expected, on_first_chunk
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._hash.update(data)
            self.size += len(data)
            if self._hook is not None:
                hook, self._hook = self._hook, None
                hook()
        else:
            self.check()
        return data

    def check(self) -> None:
        """Raise unless what passed through matches the host's SHA-256 (also called after the upload: a
        small file's upload may end without the empty read that would call it)."""
        if self._hash.hexdigest() != self._expected:
            raise ArchiveError(f"the file read ({self.size:,} bytes) does not match the host's SHA-256: it changed "
                               "while it was being archived; not stored")


class LogArchive:
    """The `s3.logs` location of one environment."""

    def __init__(self, s3: Any, bucket: str, prefix: str, environment: str) -> None:
        self.s3, self.bucket, self.prefix, self.environment = s3, bucket, prefix, environment

    def folder(self, host: str, path: str) -> str:
        return f"{self.prefix}{self.environment}/{host}/{path_word(path)}/"

    def key(self, host: str, path: str, day: date, name: str) -> str:
        return f"{self.folder(host, path)}{day:%Y/%m/%d}/{name}"

    def ensure_bucket(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except BotoCoreError as exc:
            raise ArchiveError(f"the object store at {self.s3.meta.endpoint_url} does not answer: {exc}") from exc
        except ClientError:
            try:
                self.s3.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                raise ArchiveError(f"log bucket {self.bucket} is missing and cannot be created: {exc}") from exc

    def objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return  # nothing archived yet (the first real run creates the bucket)
            raise ArchiveError(f"cannot list s3://{self.bucket}/{prefix}: {exc}") from exc
        except BotoCoreError as exc:
            raise ArchiveError(f"cannot list s3://{self.bucket}/{prefix}: {exc}") from exc

    def stored(self, host: str, path: str) -> dict[str, int]:
        """Archived file name → size, for one log of one host."""
        return {obj["Key"].rsplit("/", 1)[-1]: int(obj["Size"]) for obj in self.objects(self.folder(host, path))}

    def upload(self, host: Host, source: str, key: str, *, sha256: str, lines: int, metadata: dict[str, str],
               on_first_chunk: Callable[[], None] | None = None) -> ArchivedObject:
        """Stream `source` from the host into `key`; checked against the host's SHA-256 as it streams,
        then the stored object's size and metadata are checked."""
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        meta = {**metadata, "sha256": sha256, "lines": str(lines)}
        with host.open_file(source) as raw:
            reader = _Hashing(raw, sha256, on_first_chunk)
            try:
                self.s3.upload_fileobj(reader, self.bucket, key, ExtraArgs={"Metadata": meta},
                                       Config=TransferConfig(multipart_chunksize=CHUNK, max_concurrency=4))
            except (BotoCoreError, ClientError) as exc:
                raise ArchiveError(f"upload of {source} from {host.name} to s3://{self.bucket}/{key} failed: {exc}") from exc
            rest = raw.read(1)  # the file grew after the transfer stopped reading: not what the host hashed
            try:
                if rest:
                    raise ArchiveError(f"{source} grew while it was archived: not stored")
                reader.check()
            except ArchiveError:
                self.s3.delete_object(Bucket=self.bucket, Key=key)
                raise
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveError(f"s3://{self.bucket}/{key} is not readable after its upload: {exc}") from exc
        if int(head["ContentLength"]) != reader.size or head.get("Metadata", {}).get("sha256") != sha256:
            raise ArchiveError(f"s3://{self.bucket}/{key} holds {head['ContentLength']} bytes, not the {reader.size} "
                               "sent, or lost its checksum: not counted as archived")
        return ArchivedObject(key, reader.size, sha256, lines)

    def read_back(self, key: str, expected_sha256: str) -> tuple[bool, str]:
        """Read the stored object and hash it: (it matches the local copy's SHA-256?, a sentence)."""
        from botocore.exceptions import BotoCoreError, ClientError

        digest = hashlib.sha256()
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(CHUNK), b""):
                digest.update(chunk)
        except (BotoCoreError, ClientError) as exc:
            return False, f"s3://{self.bucket}/{key} could not be read back: {exc}"
        if digest.hexdigest() != expected_sha256:
            return False, f"s3://{self.bucket}/{key} does not match the local copy (SHA-256 differs)"
        return True, "read back, SHA-256 matches"

    # -- reading --------------------------------------------------------------------------------
    def day_objects(self, day: date, words: set[str] | None = None) -> list[dict[str, Any]]:
        """The archives holding lines of `day` (UTC): each log's files rotated that day, plus its first
        one rotated after it (which holds the day's last hours). `words`: only these logs (path_word)."""
        series: dict[tuple[str, str], list[tuple[date, dict[str, Any]]]] = {}
        for obj in self.objects(f"{self.prefix}{self.environment}/"):
            parts = obj["Key"][len(self.prefix) + len(self.environment) + 1:].split("/")
            if len(parts) != 6 or parts[0].startswith("_"):
                continue
            host, word, y, m, d, _name = parts
            if words is not None and word not in words:
                continue
            try:
                when = date(int(y), int(m), int(d))
            except ValueError:
                continue
            series.setdefault((host, word), []).append((when, obj))
        chosen = []
        for items in series.values():
            items.sort(key=lambda item: item[1]["Key"])
            chosen += [obj for when, obj in items if when == day]
            after = [obj for when, obj in items if when > day]
            if after:
                chosen.append(after[0])
        return sorted(chosen, key=lambda o: o["Key"])

    def open(self, key: str) -> BinaryIO:
        """An archived object's body, streamed."""
        return cast(BinaryIO, self.s3.get_object(Bucket=self.bucket, Key=key)["Body"])

    def put_json(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise ArchiveError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc

    def analysis_key(self, day: date, name: str) -> str:
        """Where the log analysis of `day` keeps its summary and charts (beside the archives)."""
        return f"{self.prefix}{self.environment}/_analysis/{day.isoformat()}/{name}"

    def presigned(self, key: str, expires: timedelta = timedelta(days=7)) -> str:
        return str(self.s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                  ExpiresIn=int(expires.total_seconds())))

    # -- retention --------------------------------------------------------------------------------
    def ensure_lifecycle(self, days: int) -> str:
        """Our expiration rule on the logs prefix (other rules of the bucket kept); a sentence."""
        from botocore.exceptions import ClientError

        try:
            rules = self.s3.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchLifecycleConfiguration", "NoSuchLifecycle"):
                raise ArchiveError(f"cannot read the lifecycle rules of bucket {self.bucket}: {exc}") from exc
            rules = []
        prefix = f"{self.prefix}{self.environment}/"
        # uploads a killed run left unfinished (their parts are stored and billed) are aborted after a day
        ours = {"ID": f"{RULE_ID}-{self.environment}", "Status": "Enabled", "Filter": {"Prefix": prefix},
                "Expiration": {"Days": days}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}
        current = next((r for r in rules if r.get("ID") == ours["ID"]), None)
        if current is not None and current.get("Expiration", {}).get("Days") == days and current.get("Status") == "Enabled" \
                and current.get("Filter", {}).get("Prefix", current.get("Prefix")) == prefix \
                and current.get("AbortIncompleteMultipartUpload") == ours["AbortIncompleteMultipartUpload"]:
            return f"lifecycle rule {ours['ID']} in place: objects under {prefix} expire after {days} days"
        others = [r for r in rules if r.get("ID") != ours["ID"]]
        try:
            self.s3.put_bucket_lifecycle_configuration(Bucket=self.bucket, LifecycleConfiguration={"Rules": [*others, ours]})
        except ClientError as exc:
            raise ArchiveError(f"cannot set the lifecycle rule on bucket {self.bucket}: {exc}") from exc
        done = "updated" if current else "created"
        return f"lifecycle rule {ours['ID']} {done}: objects under {prefix} expire after {days} days"

    def past_retention(self, days: int, now: datetime | None = None,
                       grace: timedelta = timedelta(days=2)) -> list[dict[str, Any]]:
        """Objects older than the retention plus a grace (the store expires them once a day): what its
        lifecycle did not remove."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days) - grace
        return [{"key": o["Key"], "size": int(o["Size"]), "last_modified": o["LastModified"]}
                for o in self.objects(f"{self.prefix}{self.environment}/") if o["LastModified"] < cutoff]
