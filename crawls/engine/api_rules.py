"""Rules of JSON and XML API sources (placeholder: being written; see crawls.engine.kinds)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crawls.engine.request import Request
from crawls.engine.rules import Limits


@dataclass(frozen=True)
class ApiRules:
    kind: str  # "json" or "xml"


def rules_parse(data: object, *, kind: str, limits: Limits | None = None) -> ApiRules:
    raise NotImplementedError


def rules_dump(parsed: ApiRules) -> dict:
    raise NotImplementedError


def start_requests(parsed: ApiRules, start_urls: Sequence[str]) -> list[Request]:
    raise NotImplementedError
