"""Canonical URLs and stable hashes: one page, one key, however a board happens to link to it.

``canonicalize`` builds on w3lib (query sorted, percent-encoding normalised, fragment dropped)
and also removes the rules' ignore_params and default ports, which w3lib keeps. Pure Python.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from w3lib.url import canonicalize_url, url_query_cleaner

_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonicalize(url: str, *, ignore_params: Iterable[str] = ()) -> str:
    """The canonical form of url; idempotent. ValueError for a bad port or IPv6 host."""
    canonical = canonicalize_url(url.strip())
    ignored = tuple(ignore_params)
    if ignored and "?" in canonical:
        # unique=False: w3lib's default keeps only the first of repeated keys (?a=1&a=2).
        canonical = url_query_cleaner(canonical, _encoded_keys(ignored), remove=True, unique=False)
    parts = urlsplit(canonical)
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if parts.port is not None and _DEFAULT_PORTS.get(scheme) == parts.port:
        netloc = netloc.rpartition(":")[0]
    if scheme != parts.scheme or netloc != parts.netloc:
        canonical = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    return canonical


def url_hash(canonical: str) -> bytes:
    """16-byte BLAKE2b digest of a canonical URL (the key stored in a bytea column)."""
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).digest()


def content_hash(fields: Mapping[str, object]) -> str:
    """Hex digest of the typed field values; equal values give equal digests."""
    text = json.dumps(
        fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_plain
    )
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def _plain(value: object) -> object:
    """JSON stand-in for values json cannot write, the same however they were obtained."""
    if isinstance(value, Decimal):
        # normalize(): 1234.50 read back from a numeric column equals freshly parsed 1234.5.
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=repr) if not isinstance(value, tuple) else list(value)
    raise TypeError(f"cannot hash a {type(value).__name__} field value")


@lru_cache(maxsize=256)
def _encoded_keys(params: tuple[str, ...]) -> tuple[str, ...]:
    """Parameter names as they appear in a canonical query (e.g. non-ASCII percent-encoded)."""
    keys = set(params)
    for param in params:
        keys.add(canonicalize_url(f"http://x/?{param}=").partition("?")[2].removesuffix("="))
    return tuple(sorted(keys))
