"""OCDS release and record packages (placeholder: being written; see crawls.engine.kinds)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crawls.engine.extract import Page
from crawls.engine.request import Request
from crawls.engine.rules import Limits


@dataclass(frozen=True)
class OcdsRules:
    pass


def rules_parse(data: object, *, limits: Limits | None = None) -> OcdsRules:
    raise NotImplementedError


def rules_dump(parsed: OcdsRules) -> dict:
    raise NotImplementedError


def read(
    body: bytes,
    *,
    rules: OcdsRules,
    url: str,
    request: Request,
    status: int = 200,
    deadline: float | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Page:
    raise NotImplementedError
