"""A deterministic day of the application's JSON-lines logs, with injected incidents and their exact counts.

Lines look like the stand-in's (`sandbox/standin.py`: `json.dumps` of ts, level, service, method, path, route,
status, duration_ms, ip, user, msg; worker lines with job instead of route/status/ip). The normal traffic has
a diurnal shape, lognormal latencies per route, a status mix, users and a skewed pool of source IPs; on top of
it `Injections` adds what the log analysis must find, and `SynthDay.expected` says exactly how much of each.
Everything is a function of the seed, so a test can assert exact counts.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import zstandard


@dataclass(frozen=True)
class Route:
    method: str
    route: str
    id_kind: Literal["", "num", "uuid", "hex"]  # what replaces :id in the path
    median_ms: float
    sigma: float
    weight: float
    msg: str  # the success message; {n} is a small number


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/events", "", 28.0, 0.5, 22, "listed {n} events"),
    Route("GET", "/api/events/:id", "num", 12.0, 0.45, 30, "event {n} served"),
    Route("POST", "/api/events", "", 45.0, 0.5, 5, "created event {n}"),
    Route("PUT", "/api/events/:id", "num", 38.0, 0.5, 4, "updated event {n}"),
    Route("DELETE", "/api/events/:id", "num", 22.0, 0.4, 1, "deleted event {n}"),
    Route("GET", "/api/events/:id/attendees", "num", 34.0, 0.6, 8, "listed {n} attendees"),
    Route("GET", "/api/users/:id", "uuid", 10.0, 0.4, 9, "user profile served"),
    Route("GET", "/api/files/:id", "hex", 60.0, 0.7, 3, "file sent ({n} KB)"),
    Route("GET", "/api/search", "", 110.0, 0.8, 6, "search returned {n} results"),
    Route("POST", "/api/login", "", 85.0, 0.3, 4, "user logged in"),
    Route("GET", "/api/health", "", 1.5, 0.3, 6, "ok"),
    Route("GET", "/admin/dashboard", "", 55.0, 0.4, 1, "dashboard served"),
)
LOGIN = next(i for i, r in enumerate(ROUTES) if r.route == "/api/login")
ADMIN = next(i for i, r in enumerate(ROUTES) if r.route.startswith("/admin"))
HEALTH = next(i for i, r in enumerate(ROUTES) if r.route == "/api/health")
SEARCH = next(i for i, r in enumerate(ROUTES) if r.route == "/api/search")
USERS = tuple(f"user{i:03d}" for i in range(400)) + ("alice", "bob", "carol", "dave")
ADMIN_IPS = ("10.0.0.5", "10.0.0.6", "10.0.0.7")
JOBS = ("send-reminders", "cleanup-sessions", "sync-calendar", "render-tickets")
CLIENT_ERRORS = {400: "bad request: missing field 'name'", 404: "not found", 429: "rate limited"}
#: Error messages of the normal traffic (every day): the templates the history already knows.
ERRORS = (
    "database timeout after {ms} ms on query {hex}",
    "upstream 10.2.{a}.{b}:8080 refused connection",
    "could not send mail to {email}: SMTP 451",
    "file not found: /var/lib/app/uploads/{n}.png",
    "failed to render event {n}: KeyError 'title'",
    "user {uuid} has no calendar",
)
WORKER_ERRORS = ("job {job} failed: timeout after {ms} ms", "job {job} failed: lock held by worker-{n}")
#: The injected new error: its message, and the template the analysis should reduce it to.
NEW_ERROR = "payment webhook signature mismatch for order {uuid} (attempt {n})"
NEW_ERROR_TEMPLATE = "payment webhook signature mismatch for order <uuid> (attempt <num>)"
SUSPICIOUS_PATHS = ("/.env", "/wp-admin/setup-config.php", "/index.php", "/../../etc/passwd", "/.git/config")
SCANNER_IP = "203.0.113.66"
BURST_IP = "198.51.100.23"
NEW_ADMIN_IP = "192.0.2.77"
BURST_AT = timedelta(hours=3, minutes=12, seconds=5)
#: Share of the day's lines per hour (UTC): quiet nights, busy office hours.
HOUR_SHAPE = np.array([2, 1.5, 1, 1, 1, 1.5, 3, 5, 8, 9, 9, 8, 7, 8, 9, 9, 8, 7, 6, 5, 4, 3.5, 3, 2.5])


@dataclass(frozen=True)
class Injections:
    """What to add to the normal traffic (all off by default)."""

    new_errors: int = 0  # lines of NEW_ERROR (level error, status 500 on POST /api/events)
    slow_route: str | None = None  # this route's latencies are multiplied by slow_factor
    slow_factor: float = 1.0
    burst: int = 0  # 401s on /api/login from BURST_IP, all within 50 s from BURST_AT
    suspicious: int = 0  # requests from SCANNER_IP to SUSPICIOUS_PATHS (round robin), 404
    new_admin: int = 0  # requests to /admin/dashboard from NEW_ADMIN_IP
    malformed: float = 0.0  # share of malformed lines added (of the valid lines), five kinds round robin
    other_day: int = 0  # valid lines dated the day before (late lines of yesterday's archive)
    no_route: float = 0.0  # share of API lines written without "route" (older app versions)


@dataclass(frozen=True)
class Expected:
    """Exactly what the generated lines hold."""

    lines: int  # non-blank lines, malformed ones included
    malformed: int
    in_day: int  # valid lines dated on the day
    requests: int  # API lines dated on the day
    errors: int  # lines on the day with level error or status >= 500
    new_error_template: str
    new_errors: int
    burst_ip: str
    burst: int
    suspicious: dict[str, int]  # path → requests, all from SCANNER_IP
    new_admin_ip: str
    new_admin: int
    admin_ips: frozenset[str]  # of the normal traffic
    auth_failures: dict[str, int] = field(default_factory=dict)  # source ip → failed logins on the day


@dataclass(frozen=True)
class SynthDay:
    data: bytes
    expected: Expected

    def lines(self) -> list[bytes]:
        return self.data.splitlines()


def _ips(rng: np.random.Generator, n: int) -> list[str]:
    """A pool of n distinct client addresses."""
    nums = rng.choice(np.arange(1, 250 * 250 * 250), size=n, replace=False)
    return [f"10.{1 + v // 62500}.{1 + (v // 250) % 250}.{1 + v % 250}" for v in nums.tolist()]


def _ts(day: date, ms: npt.NDArray[np.int64]) -> list[str]:
    """ISO-8601 UTC timestamps with milliseconds for millisecond offsets from the day's midnight."""
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    out, prefix_cache = [], {}
    for v in ms.tolist():
        d, rem = divmod(v, 86_400_000)
        if d not in prefix_cache:
            prefix_cache[d] = (base + timedelta(days=d)).strftime("%Y-%m-%dT")
        h, rem = divmod(rem, 3_600_000)
        m, rem = divmod(rem, 60_000)
        s, milli = divmod(rem, 1000)
        out.append(f"{prefix_cache[d]}{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z")
    return out


