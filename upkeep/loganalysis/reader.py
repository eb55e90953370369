"""From a compressed archive to parsed batches of log lines: decompress (streamed), cut into bounded batches of
whole lines, parse each batch at once (pyarrow for JSON lines, a vectorised regex for nginx).

A malformed line is counted and skipped, never fatal: JSON lines are parsed optimistically a batch at a time,
and only a batch that fails is taken apart (see `_salvage`). Every batch comes out as the same normalised Arrow
table (`COLUMNS`): `ts` as UTC timestamps, and a `route` for every request, derived from its path where the
line has none.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, Literal

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.json as pj  # type: ignore[import-untyped]
import zstandard

from upkeep.errors import LogArchiveError

try:  # orjson comes with Prefect: checking a line is ~2.5× faster than with json
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - Prefect requires orjson
    _loads = json.loads

Compression = Literal["gzip", "zstd", "none"]
LogFormat = Literal["json", "nginx"]

STRING = pa.string()
TS_TYPE = pa.timestamp("us", tz="UTC")
_FIELDS = [("level", STRING), ("method", STRING), ("path", STRING), ("route", STRING), ("status", pa.int32()),
           ("duration_ms", pa.float64()), ("ip", STRING), ("user", STRING), ("msg", STRING)]
#: The fields read from a JSON line; any other field is ignored. `ts` is converted by pyarrow while parsing
#: (ISO 8601; no offset: UTC); a batch where that fails for a line is re-read with `ts` as text (`_salvage`).
JSON_SCHEMA = pa.schema([("ts", TS_TYPE), *_FIELDS])
JSON_TEXT_SCHEMA = pa.schema([("ts", STRING), *_FIELDS])
#: The normalised batch every format comes out as.
COLUMNS = JSON_SCHEMA

_READ = pj.ReadOptions(use_threads=False, block_size=1 << 20)  # one batch per worker thread: no nested threads
_PARSE = pj.ParseOptions(explicit_schema=JSON_SCHEMA, unexpected_field_behavior="ignore")
_PARSE_TEXT = pj.ParseOptions(explicit_schema=JSON_TEXT_SCHEMA, unexpected_field_behavior="ignore")
#: A path segment that names one record: a number, or a hex id / UUID of 8 characters or more (the stand-in's
#: `route_of` also requires a digit in a hex id; RE2 has no look-ahead, and API paths have no 8-letter hex words).
_ID_SEGMENT = r"/(?:[0-9]+|[0-9a-fA-F]{8}[0-9a-fA-F-]*)(/|$)"
SALVAGE_GROUP = 1000  # lines parsed at once in a batch that failed: a parse costs ~0.3 ms more per call


# -- decompression --------------------------------------------------------------------------------
def decompressed_chunks(fileobj: BinaryIO, compression: Compression, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """The decompressed bytes of `fileobj`, streamed in pieces of about `chunk_size` (never the whole file).
    A gzip file of several members (concatenated archives) is read to its end; zstd likewise across frames."""
    if compression == "none":
        while data := fileobj.read(chunk_size):
            yield data
    elif compression == "gzip":
        yield from _gunzip(fileobj, chunk_size)
    elif compression == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(fileobj, read_size=chunk_size, read_across_frames=True)
        try:
            while data := reader.read(chunk_size):
                yield data
        except zstandard.ZstdError as exc:
            raise LogArchiveError(f"zstd archive unreadable: {exc}; check that the object is complete and "
                                  "that the configured compression is right") from exc
    else:
        raise LogArchiveError(f"unknown compression {compression!r}: expected gzip, zstd or none")


try:  # Intel ISA-L's inflate: the same API as zlib's, about twice its speed here (0.76 vs 1.66 CPU-s for 1.1 GiB)
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - a declared dependency; zlib does the same, slower
    _inflate = zlib  # type: ignore[misc]
_INFLATE_ERRORS: tuple[type[BaseException], ...] = (zlib.error, getattr(_inflate, "error", zlib.error))


def _gunzip(fileobj: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    """gzip with zlib, at most chunk_size of output per step: a 1000:1 member cannot blow up memory, and an
    output buffer that stays in the CPU cache inflates ~45 % faster here than one of 4 MiB."""
    limit = chunk_size
    d, fed = _inflate.decompressobj(wbits=31), False
    try:
        while raw := fileobj.read(chunk_size):
            data = raw
            while data:
                if d.eof:  # the next member of a multi-member file (archives concatenated)
                    if not data.strip(b"\0"):
                        break  # NUL padding after the last member, which gzip(1) tolerates too
                    d, fed = _inflate.decompressobj(wbits=31), False
                fed = True
                if out := d.decompress(data, limit):
                    yield out
                data = d.unused_data if d.eof else d.unconsumed_tail
            while not d.eof and (out := d.decompress(b"", limit)):
                yield out
    except _INFLATE_ERRORS as exc:
        raise LogArchiveError(f"gzip archive unreadable: {exc}; check that the object is complete and that the "
                              "configured compression is right") from exc
    if fed and not d.eof:
        raise LogArchiveError("gzip archive truncated: the stream ends inside a member; the upload may be incomplete")


# -- batches of whole lines -----------------------------------------------------------------------
def line_batches(chunks: Iterable[bytes], max_lines: int = 200_000, max_bytes: int = 8 << 20) -> Iterator[bytes]:
    """Batches of complete lines of about `max_bytes` (at most one chunk more) and at most `max_lines` lines,
    whatever the chunks' boundaries: a line split across chunks is carried to the next batch; the last batch
    may lack its final newline. Every byte is copied about once. A line longer than `max_bytes` is cut there:
    its first part comes as a batch of its own, newline added (it will not parse: one malformed line), the
    rest is dropped, so memory stays bounded."""
    parts: list[bytes] = []
    size = 0
    skipping = False  # inside the dropped rest of an over-long line
    for chunk in chunks:
        if skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                continue
            chunk, skipping = chunk[nl + 1:], False
        if not chunk:
            continue
        parts.append(chunk)
        size += len(chunk)
        if size < max_bytes:
            continue
        # the last newline, looked for from the end: nearly always in the last chunk, so that only the last
        # chunk is split and the batch is one join
        for i in range(len(parts) - 1, -1, -1):
            nl = parts[i].rfind(b"\n")
            if nl >= 0:
                batch = b"".join([*parts[:i], parts[i][:nl + 1]])
                rest = [parts[i][nl + 1:], *parts[i + 1:]]
                parts = [r for r in rest if r]
                size = sum(len(r) for r in parts)
                yield from _by_lines(batch, max_lines)
                break
        if size >= max_bytes:  # what is left has no newline: an over-long line
            yield b"".join(parts)[:max_bytes] + b"\n"
            parts, size, skipping = [], 0, True
    if parts:
        yield from _by_lines(b"".join(parts), max_lines)


def _by_lines(data: bytes, max_lines: int) -> Iterator[bytes]:
    """`data` in pieces of at most `max_lines` lines. Counting every newline would cost as much as a tenth of
    the parse, so the lines are counted only when the first 64 KiB suggest they are short enough (under
    twice the average `max_lines` allows) to reach the limit; else the batch is passed as it is."""
    sample = data[:65536]
    if len(data) <= max_lines or (len(data) > len(sample)
                                  and sample.count(b"\n") * len(data) < len(sample) * max_lines // 2):
        yield data
        return
    if data.count(b"\n") <= max_lines:
        yield data
        return
    start = 0
    while start < len(data):
        end = start
        for _ in range(max_lines):
            end = data.find(b"\n", end) + 1
            if end == 0:
                end = len(data)
                break
        yield data[start:end]
        start = end


# -- JSON lines -----------------------------------------------------------------------------------
def parse_json_batch(batch: bytes) -> tuple[pd.DataFrame, int]:
    """The lines of a batch as an Arrow-backed DataFrame (columns of `COLUMNS`), and how many lines were
    malformed (not a JSON object, a known field of the wrong type, no readable `ts`): those are skipped."""
    table, bad = read_json_table(batch)
    return table.to_pandas(types_mapper=pd.ArrowDtype), bad


def read_json_table(batch: bytes) -> tuple[Any, int]:
    """`parse_json_batch` as a normalised Arrow table (what the analysis aggregates)."""
    try:
        table, bad = _read_json(batch), 0
    except pa.ArrowInvalid:
        table, bad = _salvage(batch)
    if not batch.isascii():  # pure ASCII cannot hold invalid UTF-8 (the usual case: no check at all)
        table, bad_utf8 = _valid_utf8(table)
        bad += bad_utf8
    if table["ts"].null_count:  # no ts at all
        bad += table["ts"].null_count
        table = table.filter(pc.is_valid(table["ts"]))
    return with_routes(table), bad


def _read_json(data: bytes, text_ts: bool = False) -> Any:
    if not data or (data[:1].isspace() and not data.strip()):
        return (JSON_TEXT_SCHEMA if text_ts else JSON_SCHEMA).empty_table()
    return pj.read_json(pa.BufferReader(data), read_options=_READ, parse_options=_PARSE_TEXT if text_ts else _PARSE)


def _salvage(batch: bytes) -> tuple[Any, int]:
    """The valid lines of a batch that failed to parse, and how many were not. pyarrow fails a whole block on
    one bad line and cannot skip it, so: a cheap filter first (a JSON object starts with `{` and ends with `}`:
    truncated lines, stack traces and binary garbage go), then the rest parsed again in groups of
    `SALVAGE_GROUP` lines with `ts` as text (an unreadable time then costs its line, see `_timestamps`). Only
    in a group that still fails is every line checked with a JSON parser (orjson, ~2 µs a line), and what
    fails after that (a known field of the wrong type, which pyarrow reports without a row) is found by
    bisection. A batch with broken lines costs two to three times a clean one."""
    good: list[bytes] = []
    bad = 0
    for line in batch.split(b"\n"):
        text = line.strip()
        if not text:
            continue
        if text[:1] == b"{" and text[-1:] == b"}":
            good.append(text)
        else:
            bad += 1
    tables: list[Any] = []
    for start in range(0, len(good), SALVAGE_GROUP):
        group = good[start:start + SALVAGE_GROUP]
        try:
            tables.append(_read_json(b"\n".join(group), text_ts=True))
        except pa.ArrowInvalid:
            valid = [line for line in group if _is_object(line)]
            bad += len(group) - len(valid) + _bisect(valid, tables)
    table = pa.concat_tables(tables).combine_chunks() if tables else JSON_TEXT_SCHEMA.empty_table()
    return _timestamps(table), bad


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(_loads(line), dict)
    except (ValueError, RecursionError):  # orjson.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return False


def _bisect(lines: list[bytes], out: list[Any]) -> int:
    """Parse `lines` into tables appended to `out`, halving what fails down to single lines; how many failed."""
    if not lines:
        return 0
    try:
        out.append(_read_json(b"\n".join(lines), text_ts=True))
        return 0
    except pa.ArrowInvalid:
        if len(lines) == 1:
            return 1
        mid = len(lines) // 2
        return _bisect(lines[:mid], out) + _bisect(lines[mid:], out)


def _valid_utf8(table: Any) -> tuple[Any, int]:
    """pyarrow does not check that JSON strings are UTF-8: rows whose text is not are malformed."""
    try:
        table.validate(full=True)
        return table, 0
    except pa.ArrowInvalid:
        pass
    ok = pa.array([True] * table.num_rows)
    for name in table.column_names:
        if table.schema.field(name).type == STRING:
            raw = pc.cast(table[name], pa.binary()).to_pylist()
            ok = pc.and_(ok, pa.array([v is None or _utf8(v) for v in raw]))
    return table.filter(ok), table.num_rows - pc.sum(ok).as_py()


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
        return True
    except UnicodeDecodeError:
        return False


def _timestamps(table: Any) -> Any:
    """`ts` text as UTC timestamps (ISO 8601; without an offset: UTC), null where unreadable. Arrow's cast
    first (fast, all or nothing), pandas' lenient parser when a batch holds a bad one."""
    text = table["ts"]
    try:
        ts = pc.cast(text, TS_TYPE)
    except pa.ArrowInvalid:
        parsed = pd.to_datetime(text.to_pandas(), format="ISO8601", utc=True, errors="coerce")
        ts = pa.array(parsed.astype("datetime64[us, UTC]"), type=TS_TYPE)
    return table.set_column(0, pa.field("ts", TS_TYPE), ts)


