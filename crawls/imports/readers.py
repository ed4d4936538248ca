"""Streaming readers of an import file: CSV, JSON Lines and OCDS packages (docs/imports.md).

Each reads a binary file object incrementally (never the whole file in memory) and yields one
``Row`` per record, or a ``RowError`` naming its line (CSV, JSONL) or its place in the package
(OCDS: the release's position, 1-based). Bounds: a line longer than ``Limits.line_chars`` is an
error and is skipped, a CSV header of more than ``Limits.fields`` columns or JSON nested deeper
than ``Limits.depth`` levels is refused. What makes the whole file unreadable (no header, a
wrong encoding, an OCDS package broken mid-way) raises ``FormatError``. Pure Python.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import ijson

from crawls import bounds

FORMATS = ("csv", "jsonl", "ocds")
SNIFF_BYTES = 64 * 1024
# Korean boards export CP949 (a superset of EUC-KR) when not UTF-8: the fallback of the sniffer.
FALLBACK_ENCODING = "cp949"
IDENTITY_COLUMNS = ("url", "reference")


class FormatError(ValueError):
    """The file as a whole cannot be read; `field` names the request field to blame."""

    def __init__(self, message: str, *, field: str = "file"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Limits:
    line_chars: int = 1_000_000
    fields: int = 200
    depth: int = 32


@dataclass(slots=True)
class Row:
    line: int
    data: dict[str, Any]


@dataclass(slots=True)
class RowError:
    line: int
    message: str
    field: str = ""


@dataclass(slots=True)
class Counter:
    """Lines the reader has taken so far (the progress of a stream)."""

    lines: int = 0
    too_long: set[int] = field(default_factory=set)


def guess_format(filename: str, declared: str = "") -> str:
    if declared:
        if declared not in FORMATS:
            raise FormatError(f"one of {', '.join(FORMATS)}", field="format")
        return declared
    name = filename.lower()
    for suffix, fmt in ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl")):
        if name.endswith(suffix):
            return fmt
    if name.endswith(".json"):
        return "ocds"
    raise FormatError("cannot tell the format from the file name: give `format`", field="format")


def sniff_encoding(raw: IO[bytes], declared: str = "") -> str:
    """UTF-8 with a BOM, else the declared encoding, else UTF-8 when the head decodes as
    UTF-8, else CP949. Leaves `raw` at its start."""
    head = raw.read(SNIFF_BYTES)
    raw.seek(0)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if declared:
        try:
            return codecs.lookup(declared).name
        except LookupError:
            raise FormatError(f"unknown encoding {declared[:40]!r}", field="encoding") from None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut at the sniffed head's end
            return FALLBACK_ENCODING
    return "utf-8"


def read(
    raw: IO[bytes],
    fmt: str,
    *,
    encoding: str = "",
    limits: Limits | None = None,
    counter: Counter | None = None,
) -> Iterator[Row | RowError]:
    """The records of `raw` in the given format, in file order."""
    limits = limits or Limits()
    counter = counter if counter is not None else Counter()
    if fmt == "ocds":
        yield from _ocds(raw, limits, counter)
        return
    text = io.TextIOWrapper(raw, encoding=sniff_encoding(raw, encoding), newline="")
    try:
        lines = _lines(text, limits, counter)
        yield from (_csv if fmt == "csv" else _jsonl)(lines, limits, counter)
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"line {counter.lines + 1} is not {text.encoding}: {exc.reason}", field="encoding"
        ) from None
    finally:
        text.detach()  # the caller owns `raw`


def _lines(text: io.TextIOWrapper, limits: Limits, counter: Counter) -> Iterator[str]:
    """Physical lines, each at most limits.line_chars; a longer one is skipped (read on in
    chunks, never held) and stands as a blank line, its number in counter.too_long."""
    while True:
        line = text.readline(limits.line_chars + 1)
        if not line:
            return
        counter.lines += 1
        if len(line) > limits.line_chars and not line.endswith(("\n", "\r")):
            while (rest := text.readline(SNIFF_BYTES)) and not rest.endswith(("\n", "\r")):
                pass
            counter.too_long.add(counter.lines)
            yield "\n"
            continue
        yield line


def _too_long(line: int, limits: Limits) -> RowError:
    return RowError(line, f"the line is longer than {limits.line_chars} characters")


def _csv(lines: Iterator[str], limits: Limits, counter: Counter) -> Iterator[Row | RowError]:
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise FormatError(f"line 1: {exc}") from None
    if header is None or 1 in counter.too_long:
        raise FormatError("the file has no header line")
    names = [name.strip().lower().lstrip("\ufeff") for name in header]
    if len(names) > limits.fields:
        raise FormatError(f"the header names {len(names)} columns, more than {limits.fields}")
    if len(set(names)) != len(names) or "" in names:
        raise FormatError("the header names a column twice, or one has no name")
    if "title" not in names or not set(IDENTITY_COLUMNS) & set(names):
        raise FormatError("the header must name a title column and a url or reference column")
    previous = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(previous + 1, f"not CSV: {exc}")
            previous = reader.line_num
            continue
        line, previous = previous + 1, reader.line_num
        if not values:
            if line in counter.too_long:
                yield _too_long(line, limits)
            continue
        if len(values) != len(names):
            yield RowError(line, f"{len(values)} values where the header names {len(names)}")
            continue
        yield Row(line, dict(zip(names, values, strict=True)))


def _jsonl(lines: Iterator[str], limits: Limits, counter: Counter) -> Iterator[Row | RowError]:
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            if line in counter.too_long:
                yield _too_long(line, limits)
            continue
        try:
            bounds.text_check_depth(text, limits.depth)
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # TooDeep and JSONDecodeError included
            yield RowError(line, f"not JSON: {exc}")
            continue
        if not isinstance(data, dict):
            yield RowError(line, f"a line must hold a JSON object, not {type(data).__name__}")
        elif len(data) > limits.fields:
            yield RowError(line, f"{len(data)} keys, more than {limits.fields}")
        else:
            yield Row(line, data)


_ITEMS = {"releases.item": "releases", "records.item": "records"}


def _ocds(raw: IO[bytes], limits: Limits, counter: Counter) -> Iterator[Row | RowError]:
    """Each release of a release package, each record of a record package, as a Row whose
    data is {"package": "releases"|"records", "item": <the object>}; `line` is its position."""
    if raw.read(3) != codecs.BOM_UTF8:
        raw.seek(0)
    depth = 0
    found = False
    builder: Any = None
    start, package = 0, ""
    try:
        for prefix, event, value in ijson.parse(raw, use_float=False):
            if event in ("start_map", "start_array"):
                depth += 1
                if depth > limits.depth:
                    raise FormatError(f"JSON nested deeper than {limits.depth} levels")
            elif event in ("end_map", "end_array"):
                depth -= 1
            if builder is not None:
                builder.event(event, value)
                if depth < start:
                    yield Row(counter.lines, {"package": package, "item": builder.value})
                    builder = None
                continue
            if prefix in _ITEMS and event != "end_array":
                found = True
                package = _ITEMS[prefix]
                counter.lines += 1
                if event != "start_map":
                    yield RowError(counter.lines, f"a {package[:-1]} must be a JSON object")
                    continue
                builder, start = ijson.ObjectBuilder(), depth
                builder.event(event, value)
            elif prefix in ("releases", "records") and event == "start_array":
                found = True
    except ijson.JSONError as exc:
        raise FormatError(f"not JSON after item {counter.lines}: {exc}") from None
    if not found:
        raise FormatError("an OCDS package holds a `releases` or a `records` array")