class _Fill:
    """Random values for message placeholders, from the day's generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def __call__(self, text: str, job: str = "") -> str:
        r = self.rng
        return text.format(
            ms=int(r.integers(1000, 30000)), hex=f"{int(r.integers(0xA << 58, 0xF << 58)):015x}", a=int(r.integers(0, 255)),
            b=int(r.integers(1, 255)), email=f"{USERS[int(r.integers(0, len(USERS)))]}@example.org",
            n=int(r.integers(1, 5000)), uuid=_uuid(r), job=job)


def _uuid(r: np.random.Generator) -> str:
    h = f"{int(r.integers(0, 2**63)):016x}{int(r.integers(0, 2**63)):016x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _path(route: Route, ident: int, rng: np.random.Generator) -> str:
    if route.id_kind == "num":
        return route.route.replace(":id", str(ident))
    if route.id_kind == "uuid":
        return route.route.replace(":id", _uuid(rng))
    if route.id_kind == "hex":
        return route.route.replace(":id", f"{ident:08x}{ident * 2654435761 % 2**64:016x}")
    if route.route == "/api/search":
        return f"/api/search?q=term{ident % 97}"
    return route.route


def _api_line(ts: str, level: str, method: str, path: str, route: str | None, status: int, ms: float, ip: str,
              user: str | None, msg: str) -> str:
    r = "" if route is None else f'"route": "{route}", '
    u = "null" if user is None else f'"{user}"'
    msg = msg.replace("\\", "\\\\").replace('"', '\\"')
    return (f'{{"ts": "{ts}", "level": "{level}", "service": "api", "method": "{method}", "path": "{path}", {r}'
            f'"status": {status}, "duration_ms": {ms:.1f}, "ip": "{ip}", "user": {u}, "msg": "{msg}"}}')


MALFORMED_KINDS = ("truncated", "stack trace", "binary", "broken json", "bad ts")


def _malformed(kind: str, i: int, sample: str, rng: np.random.Generator) -> bytes:
    if kind == "truncated":  # a line cut by a full disk or a crash: starts like JSON, never ends with }
        return sample[: max(10, len(sample) // 2 + i % 40)].rstrip("}").encode()
    if kind == "stack trace":
        return (b'  File "/app/handlers/events.py", line 212, in render' if i % 2 else
                b"Traceback (most recent call last):")
    if kind == "binary":  # NUL-padded garbage, no newline in it
        raw = rng.integers(0, 256, size=24, dtype=np.uint8).tobytes().replace(b"\n", b"\x00").replace(b"\r", b"\x00")
        return b"\x00\x00" + raw
    if kind == "broken json":  # looks like a JSON object; invalid inside
        return b'{"ts": "2026-01-01T00:00:00.000Z", "level": info, "msg": "unquoted level"}'
    return b'{"ts": "yesterday at noon", "level": "info", "service": "api", "msg": "bad timestamp"}'


def generate_day(day: date, lines: int, *, seed: int = 1, inject: Injections = Injections()) -> SynthDay:
    """`lines` valid lines of normal traffic on `day` (≈ 88 % API, 12 % worker) plus the injections, in time
    order, malformed lines at random places. The same arguments give the same bytes."""
    return _build(day, lines, seed, inject, chunk_lines=None)[0]


def iter_day(day: date, lines: int, *, seed: int = 1, inject: Injections = Injections(),
             chunk_lines: int = 200_000) -> Iterator[bytes]:
    """The bytes of `generate_day` in pieces of about `chunk_lines` lines (for files of millions of lines)."""
    return _build(day, lines, seed, inject, chunk_lines)[1]


def write_day(path: Path, day: date, lines: int, *, seed: int = 1, inject: Injections = Injections(),
              compression: Literal["none", "gzip", "zstd"] = "none", level: int | None = None) -> Expected:
    """Write the day's log to `path` (gzip: level 6 by default, zstd: level 3), streamed; what it holds."""
    expected, chunks = _build(day, lines, seed, inject, chunk_lines=200_000)
    with path.open("wb") as raw:
        if compression == "gzip":
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level or 6, mtime=0) as gz:
                for chunk in chunks:
                    gz.write(chunk)
        elif compression == "zstd":
            with zstandard.ZstdCompressor(level=level or 3).stream_writer(raw, closefd=False) as zw:
                for chunk in chunks:
                    zw.write(chunk)
        else:
            for chunk in chunks:
                raw.write(chunk)
    return expected.expected


