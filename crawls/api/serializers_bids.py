"""Bids as the API shows them: read-only, one shape for lists and exports, history on retrieve."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator

from django.utils import timezone
from rest_framework import serializers

from crawls.models import Bid, BidRevision

BID_OUTPUT_FIELDS = [
    "id", "workspace", "source", "source_name", "url", "title", "department", "views",
    "post_date", "amount", "currency", "deadline", "reference", "status", "procurement_method",
    "classifications", "extra", "first_seen_at", "last_seen_at", "changed_at", "first_crawl",
    "last_crawl", "missed_crawls", "removed_at",
]  # fmt: skip


class BidSerializer(serializers.ModelSerializer):
    """A bid; related rows by id (no query per row), the source's name from the list's join.

    The fields describe the schema; values are written by the export's converters (one place for
    the format, several times faster than field by field on a page of 200).
    """

    source_name = serializers.CharField(read_only=True)

    class Meta:
        model = Bid
        fields = BID_OUTPUT_FIELDS
        read_only_fields = fields

    def to_representation(self, instance):
        """`instance`: a Bid, or a row of the list (a dict of BID_FIELDS and source_name)."""
        if not hasattr(self, "_columns"):
            self._columns = _converters()
        if isinstance(instance, dict):
            return {name: convert(instance[key]) for name, key, convert in self._columns}
        return {name: convert(getattr(instance, key)) for name, key, convert in self._columns}


class BidRevisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = BidRevision
        fields = ["id", "changed_at", "crawl", "changes"]
        read_only_fields = fields


class BidDetailSerializer(BidSerializer):
    revisions = BidRevisionSerializer(
        many=True,
        read_only=True,
        source="recent_revisions",
        help_text='Field history, newest first (the latest 100): {"field": [old, new]} per crawl.',
    )

    class Meta(BidSerializer.Meta):
        fields = [*BID_OUTPUT_FIELDS, "revisions"]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["revisions"] = self.fields["revisions"].to_representation(instance.recent_revisions)
        return data


# --- Export: the list's fields, one line per bid ------------------------------------------------

EXPORT_BLOCK_CHARS = 256 * 1024
_IDS = {"workspace", "source", "first_crawl", "last_crawl"}
_TEXT = {"source_name", "url", "title", "department", "reference", "procurement_method"}
_MOMENTS = {"deadline", "first_seen_at", "last_seen_at", "changed_at", "removed_at"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _converters(*, for_csv: bool = False) -> list[tuple[str, str, Callable]]:
    """(output name, row key, value → cell) per field: the API's forms (datetimes in the current
    time zone, decimals as strings); in CSV, JSON text for `extra` (and None writes as empty)."""
    tz = timezone.get_current_timezone()  # once: it is a context lookup per call

    def moment(value):
        if value is None:
            return None
        text = value.astimezone(tz).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def iso(value):
        return None if value is None else value.isoformat()

    def decimal(value):
        return None if value is None else str(value)

    def same(value):
        return value

    def text(value: str) -> str:
        # Crawled text is untrusted: a cell starting like a formula stays text in spreadsheets.
        return "'" + value if value.startswith(_FORMULA_START) else value

    def joined(values: list[str]) -> str:
        # Codes are "SCHEME:ID" as crawled: untrusted text too.
        return text("; ".join(values))

    def json_text(value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    columns = []
    for name in BID_OUTPUT_FIELDS:
        key = f"{name}_id" if name in _IDS else name  # attribute and .values() key alike
        if name in _MOMENTS:
            convert = moment
        elif name == "post_date":
            convert = iso
        elif name == "amount":
            convert = decimal
        elif for_csv and name in _TEXT:
            convert = text
        elif for_csv and name == "classifications":
            convert = joined
        elif for_csv and name == "extra":
            convert = json_text
        else:
            convert = same
        columns.append((name, key, convert))
    return columns


def export_blocks(rows: Iterator[dict], kind: str) -> Iterator[bytes]:
    """UTF-8 CSV (a header row, then a row per bid) or JSON Lines, in blocks of ~256 KB."""
    columns = _converters(for_csv=kind == "csv")
    buffer = io.StringIO()
    if kind == "csv":
        writer = csv.writer(buffer)
        writer.writerow([name for name, _, _ in columns])
        for row in rows:
            writer.writerow([convert(row[key]) for _, key, convert in columns])
            if buffer.tell() >= EXPORT_BLOCK_CHARS:
                yield _drain(buffer)
    else:
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        for row in rows:
            buffer.write(dumps({name: convert(row[key]) for name, key, convert in columns}))
            buffer.write("\n")
            if buffer.tell() >= EXPORT_BLOCK_CHARS:
                yield _drain(buffer)
    if buffer.tell():
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    block = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return block
