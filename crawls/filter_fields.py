"""The building blocks of the filter sets (crawls/filters.py): fields and filters that bound
what a query parameter may be (list lengths, integer ranges, search and extra-pair sizes, dates
read as UTC) and document it in the OpenAPI schema.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django_filters import rest_framework as filters
from django_filters.fields import BaseCSVField, IsoDateTimeField
from django_filters.widgets import BaseCSVWidget
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from crawls import bid_search
from crawls.engine import normalize
from crawls.models import Bid

MAX_LIST_VALUES = 100
MAX_INT = 2**31 - 1
MAX_ID = 2**63 - 1


class MultipleValuesWidget(BaseCSVWidget, forms.TextInput):
    """Several values: repeated (`?x=1&x=2`), comma-separated (`?x=1,2`) or both."""

    def value_from_datadict(self, data, files, name):
        if name not in data:
            return None
        raw = data.getlist(name) if hasattr(data, "getlist") else data[name]
        if isinstance(raw, str):
            raw = [raw]
        return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, compared in UTC: PostgreSQL refuses offsets beyond ±15:59 that Python
    parses (+16:25 answered 500)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt.UTC)
        except OverflowError as exc:
            raise forms.ValidationError("Out of the range of times.", code="invalid") from exc


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class ListField(BaseCSVField):
    def clean(self, value):
        values = super().clean(value)
        if values and len(values) > MAX_LIST_VALUES:
            raise forms.ValidationError(f"At most {MAX_LIST_VALUES} values.", code="too_many")
        return values


class ListFilter(filters.BaseInFilter):
    base_field_class = ListField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleValuesWidget)
        super().__init__(*args, **kwargs)


class IdListFilter(ListFilter):
    field_class = forms.IntegerField


class TextListFilter(ListFilter):
    field_class = forms.CharField


@extend_schema_field(OpenApiTypes.INT)
class IntegerFilter(filters.NumberFilter):
    field_class = forms.IntegerField


CHOICES_HELP = "One or several: repeated (?a=x&a=y) or comma-separated (?a=x,y)."


class ChoicesField(forms.MultipleChoiceField):
    """Several values, repeated (`?status=a&status=b`) or comma-separated (`?status=a,b`)."""

    def to_python(self, value: Any) -> list[str]:
        return [part for item in super().to_python(value) for part in item.split(",") if part]


class ChoicesFilter(filters.MultipleChoiceFilter):
    field_class = ChoicesField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("distinct", False)  # a plain column: DISTINCT would only cost
        super().__init__(*args, **kwargs)


# --- Procurement columns (currency, status, procurement_method, classifications) ------------------


class CurrencyField(forms.CharField):
    """An ISO 4217 code, any case ("krw" → "KRW")."""

    def to_python(self, value: object) -> str:
        value = (super().to_python(value) or "").strip().upper()
        if value and not normalize.is_currency(value):
            raise forms.ValidationError("Not an ISO 4217 currency code.", code="invalid")
        return value


class CurrencyFilter(filters.CharFilter):
    field_class = CurrencyField


class ClassificationField(forms.CharField):
    """A classification code ("CPV:45000000") or a prefix of one ("CPV:45*")."""

    def to_python(self, value: object) -> str:
        value = " ".join((super().to_python(value) or "").split())
        if not value:
            return value
        prefix = value.removesuffix("*")
        if "*" in prefix:
            raise forms.ValidationError("Only a trailing * is allowed.", code="invalid")
        if value.endswith("*") and len(prefix) < bid_search.CLASSIFICATION_PREFIX_MIN:
            raise forms.ValidationError(
                f"A prefix needs at least {bid_search.CLASSIFICATION_PREFIX_MIN} characters.",
                code="invalid",
            )
        return value


class ClassificationFilter(filters.CharFilter):
    field_class = ClassificationField


# --- Finding notices: `q`, `extra`, deadlines -----------------------------------------------------

SEARCH_MAX_LENGTH = 400
CLOSING_WITHIN_DAYS_MAX = 365


class SearchField(forms.CharField):
    """Words to find (at most SEARCH_TERMS_MAX of them), whitespace-separated."""

    def to_python(self, value: object) -> str:
        value = super().to_python(value) or ""
        if "\x00" in value:
            raise forms.ValidationError("Null characters are not allowed.", code="invalid")
        if len(bid_search.search_terms(value)) > bid_search.SEARCH_TERMS_MAX:
            raise forms.ValidationError(
                f"At most {bid_search.SEARCH_TERMS_MAX} words.", code="too_many"
            )
        return value


class SearchFilter(filters.CharFilter):
    field_class = SearchField


class DaysFilter(filters.Filter):
    field_class = forms.IntegerField


class RepeatedValuesWidget(forms.TextInput):
    """Several values, repeated only (`?x=a&x=b`): a value may hold commas."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str] | None:
        if name not in data:
            return None
        raw = data.getlist(name) if hasattr(data, "getlist") else data[name]
        return [str(value) for value in (raw if isinstance(raw, list) else [raw]) if value != ""]


