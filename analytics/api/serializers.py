"""Analytics API: query parameters (validated: 400 naming the field) and answers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from analytics import selectors
from crawls.models import Bid


class WindowParams(serializers.Serializer):
    workspace = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Workspace id; optional with a token or when you belong to one workspace.",
    )
    days = serializers.IntegerField(
        required=False,
        default=30,
        min_value=1,
        max_value=settings.ANALYTICS_MAX_DAYS,
        help_text="The window: the last N days, today included.",
    )
    limit = serializers.IntegerField(
        required=False, default=10, min_value=1, max_value=100, help_text="Rows (series) at most."
    )


class HighValueParams(WindowParams):
    min_views = serializers.IntegerField(
        required=False, min_value=0, help_text="Bids with more views than this count."
    )
    min_amount = serializers.DecimalField(
        required=False,
        max_digits=20,
        decimal_places=2,
        min_value=0,
        help_text="Bids with a larger amount than this count.",
    )

    def validate(self, attrs):
        if attrs.get("min_views") is None and attrs.get("min_amount") is None:
            raise serializers.ValidationError(
                {"min_views": ["Give min_views, min_amount or both."]}
            )
        return attrs


class BidsPerDayParams(WindowParams):
    by = serializers.ChoiceField(
        choices=[selectors.BY_DEPARTMENT, selectors.BY_SOURCE],
        required=False,
        default=selectors.BY_DEPARTMENT,
        help_text="One series per department or per source.",
    )


class ProcurementParams(serializers.Serializer[Any]):
    workspace = serializers.IntegerField(
        required=False, min_value=1, help_text="Workspace id (as for the other endpoints)."
    )
    days = serializers.IntegerField(
        required=False,
        default=30,
        min_value=1,
        max_value=settings.ANALYTICS_MAX_DAYS,
        help_text="The window: the last N days, today included.",
    )


class HealthParams(serializers.Serializer):
    workspace = serializers.IntegerField(
        required=False, min_value=1, help_text="Workspace id (as for the other endpoints)."
    )
    days = serializers.IntegerField(
        required=False,
        default=30,
        min_value=1,
        max_value=settings.ANALYTICS_MAX_DAYS,
        help_text="Crawls created in the last N days.",
    )


class DepartmentRowSerializer(serializers.Serializer):
    department = serializers.CharField()
    bids = serializers.IntegerField()
    total_amount = serializers.DecimalField(max_digits=24, decimal_places=2, allow_null=True)


class HighValueRowSerializer(DepartmentRowSerializer):
    max_views = serializers.IntegerField(allow_null=True)


class WindowAnswerSerializer(serializers.Serializer):
    workspace = serializers.IntegerField()
    since = serializers.DateField()
    until = serializers.DateField()


class HighValueSerializer(WindowAnswerSerializer):
    currency = serializers.CharField(
        help_text="The currency of min_amount and the totals (ANALYTICS_CURRENCY): amounts in "
        "other currencies are neither compared nor added."
    )
    departments = HighValueRowSerializer(many=True)


class TopDepartmentsSerializer(WindowAnswerSerializer):
    currency = serializers.CharField(
        help_text="The currency of the totals (ANALYTICS_CURRENCY): amounts in other currencies "
        "are not added (their bids are counted)."
    )
    departments = DepartmentRowSerializer(many=True)


class StatusCountSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=Bid.Status.choices)
    bids = serializers.IntegerField()


class CurrencyTotalSerializer(serializers.Serializer[Any]):
    currency = serializers.CharField(help_text='ISO 4217 code; "" for bids naming none.')
    bids = serializers.IntegerField()
    total_amount = serializers.DecimalField(
        max_digits=24, decimal_places=2, allow_null=True, help_text="In this currency."
    )


class ProcurementSerializer(WindowAnswerSerializer):
    by_status = StatusCountSerializer(many=True, help_text="Every status, zeros included.")
    by_currency = CurrencyTotalSerializer(many=True, help_text="Most bids first.")


class SeriesSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The department, or the source id.")
    label = serializers.CharField()
    total = serializers.IntegerField()
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="One per day.")


class BidsPerDaySerializer(WindowAnswerSerializer):
    by = serializers.CharField()
    days = serializers.ListField(child=serializers.DateField())
    totals = serializers.ListField(child=serializers.IntegerField(), help_text="One per day.")
    series = SeriesSerializer(many=True)


class SourceHealthSerializer(serializers.Serializer):
    source = serializers.IntegerField()
    source_name = serializers.CharField()
    crawls = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    degraded = serializers.IntegerField(
        help_text="Completed but degraded (docs/quality.md): finished, not succeeded."
    )
    finished = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="Succeeded / finished.")
    pages_per_second = serializers.FloatField(allow_null=True)
    errors = serializers.DictField(child=serializers.IntegerField(), help_text="Count by class.")
    last_success_at = serializers.DateTimeField(allow_null=True)


class CrawlHealthSerializer(serializers.Serializer):
    workspace = serializers.IntegerField()
    since = serializers.DateTimeField()
    sources = SourceHealthSerializer(many=True)
