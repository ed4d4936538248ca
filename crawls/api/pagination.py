"""Keyset ("cursor") pagination for every list: opaque, signed cursors, bounded pages.

A cursor carries the ordering values of the last row served, signed so that a tampered cursor
is refused (400) rather than trusted; pages are `WHERE (a, b) < (x, y) ORDER BY a, b LIMIT n`,
so the thousandth page costs what the first does. Orderings are descending on non-null
columns, with `id` last as the tie-breaker (nullable columns go last: see KeysetPagination);
a view may set `keyset_ascending = True` to page oldest first instead (logs read in order).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
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
    the null ones, ordered by id. A view's `keyset_ascending = True` turns every field ascending
    (still NULLS LAST); its cursors are not valid in the descending order, nor the reverse.
    A view's `keyset_nulls_apart = True` reads the two ranges apart from the first page on (one
    more query when the values do not fill it), the nulls ordered by id alone, so that indexes
    partial on `field IS [NOT] NULL` serve every page.
    """

    cursor_query_param = "cursor"
    ordering: tuple[str, ...] = ("id",)
    nullable: frozenset[str] = frozenset()
    ascending = False

    def get_ordering(self, request, view) -> tuple[str, ...]:
        return getattr(view, "keyset_ordering", None) or self.ordering

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = page_size_from(request)
        self.fields = self.get_ordering(request, view)
        self.nullable = frozenset(getattr(view, "keyset_nullable", self.nullable))
        self.ascending = bool(getattr(view, "keyset_ascending", self.ascending))
        position = self._position(request)
        direction = "asc" if self.ascending else "desc"
        order = [
            getattr(F(name), direction)(nulls_last=True)
            if name in self.nullable
            else getattr(F(name), direction)()
            for name in self.fields
        ]
        queryset = queryset.order_by(*order)
        limit = self.page_size + 1
        first = self.fields[0]
        apart = first in self.nullable and bool(getattr(view, "keyset_nulls_apart", False))
        # The trailing nulls: by the later fields alone when apart (all nulls, the first field
        # orders nothing there, and an index partial on it being null serves that order).
        nulls = queryset.filter(**{f"{first}__isnull": True})
        if apart:
            nulls = nulls.order_by(*order[1:])
        if position is None and apart:
            # The values and the trailing nulls as two ranges from the first page on: each is
            # then served by an index partial on the field being (not) null.
            rows = list(queryset.filter(**{f"{first}__isnull": False})[:limit])
            if len(rows) < limit:
                rows += list(nulls[: limit - len(rows)])
        elif position is None:
            rows = list(queryset[:limit])
        elif position[0] is None:
            rows = list((nulls if apart else queryset).filter(self._after(position))[:limit])
        else:
            rows = list(queryset.filter(self._after(position))[:limit])
            if first in self.nullable and len(rows) < limit:
                # The trailing nulls are a range of their own: read when the values run out.
                rows += list(nulls[: limit - len(rows)])
        self.has_next = len(rows) > self.page_size
        self.rows = rows[: self.page_size]
        return self.rows

    def _after(self, values: list) -> Q:
        """Rows after `values` among those whose first field is null exactly when values[0] is.

        `a <= x AND (a < x OR (a = x AND b < y))`: the redundant bound makes it an index range
        (PostgreSQL sees none in the OR alone: page N would cost a scan of N pages).
        """
        beyond, reach = ("gt", "gte") if self.ascending else ("lt", "lte")
        first, start = self.fields[0], values[0]
        if start is None:
            bound = Q(**{f"{first}__isnull": True})
        else:
            bound = Q(**{f"{first}__{reach}": start})
        condition = Q()
        equal = Q()
        for name, value in zip(self.fields, values, strict=True):
            if value is None:  # within the trailing nulls: only the later fields move on
                equal &= Q(**{f"{name}__isnull": True})
                continue
            step = Q(**{f"{name}__{beyond}": value})
            if name in self.nullable and name != first:
                step |= Q(**{f"{name}__isnull": True})
            condition |= equal & step
            equal &= Q(**{name: value})
        return bound & condition

    def _position(self, request) -> list | None:
        raw = request.query_params.get(self.cursor_query_param)
        if not raw:
            return None
        try:
            data = signing.loads(base64.urlsafe_b64decode(raw.encode()).decode(), salt=_SALT)
            values = [_decode(v) for v in data["v"]]
            if data["o"] != list(self.fields) or len(values) != len(self.fields):
                raise ValueError("ordering changed")
            if bool(data.get("a")) != self.ascending:
                raise ValueError("direction changed")
        except (signing.BadSignature, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ValidationError(
                {"cursor": ["invalid or stale cursor: start again without it"]}
            ) from exc
        return values

    def cursor_for(self, row) -> str:
        """The cursor of the page that starts after `row` (a dict or an object with the ordering
        fields)."""
        get = row.__getitem__ if isinstance(row, dict) else functools.partial(getattr, row)
        values = [_encode(get(name)) for name in self.fields]
        data = {"o": list(self.fields), "v": values}
        if self.ascending:
            data["a"] = True  # descending cursors stay exactly as they were
        signed = signing.dumps(data, salt=_SALT, compress=True)
        return base64.urlsafe_b64encode(signed.encode()).decode()

    def get_next_link(self) -> str | None:
        if not self.has_next or not self.rows:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, self.cursor_for(self.rows[-1]))

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