# -- routes ---------------------------------------------------------------------------------------
def derive_routes(paths: Any) -> Any:
    """Routes from request paths (Arrow strings): the query string dropped, numeric, hex and UUID segments
    masked as `:id` (`/api/events/42?x=1` → `/api/events/:id`). Twice: a match consumes the `/` after its
    segment, so the second pass gets the segments right after a masked one."""
    out = pc.replace_substring_regex(paths, pattern=r"[?#].*$", replacement="")
    for _ in range(2):
        out = pc.replace_substring_regex(out, pattern=_ID_SEGMENT, replacement=r"/:id\1")
    return out


def with_routes(table: Any) -> Any:
    """`table` with a route on every line that has a path and no route (lines of older versions, nginx)."""
    if not table["route"].null_count:
        return table
    missing = pc.and_(pc.is_null(table["route"]), pc.is_valid(table["path"]))
    if not pc.any(missing).as_py():
        return table
    missing = missing.combine_chunks()
    derived = derive_routes(pc.filter(table["path"].combine_chunks(), missing))
    filled = pc.replace_with_mask(table["route"].combine_chunks(), missing, derived)
    return table.set_column(table.schema.get_field_index("route"), pa.field("route", STRING), filled)


# -- nginx "combined" -----------------------------------------------------------------------------
#: `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer"
#: "$http_user_agent"`, optionally followed by `$request_time` (seconds).
NGINX_COMBINED = (r'^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
                  r'(?P<status>\d{3}) (?:\d+|-) "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*"(?: (?P<rt>[0-9.]+|-))?\s*$')
