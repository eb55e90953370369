"""Dump a collection as gzip'd BSON (mongodump's `--gzip` format), hashing as it goes."""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from blake3 import blake3
from bson.codec_options import CodecOptions
from bson.json_util import dumps as bson_dumps
from bson.raw_bson import RawBSONDocument

RAW = CodecOptions(document_class=RawBSONDocument)


class Readable(Protocol):
    """What iter_bson reads from: a file, a GzipFile, a store's streamed body."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class DumpedFile:
    path: Path
    size: int
    sha256: str
    blake3: str


class _HashingWriter:
    """A write-only file object that hashes (SHA-256 and BLAKE3) and counts what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.sha, self.b3, self.size = raw, hashlib.sha256(), blake3(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.b3.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def dump_collection(collection: Any, path: Path, batch_size: int = 2000) -> tuple[int, str, DumpedFile]:
    """(document count, content SHA-256, file) for `collection`, documents in _id order."""
    content = hashlib.sha256()
    count = 0
    with open(path, "wb") as raw:
        out = _HashingWriter(raw)
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
            cursor = collection.with_options(codec_options=RAW).find({}, sort=[("_id", 1)], batch_size=batch_size)
            for doc in cursor:
                content.update(doc.raw)
                gz.write(doc.raw)
                count += 1
    return count, content.hexdigest(), DumpedFile(path, out.size, out.sha.hexdigest(), out.b3.hexdigest())


def index_metadata(collection: Any) -> bytes:
    """The collection's indexes as mongodump-style metadata JSON.

    An index's `key` is an ordered document (`{status: 1, createdAt: -1}` is not
    `{createdAt: -1, status: 1}`), so it is written in the server's order; everything else is
    written with sorted names, so the same indexes always give the same bytes.
    """
    indexes = [_ordered_index(ix) for ix in collection.list_indexes()]
    return bson_dumps({"collectionName": collection.name, "indexes": indexes}).encode()


def _ordered_index(ix: Mapping[str, Any]) -> dict[str, Any]:
    """One index document: `key` (pairs in index order) first, then the options by name."""
    out: dict[str, Any] = {"key": {field: direction for field, direction in ix["key"].items()}}
    out.update((name, ix[name]) for name in sorted(ix) if name != "key")
    return out


def parse_index_metadata(data: bytes) -> list[dict[str, Any]]:
    """The index documents of `index_metadata`, every document's field order kept."""
    from bson.json_util import loads

    return list(loads(data.decode())["indexes"])


def iter_bson(stream: Readable) -> Iterator[bytes]:
    """Raw BSON documents from a stream of concatenated documents; raises ValueError when cut short."""
    while True:
        head = stream.read(4)
        if not head:
            return
        if len(head) < 4:
            raise ValueError("truncated BSON stream (length prefix)")
        (length,) = struct.unpack("<i", head)
        if length < 5:
            raise ValueError(f"corrupt BSON document length {length}")
        body = stream.read(length - 4)
        if len(body) != length - 4:
            raise ValueError("truncated BSON stream (document body)")
        yield head + body


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_blake3(data: bytes) -> str:
    return blake3(data).hexdigest()


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True, default=str).encode()