class ExtraPairsField(forms.Field):
    """`key:value` pairs: the key (letters, digits, `_ . -`, up to 64) up to the first colon."""

    widget = RepeatedValuesWidget

    def to_python(self, value: Any) -> list[tuple[str, str]]:
        values: list[Any] = [value] if isinstance(value, str) else list(value or [])
        if len(values) > bid_search.EXTRA_FILTERS_MAX:
            raise forms.ValidationError(
                f"At most {bid_search.EXTRA_FILTERS_MAX} extra filters.", code="too_many"
            )
        pairs = []
        for item in values:
            key, colon, wanted = str(item).partition(":")
            if not colon or not re.fullmatch(bid_search.EXTRA_KEY_PATTERN, key):
                raise forms.ValidationError(
                    "Give key:value, the key of letters, digits, _ . - (up to 64).",
                    code="invalid",
                )
            if len(wanted) > MAX_EXTRA_VALUE or "\x00" in wanted:
                raise forms.ValidationError(
                    f"A value of at most {MAX_EXTRA_VALUE} characters, without nulls.",
                    code="invalid",
                )
            pairs.append((key, wanted))
        return pairs


MAX_EXTRA_VALUE = 300


class ExtraFilter(filters.Filter):
    field_class = ExtraPairsField

    def filter(self, qs: QuerySet[Bid], value: list[tuple[str, str]]) -> QuerySet[Bid]:
        if not value:
            return qs
        return qs.filter(bid_search.bid_extra_condition(pairs=value))


class DeadlineBoundField(UtcDateTimeField):
    """An ISO 8601 time, or a date: the start of that day (`after`) or its end (`before`), in
    the server's time zone."""

    def __init__(self, *args: Any, end_of_day: bool = False, **kwargs: Any) -> None:
        self.end_of_day = end_of_day
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and DATE_ONLY.fullmatch(value.strip()):
            try:
                day = dt.date.fromisoformat(value.strip())
            except ValueError as exc:
                raise forms.ValidationError("Not a date.", code="invalid") from exc
            start = dt.datetime.combine(day, dt.time.min)
            if self.end_of_day:
                start = dt.datetime.combine(day, dt.time.max)
            return timezone.make_aware(start).astimezone(dt.UTC)
        return super().to_python(value)  # type: ignore[no-untyped-call]


DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


class DeadlineFilter(filters.Filter):
    field_class = DeadlineBoundField


def documented(filter_: Any, schema: dict[str, Any]) -> Any:
    """`filter_` with its OpenAPI schema, described by its help text (a schema given to
    drf-spectacular replaces what it would infer, the description included)."""
    return extend_schema_field({**schema, "description": filter_.extra["help_text"]})(filter_)
