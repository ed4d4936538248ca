"""Reading an access log: Forest's JSON lines (project/logs.py), bounded, bad lines counted.

A line of logger "forest.access" gives a request: its method, path (with query), status and
duration, from the line's fields or, in logs written before they existed, from its message
("GET /api/v1/bids/?page_size=5 200 12.3ms"). Lines of other loggers are passed over.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.urls import Resolver404, resolve

ACCESS_LOGGER = "forest.access"
MAX_LINE = 64 * 1024  # bytes: an access line is far shorter
MAX_BAD_REPORTED = 50  # bad lines listed by number (all are counted)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNRESOLVED = "(unresolved)"

_MESSAGE = re.compile(r"^([A-Z]{3,10}) (/\S*) (\d{3}) (\d+(?:\.\d+)?)ms$")
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


class LogTooLarge(ValueError):
    """The log file is larger than the bound given."""


@dataclass(frozen=True)
class Entry:
    """One recorded request: `start` in seconds since the epoch (the line's time less the
    duration: the line is written when the response is ready)."""

    line: int
    start: float
    method: str
    path: str
    status: int
    duration_ms: float


@dataclass
class LogRead:
    entries: list[Entry] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line number, why): the first few
    bad_count: int = 0
    other_lines: int = 0  # JSON lines of other loggers
    truncated: bool = False  # stopped at `limit` entries

    def add_bad(self, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < MAX_BAD_REPORTED:
            self.bad.append((line, reason))


def _timestamp(value: Any) -> float:
    """The line's time: logging's asctime ("2026-12-05 04:10:29,123", local time) or ISO 8601."""
    if not isinstance(value, str):
        raise ValueError("no time")
    text = value.replace(",", ".", 1)
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.astimezone()  # asctime is the server's local time
    return moment.timestamp()


def parse_line(raw: str) -> tuple[Entry | None, str | None]:
    """(entry, None) for an access line, (None, None) for another logger's, (None, why) if bad.
    The entry's line number is 0: the reader sets it."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None, "not JSON"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    if data.get("logger") != ACCESS_LOGGER:
        return None, None
    method, path, status, duration = (
        data.get("method"), data.get("path"), data.get("status"), data.get("duration_ms"),
    )  # fmt: skip
    if not (isinstance(method, str) and isinstance(path, str) and isinstance(status, int)):
        found = _MESSAGE.match(str(data.get("message", "")))
        if found is None:
            return None, "an access line without method, path and status"
        method, path, status, duration = found[1], found[2], int(found[3]), float(found[4])
    if not (path.startswith("/") and method.isalpha() and method.isupper() and len(method) <= 10):
        return None, "a malformed method or path"
    if not isinstance(duration, int | float) or duration < 0:
        return None, "a malformed duration"
    try:
        end = _timestamp(data.get("time"))
    except ValueError:
        return None, "a missing or malformed time"
    return Entry(0, end - duration / 1000, method, path, status, float(duration)), None


def read_stream(stream: IO[bytes], *, limit: int | None = None) -> LogRead:
    """The access entries of a stream of JSON lines, in time order; at most `limit` of them."""
    result = LogRead()
    number = 0
    while True:
        chunk = stream.readline(MAX_LINE + 1)
        if not chunk:
            break
        number += 1
        if len(chunk) > MAX_LINE and not chunk.endswith(b"\n"):
            result.add_bad(number, f"longer than {MAX_LINE} bytes")
            while chunk and not chunk.endswith(b"\n"):  # the rest of the long line
                chunk = stream.readline(MAX_LINE + 1)
            continue
        try:
            text = chunk.decode("utf-8").strip()
        except UnicodeDecodeError:
            result.add_bad(number, "not UTF-8")
            continue
        if not text:
            continue
        entry, reason = parse_line(text)
        if reason is not None:
            result.add_bad(number, reason)
        elif entry is None:
            result.other_lines += 1
        else:
            result.entries.append(dataclasses.replace(entry, line=number))
            if limit is not None and len(result.entries) >= limit:
                result.truncated = True
                break
    result.entries.sort(key=lambda e: (e.start, e.line))
    return result


def read_log(path: Path, *, max_bytes: int, limit: int | None = None) -> LogRead:
    """read_stream of a file, refused (LogTooLarge) when it is over `max_bytes`."""
    size = path.stat().st_size
    if size > max_bytes:
        raise LogTooLarge(f"{path} is {size} bytes, over the bound of {max_bytes} (--max-bytes)")
    with path.open("rb") as stream:
        return read_stream(stream, limit=limit)


# --- Routes ---------------------------------------------------------------------------------


def normalize_route(route: str) -> str:
    """Django's route, readable: DRF's regex patterns ("api/v1/^bids/(?P<pk>[^/.]+)/$") as
    path patterns ("api/v1/bids/<pk>/")."""
    route = _NAMED_GROUP.sub(lambda m: f"<{m[1]}>", route)
    return route.replace("^", "").replace("$", "").replace("\\.", ".")


@dataclass(frozen=True)
class Resolved:
    route: str
    kwargs: dict[str, str]


def resolve_path(path: str) -> Resolved:
    """The URL pattern of `path` (its query left out) and the values it captured, as text."""
    try:
        match = resolve(path.partition("?")[0])
    except Resolver404:
        return Resolved(UNRESOLVED, {})
    return Resolved(normalize_route(match.route), {k: str(v) for k, v in match.kwargs.items()})


def entries_by_route(entries: list[Entry]) -> Iterator[tuple[Entry, Resolved]]:
    for entry in entries:
        yield entry, resolve_path(entry.path)