_REQUEST = r"^(?P<method>[A-Z]+) (?P<path>\S+)(?: \S+)?$"


def parse_nginx_batch(batch: bytes) -> tuple[pd.DataFrame, int]:
    """nginx combined access-log lines as an Arrow-backed DataFrame of `COLUMNS` (level from the status: 5xx
    error, 4xx warn; duration from `$request_time` when logged) and the count of lines that are not in that
    format. Vectorised: one regex over the whole batch (pandas `str.extract`, RE2 in pyarrow)."""
    table, bad = read_nginx_table(batch)
    return table.to_pandas(types_mapper=pd.ArrowDtype), bad


def read_nginx_table(batch: bytes) -> tuple[Any, int]:
    """`parse_nginx_batch` as a normalised Arrow table."""
    text = batch.decode("utf-8", errors="replace")
    lines = pc.split_pattern(pa.array([text]), pattern="\n").flatten()
    lines = pc.filter(lines, pc.not_equal(pc.utf8_trim_whitespace(lines), ""))
    if len(lines) == 0:
        return COLUMNS.empty_table(), 0
    fields = pd.Series(pd.arrays.ArrowExtensionArray(lines)).str.extract(NGINX_COMBINED)
    request = fields["request"].str.extract(_REQUEST)
    ts = pd.to_datetime(fields["time"], format="%d/%b/%Y:%H:%M:%S %z", utc=True, errors="coerce")
    status = pd.to_numeric(fields["status"], errors="coerce")
    seconds = pd.to_numeric(fields["rt"].where(fields["rt"] != "-"), errors="coerce")
    level = pd.Series("info", index=fields.index).where(status < 400, "warn").where(~(status >= 500), "error")
    user = fields["user"].where(fields["user"] != "-")
    frame = pd.DataFrame({
        "ts": ts.astype("datetime64[us, UTC]"), "level": level, "method": request["method"], "path": request["path"],
        "route": None, "status": status, "duration_ms": seconds * 1000.0, "ip": fields["ip"], "user": user, "msg": None,
    })
    ok = frame["ts"].notna() & frame["status"].notna()
    frame = frame[ok]
    table = pa.Table.from_pandas(frame, schema=COLUMNS, preserve_index=False)
    return with_routes(table), int((~ok).sum())


def read_table(batch: bytes, fmt: LogFormat) -> tuple[Any, int]:
    """One batch in the given format as a normalised Arrow table, and its count of malformed lines."""
    return read_nginx_table(batch) if fmt == "nginx" else read_json_table(batch)
