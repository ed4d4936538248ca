"""Bounds of user-supplied JSON: how deep it nests and how big it is, measured without recursion.

Python's json module recurses once per level and raises RecursionError near 1,000 levels; a
document is checked here first, so that JSON nested past JSON_MAX_DEPTH is refused by name
(a 400) wherever it comes from: a request body (crawls/api/parsers.py), JSON typed into a form
(rules, alert filters), or a value a service is given.
"""

from __future__ import annotations

import json
import re

from django.conf import settings

# A JSON string (escapes included), then every run of characters that is not a bracket.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_OPEN = frozenset(b"[{")


class TooDeep(ValueError):
    def __init__(self, limit: int):
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def max_depth() -> int:
    depth: int = settings.JSON_MAX_DEPTH
    return depth


def text_check_depth(data: bytes | str, limit: int | None = None) -> None:
    """Raise TooDeep when JSON text nests arrays and objects deeper than `limit`."""
    limit = max_depth() if limit is None else limit
    raw = data.encode() if isinstance(data, str) else data
    depth = 0
    for byte in _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw)):
        depth = depth + 1 if byte in _OPEN else depth - 1
        if depth > limit:
            raise TooDeep(limit)


def value_check_depth(value: object, limit: int | None = None) -> None:
    """Raise TooDeep when a parsed JSON value nests deeper than `limit`."""
    limit = max_depth() if limit is None else limit
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth + 1 > limit:
                raise TooDeep(limit)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def loads(text: str | bytes) -> object:
    """json.loads after the depth check: TooDeep or json.JSONDecodeError (both ValueError)."""
    text_check_depth(text)
    return json.loads(text)


def json_size(value: object) -> int:
    """Bytes of `value` as compact UTF-8 JSON (check its depth first)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
