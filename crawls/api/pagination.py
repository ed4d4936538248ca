"""Keyset ("cursor") pagination for every list: opaque, signed cursors, bounded pages.

A cursor carries the ordering values of the last row served, signed so that a tampered cursor
is refused (400) rather than trusted; pages are `WHERE (a, b) < (x, y) ORDER BY a, b LIMIT n`,
so the thousandth page costs what the first does. Orderings are descending on non-null
columns, with `id` last as the tie-breaker (nullable columns go last: see KeysetPagination).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections import OrderedDict
from decimal import Decimal

from django.core import signing
from django.db.models import F, Q
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
_SALT = "forest.cursor"


def _encode(value):
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    return value


def _decode(value):
    if isinstance(value, dict):
        if "dt" in value:
            return dt.datetime.fromisoformat(value["dt"])
        if "d" in value:
            return dt.date.fromisoformat(value["d"])
        if "n" in value:
            return Decimal(value["n"])
    return value


def page_size_from(request) -> int:
    raw = request.query_params.get("page_size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ValidationError({"page_size": [f"must be an integer from 1 to {MAX_PAGE_SIZE}"]})
    return int(raw)


class KeysetPagination(pagination.BasePagination):
    """Pages over `ordering` (field names, all descending, ending with "id").

    A nullable first field sorts NULLS LAST: the cursor then moves from the non-null rows into
    the null ones, ordered by id.
    """

    cursor_query_param = "cursor"
    ordering: tuple[str, ...] = ("id",)
    nullable: frozenset[str] = frozenset()

    def get_ordering(self, request, view) -> tuple[str, ...]:
        return getattr(view, "keyset_ordering", None) or self.ordering

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = page_size_from(request)
        self.fields = self.get_ordering(request, view)
        self.nullable = frozenset(getattr(view, "keyset_nullable", self.nullable))
        position = self._position(request)
        order = [
            F(name).desc(nulls_last=True) if name in self.nullable else F(name).desc()
            for name in self.fields
        ]
        queryset = queryset.order_by(*order)
        if position is not None:
            queryset = queryset.filter(self._after(position))
        rows = list(queryset[: self.page_size + 1])
        self.has_next = len(rows) > self.page_size
        self.rows = rows[: self.page_size]
        return self.rows

    def _after(self, values: list) -> Q:
        """Rows strictly after `values` in the descending (NULLS LAST) order."""
        condition = Q()
        equal = Q()
        for name, value in zip(self.fields, values, strict=True):
            if value is None:  # within the trailing nulls: only the later fields move on
                equal &= Q(**{f"{name}__isnull": True})
                continue
            step = Q(**{f"{name}__lt": value})
            if name in self.nullable:
                step |= Q(**{f"{name}__isnull": True})
            condition |= equal & step
            equal &= Q(**{name: value})
        return condition

    def _position(self, request) -> list | None:
        raw = request.query_params.get(self.cursor_query_param)
        if not raw:
            return None
        try:
            data = signing.loads(base64.urlsafe_b64decode(raw.encode()).decode(), salt=_SALT)
            values = [_decode(v) for v in data["v"]]
            if data["o"] != list(self.fields) or len(values) != len(self.fields):
                raise ValueError("ordering changed")
        except (signing.BadSignature, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ValidationError(
                {"cursor": ["invalid or stale cursor: start again without it"]}
            ) from exc
        return values

    def _cursor(self, row) -> str:
        values = [_encode(getattr(row, name)) for name in self.fields]
        signed = signing.dumps({"o": list(self.fields), "v": values}, salt=_SALT, compress=True)
        return base64.urlsafe_b64encode(signed.encode()).decode()

    def get_next_link(self) -> str | None:
        if not self.has_next or not self.rows:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, self._cursor(self.rows[-1]))

    def get_first_link(self) -> str:
        return remove_query_param(self.request.build_absolute_uri(), self.cursor_query_param)

    def get_paginated_response(self, data):
        return Response(
            OrderedDict(
                [
                    ("next", self.get_next_link()),
                    ("first", self.get_first_link()),
                    ("results", data),
                ]
            )
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "first": {"type": "string", "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque cursor from a previous page's `next`.",
                "schema": {"type": "string"},
            },
            {
                "name": "page_size",
                "required": False,
                "in": "query",
                "description": f"Rows per page: 1 to {MAX_PAGE_SIZE} ({DEFAULT_PAGE_SIZE}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            },
        ]