def compress(data: bytes, compression: Literal["gzip", "zstd", "none"]) -> bytes:
    """`data` as a gzip member or a zstd frame (or unchanged)."""
    if compression == "gzip":
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


def _build(day: date, lines: int, seed: int, inject: Injections,
           chunk_lines: int | None) -> tuple[SynthDay, Iterator[bytes]]:
    rng = np.random.default_rng(seed)
    fill = _Fill(np.random.default_rng(seed + 1_000_003))
    ips = _ips(rng, 2000)
    ip_weight = 1.0 / np.arange(1, len(ips) + 1) ** 0.8
    ip_weight /= ip_weight.sum()

    # -- normal traffic: when (sorted), API or worker, which route, status, latency, who
    hour = rng.choice(24, size=lines, p=HOUR_SHAPE / HOUR_SHAPE.sum())
    ms = np.sort(hour * 3_600_000 + rng.integers(0, 3_600_000, size=lines))
    is_worker = rng.random(lines) < 0.12
    weights = np.array([r.weight for r in ROUTES])
    route = rng.choice(len(ROUTES), size=lines, p=weights / weights.sum())
    medians = np.array([r.median_ms for r in ROUTES])
    sigmas = np.array([r.sigma for r in ROUTES])
    dur = np.exp(np.log(medians[route]) + sigmas[route] * rng.standard_normal(lines))
    if inject.slow_route is not None:
        dur[route == next(i for i, r in enumerate(ROUTES) if r.route == inject.slow_route)] *= inject.slow_factor
    u = rng.random(lines)
    status = np.full(lines, 200)
    status[np.isin(route, [2])] = 201
    status[u < 0.030] = 404
    status[u < 0.012] = 400
    status[u < 0.004] = 500
    status[u < 0.0008] = 503
    status[(route == SEARCH) & (rng.random(lines) < 0.003)] = 429
    login_fail = (route == LOGIN) & (rng.random(lines) < 0.08)
    status[login_fail] = 401
    status[route == ADMIN] = 200
    client = rng.choice(len(ips), size=lines, p=ip_weight)
    user = rng.integers(0, len(USERS), size=lines)
    anonymous = (rng.random(lines) < 0.35) | (route == LOGIN) | (route == HEALTH)
    ident = rng.integers(1, 100_000, size=lines)
    admin_ip = rng.integers(0, len(ADMIN_IPS), size=lines)
    first_admin = np.flatnonzero((route == ADMIN) & ~is_worker)[: len(ADMIN_IPS)]
    admin_ip[first_admin] = np.arange(len(first_admin))  # each admin address appears at least once
    job = rng.integers(0, len(JOBS), size=lines)
    worker_error = rng.random(lines) < 0.01
    no_route = rng.random(lines) < inject.no_route

    # -- injected lines: (ms, line) pairs merged by time
    extra: list[tuple[int, str]] = []
    day_ms = 86_400_000
    for i in range(inject.new_errors):
        t = int(rng.integers(0, day_ms))
        extra.append((t, _api_line("", "error", "POST", "/api/events", "/api/events", 500,
                                   float(rng.lognormal(np.log(45), 0.5)), ips[int(rng.integers(0, 50))],
                                   USERS[i % len(USERS)], fill(NEW_ERROR))))
    base = int(BURST_AT.total_seconds() * 1000)
    for i in range(inject.burst):
        extra.append((base + i * 50_000 // max(1, inject.burst), _api_line(
            "", "warn", "POST", "/api/login", "/api/login", 401, 80.0 + i % 7, BURST_IP, None,
            f"authentication failed for user {USERS[i % len(USERS)]}")))
    suspicious: dict[str, int] = {}
    for i in range(inject.suspicious):
        p = SUSPICIOUS_PATHS[i % len(SUSPICIOUS_PATHS)]
        suspicious[p] = suspicious.get(p, 0) + 1
        extra.append((int(rng.integers(0, day_ms)), _api_line("", "warn", "GET", p, None, 404, 1.2, SCANNER_IP, None,
                                                              "no route matched")))
    for _ in range(inject.new_admin):
        extra.append((int(rng.integers(0, day_ms)), _api_line("", "info", "GET", "/admin/dashboard", "/admin/dashboard",
                                                              200, 50.0, NEW_ADMIN_IP, "dave", "dashboard served")))
    other_day = [(int(rng.integers(-600_000, -1)), "other") for _ in range(inject.other_day)]
    extra_ms = np.array([t for t, _ in extra + other_day], dtype=np.int64)
    extra_lines = [s for _, s in extra] + ["other"] * len(other_day)

    n_bad = round(lines * inject.malformed)
    bad_at = np.sort(rng.integers(0, lines + 1, size=n_bad))  # inserted before normal line i

    # -- expected counts, from the arrays above (the day's lines only)
    api = ~is_worker
    auth: dict[str, int] = {}
    for c in client[api & login_fail].tolist():
        auth[ips[c]] = auth.get(ips[c], 0) + 1
    if inject.burst:
        auth[BURST_IP] = auth.get(BURST_IP, 0) + inject.burst
    errors = int((api & (status >= 500)).sum() + (is_worker & worker_error).sum()) + inject.new_errors
    n_extra_day = inject.new_errors + inject.burst + inject.suspicious + inject.new_admin
    expected = Expected(
        lines=lines + len(extra_lines) + n_bad, malformed=n_bad, in_day=lines + n_extra_day,
        requests=int(api.sum()) + n_extra_day, errors=errors, new_error_template=NEW_ERROR_TEMPLATE,
        new_errors=inject.new_errors, burst_ip=BURST_IP, burst=inject.burst, suspicious=suspicious,
        new_admin_ip=NEW_ADMIN_IP, new_admin=inject.new_admin,
        admin_ips=frozenset(ADMIN_IPS[i] for i in admin_ip[(route == ADMIN) & api].tolist()), auth_failures=auth)

    order = np.argsort(extra_ms, kind="stable")
    extra_ms, extra_lines = extra_ms[order], [extra_lines[i] for i in order.tolist()]
    sample = _api_line("2026-12-06T08:40:15.123Z", "info", "GET", "/api/events/42", "/api/events/:id", 200, 12.5,
                       "10.1.2.3", "alice", "event 42 served")

    def rows(lo: int, hi: int) -> Iterator[str]:
        """The normal lines lo..hi (plain lists: indexing numpy arrays per line is slow)."""
        cols = (is_worker, job, worker_error, dur, route, status, admin_ip, client, anonymous, user, ident, no_route)
        for ts, w, j, we, d, r, s, ai, c, anon, us, idn, nr in zip(_ts(day, ms[lo:hi]), *(a[lo:hi].tolist() for a in cols),
                                                                  strict=True):
            if w:
                name = JOBS[j]
                if we:
                    yield (f'{{"ts": "{ts}", "level": "error", "service": "worker", "job": "{name}", '
                           f'"duration_ms": {d * 40:.1f}, "msg": "{fill(WORKER_ERRORS[idn % 2], name)}"}}')
                else:
                    yield (f'{{"ts": "{ts}", "level": "info", "service": "worker", "job": "{name}", '
                           f'"duration_ms": {d * 10:.1f}, "msg": "job {name} done ({idn % 50} items)"}}')
                continue
            rt = ROUTES[r]
            if s >= 500:
                level, msg = "error", fill(ERRORS[idn % len(ERRORS)])
            elif s == 401:
                level = "warn"
                msg = f"{'authentication failed' if idn % 2 else 'invalid credentials'} for user {USERS[us]}"
            elif s >= 400:
                level, msg = "warn", CLIENT_ERRORS[s]
            else:
                level, msg = "info", rt.msg.format(n=idn % 60)
            yield _api_line(ts, level, rt.method, _path(rt, idn, rng), None if nr else rt.route, s, d,
                            ADMIN_IPS[ai] if r == ADMIN else ips[c], None if anon else USERS[us], msg)

    def chunks() -> Iterator[bytes]:
        step = chunk_lines or lines + 1
        e, b = 0, 0
        for lo in range(0, lines + 1, step):
            hi = min(lines, lo + step)
            out: list[str] = []
            for i, text in zip(range(lo, hi), rows(lo, hi), strict=True):
                t = ms[i]
                while e < len(extra_lines) and extra_ms[e] <= t:
                    out.append(_extra(day, int(extra_ms[e]), extra_lines[e], sample))
                    e += 1
                while b < n_bad and bad_at[b] <= i:
                    out.append(_malformed(MALFORMED_KINDS[b % 5], b, sample, rng).decode("latin-1"))
                    b += 1
                out.append(text)
            if hi == lines:
                out += [_extra(day, int(t), s, sample) for t, s in zip(extra_ms[e:].tolist(), extra_lines[e:], strict=True)]
                out += [_malformed(MALFORMED_KINDS[k % 5], k, sample, rng).decode("latin-1") for k in range(b, n_bad)]
                e, b = len(extra_lines), n_bad
            if out:
                yield ("\n".join(out) + "\n").encode("latin-1")

    if chunk_lines is None:
        return SynthDay(b"".join(chunks()), expected), iter(())
    return SynthDay(b"", expected), chunks()


def _extra(day: date, ms: int, text: str, sample: str) -> str:
    """An injected line with its timestamp filled in (a line of the day before: a copy of the sample)."""
    ts = _ts(day, np.array([ms], dtype=np.int64))[0]
    if text == "other":
        return sample.replace("2026-12-06T08:40:15.123Z", ts)
    return text.replace('"ts": ""', f'"ts": "{ts}"', 1)
