"""Reading JSON and XML API responses (placeholder: being written; see crawls.engine.kinds)."""

from __future__ import annotations

from collections.abc import Callable

from crawls.engine.api_rules import ApiRules
from crawls.engine.extract import Page
from crawls.engine.request import Request


def read(
    body: bytes,
    *,
    rules: ApiRules,
    url: str,
    request: Request,
    status: int = 200,
    link_next: str | None = None,
    deadline: float | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Page:
    raise NotImplementedError
