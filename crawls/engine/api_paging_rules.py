"""Pagination and error specs of JSON and XML API rules: how the pages follow one another
(``Pagination``, by style) and how the publisher says something went wrong (``ErrorEnvelope``).
Pure Python (no Django).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from crawls.engine import rule_checks as checks
from crawls.engine.api_paths import WHAT, PathParser
from crawls.engine.api_template import MAX_PAGES, Pagination

STYLES = ("page", "offset", "next", "cursor", "link", "none")
MAX_PAGES_LIMIT = 100_000  # the largest max_pages rules may ask for

_PAGINATION_KEYS = ("style", "start", "size", "total", "max_pages", "next", "cursor")
_ERROR_KEYS = ("when", "ok", "message")


@dataclass(frozen=True)
class ErrorEnvelope:
    when: str
    ok: tuple[str, ...] = ()  # empty: any non-empty value of `when` is an error
    message: tuple[str, ...] = ()  # paths; their values joined with ": "


class PagingParser(PathParser):
    """The pagination and error parts of API rules (problems keyed "pagination..."/"error...")."""

    def pagination(self, value: object) -> Pagination:
        where = "pagination"
        if value is None:
            return Pagination()
        if not isinstance(value, Mapping):
            self.errors[where] = (
                f"pagination must be an object with {', '.join(_PAGINATION_KEYS)}; "
                f"not {checks.kind(value)}"
            )
            return Pagination()
        before = len(self.errors)
        for key in value:
            if key not in _PAGINATION_KEYS:
                self.errors[f"{where}.{key}"] = (
                    f"unknown key {key!r} in pagination; expected one of: "
                    f"{', '.join(_PAGINATION_KEYS)}"
                )
        style = value.get("style", "none")
        if style not in STYLES:
            self.errors[f"{where}.style"] = (
                f"style must be one of {', '.join(STYLES)}; not {style!r}"
            )
            return Pagination()
        start_default = 0 if style == "offset" else 1
        start: int | None = start_default
        if style in ("page", "offset") and value.get("start") is not None:
            start = self._whole(f"{where}.start", value["start"], 0, 10**9)
        size = None
        if value.get("size") is not None:
            size = self._whole(f"{where}.size", value["size"], 1, 100_000)
        max_pages = self._whole(
            f"{where}.max_pages", value.get("max_pages", MAX_PAGES), 1, MAX_PAGES_LIMIT
        )
        paths = {}
        for key, styles in (
            ("total", ("page", "offset")),
            ("next", ("next",)),
            ("cursor", ("cursor",)),
        ):
            if value.get(key) is None:
                if styles == (style,) and key != "total":
                    self.errors[f"{where}.{key}"] = (
                        f"pagination style {style!r} needs {key}: a path to the {WHAT[key]}"
                    )
                continue
            if style not in styles:
                self.errors[f"{where}.{key}"] = (
                    f"{key} only applies to pagination style {' or '.join(map(repr, styles))}, "
                    f"not {style!r}"
                )
                continue
            paths[key] = self.path(f"{where}.{key}", value[key])
        if style == "offset" and size is None:
            self.errors[f"{where}.size"] = "pagination style 'offset' needs size: the page size"
        if paths.get("total") and size is None:
            self.errors[f"{where}.size"] = (
                "total needs size: how many items a page holds, to count the pages"
            )
        if value.get("start") is not None and style not in ("page", "offset"):
            self.errors[f"{where}.start"] = "start only applies to pagination style page or offset"
        if len(self.errors) > before:
            return Pagination(style=style)
        return Pagination(
            style=style,
            start=start if start is not None else start_default,  # 1 (unused) for other styles
            size=size,
            total=paths.get("total"),
            max_pages=max_pages or MAX_PAGES,
            next=paths.get("next"),
            cursor=paths.get("cursor"),
        )

    def _whole(self, where: str, value: object, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.errors[where] = (
                f"{where.rpartition('.')[2]} must be a whole number from {low} to {high}, "
                f"not {value!r}"
            )
            return None
        return value

    def error(self, value: object) -> ErrorEnvelope | None:
        where = "error"
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.errors[where] = (
                f"error must be an object with {', '.join(_ERROR_KEYS)}; not {checks.kind(value)}"
            )
            return None
        before = len(self.errors)
        for key in value:
            if key not in _ERROR_KEYS:
                self.errors[f"{where}.{key}"] = (
                    f"unknown key {key!r} in error; expected one of: {', '.join(_ERROR_KEYS)}"
                )
        when = self.path(f"{where}.when", value.get("when"), required=True)
        ok = value.get("ok", [])
        if isinstance(ok, str | int) and not isinstance(ok, bool):
            ok = [ok]
        if not isinstance(ok, list | tuple) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in ok
        ):
            self.errors[f"{where}.ok"] = (
                f'ok must be a list of the values that mean success, such as ["00"]; '
                f"not {checks.kind(ok)}"
            )
            ok = []
        message = value.get("message", [])
        if isinstance(message, str):
            message = [message]
        messages: list[str] = []
        if not isinstance(message, list | tuple) or len(message) > 9:
            self.errors[f"{where}.message"] = (
                f"message must be a path or a list of up to 9 paths, not {checks.kind(message)}"
            )
        else:
            for index, item in enumerate(message):
                path = f"{where}.message" if len(message) == 1 else f"{where}.message[{index}]"
                if found := self.path(path, item):
                    messages.append(found)
        if len(self.errors) > before or when is None:
            return None
        return ErrorEnvelope(when, tuple(str(v).strip() for v in ok), tuple(messages))
