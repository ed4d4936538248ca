"""Paths of JSON and XML API rules: JMESPath (json) or XPath 1.0 (xml) expressions checked
(``path_problem``) and compiled once per process, cached (lxml's XPath objects do not pickle);
``PathParser`` is what the parsers of API rules share: the kind, the limits, the errors found so
far, and the check of one path. Pure Python (no Django).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jmespath  # type: ignore[import-untyped]
import jmespath.exceptions  # type: ignore[import-untyped]
from lxml import etree  # type: ignore[import-untyped]

from crawls.engine import rule_checks as checks
from crawls.engine.rule_limits import Limits

JSON, XML = "json", "xml"


@lru_cache(maxsize=512)
def jmespath_compiled(path: str) -> Any:
    return jmespath.compile(path)


@lru_cache(maxsize=512)
def xpath_compiled(path: str) -> etree.XPath:
    return etree.XPath(path, smart_strings=False)


_PROBE = b"<probe a='1'><x>1</x></probe>"


def path_problem(path: object, kind: str, max_length: int) -> str | None:
    """What is wrong with a JMESPath (json) or XPath (xml) expression, or None."""
    language = "JMESPath expression" if kind == JSON else "XPath expression"
    example = "'response.body.items.item'" if kind == JSON else "'//items/item'"
    if not isinstance(path, str) or not path.strip():
        shown = repr(path) if isinstance(path, str) else checks.kind(path)
        return f"expected a non-empty {language} such as {example}, not {shown}"
    if len(path) > max_length:
        return f"{language} is {len(path)} characters long; at most {max_length} are allowed"
    if kind == JSON:
        try:
            jmespath_compiled(path.strip())
        except jmespath.exceptions.JMESPathError as exc:
            return f"invalid {language} {path!r}: {' '.join(str(exc).split())}"
        return None
    try:
        compiled = xpath_compiled(path.strip())
        compiled(etree.fromstring(_PROBE))  # undefined variables and functions show up here
    except etree.XPathError as exc:
        return f"invalid {language} {path!r}: {exc}"
    return None


# What a path leads to, named in the messages about a missing one.
WHAT = {
    "items": "the list of items (JMESPath for json, XPath for xml)",
    "total": "total item count",
    "next": "next page's URL",
    "cursor": "next page's cursor",
    "when": "the publisher's result code",
    "path": "the field's value within each item",
}


class PathParser:
    """The state of one rules_parse call: problems go into `errors`, keyed by path."""

    def __init__(self, kind: str, limits: Limits, errors: dict[str, str]) -> None:
        self.kind = kind
        self.limits = limits
        self.errors = errors

    def path(self, where: str, value: object, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                name = where.rpartition(".")[2]
                self.errors[where] = f"{name} is required: a path to {WHAT.get(name, name)}"
            return None
        problem = path_problem(value, self.kind, self.limits.selector_length)
        if problem is not None:
            self.errors[where] = problem
            return None
        assert isinstance(value, str)  # noqa: S101 - path_problem checked it
        return value.strip()
