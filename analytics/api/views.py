"""/api/v1/analytics/…: read-only answers of analytics.selectors for one workspace, cached.

Thin adapters: validate the query parameters (400 naming the field), resolve the workspace
(the token's, or one of the caller's), and answer from the cache or the selector.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import cache, selectors
from analytics.api import serializers as s
from crawls.api.auth import request_token, workspace_ids_of
from crawls.api.serializers import ErrorSerializer

ERROR = OpenApiResponse(
    ErrorSerializer, description="Invalid parameters: the envelope's details names each field."
)
NOT_AUTHENTICATED = OpenApiResponse(ErrorSerializer, description="No valid session or token.")


def workspace_for(request, chosen: int | None) -> int:
    """The workspace an analytics request reads: the token's, or one of the caller's."""
    ids = list(workspace_ids_of(request))
    if chosen is None:
        if len(ids) == 1:
            return ids[0]
        raise ValidationError({"workspace": ["Required: name one of your workspaces."]})
    if chosen not in ids:
        if request_token(request) is not None:
            raise ValidationError({"workspace": ["The token belongs to another workspace."]})
        raise ValidationError({"workspace": ["Not one of your workspaces."]})
    return chosen


class AnalyticsView(APIView):
    """GET: validate `params_class`, then answer `compute()` through the workspace's cache."""

    name = ""
    params_class: type[serializers.Serializer] = s.WindowParams
    serializer_class: type[serializers.Serializer] = serializers.Serializer

    def compute(self, *, workspace_id: int, today: dt.date, **params) -> dict:
        raise NotImplementedError

    def get(self, request, *args, **kwargs):
        params = self.params_class(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = dict(params.validated_data)
        workspace_id = workspace_for(request, values.pop("workspace", None))
        today = timezone.localdate()

        def compute() -> dict:
            answer = self.compute(workspace_id=workspace_id, today=today, **values)
            return self.serializer_class({"workspace": workspace_id, **answer}).data

        data = cache.cached(
            workspace_id=workspace_id,
            name=self.name,
            params={**values, "today": today},
            compute=compute,
        )
        return Response(data)


def _window(today: dt.date, days: int) -> dict:
    return {"since": selectors.window_start(today=today, days=days), "until": today}


@extend_schema(
    tags=["analytics"],
    parameters=[s.HighValueParams],
    responses={200: s.HighValueSerializer, 400: ERROR, 401: NOT_AUTHENTICATED},
)
class HighValueView(AnalyticsView):
    """Per department: bids posted in the window with views above min_views or amount above
    min_amount (either or both), most such bids first."""

    name = "high-value"
    params_class = s.HighValueParams
    serializer_class = s.HighValueSerializer

    def compute(self, *, workspace_id, today, days, limit, min_views=None, min_amount=None):
        rows = selectors.high_value_by_department(
            workspace_id=workspace_id,
            today=today,
            days=days,
            min_views=min_views,
            min_amount=min_amount,
            limit=limit,
        )
        return {
            **_window(today, days),
            "currency": settings.ANALYTICS_CURRENCY,
            "departments": rows,
        }


@extend_schema(
    tags=["analytics"],
    parameters=[s.BidsPerDayParams],
    responses={200: s.BidsPerDaySerializer, 400: ERROR, 401: NOT_AUTHENTICATED},
)
class BidsPerDayView(AnalyticsView):
    """Bids posted per day in the window: the totals and one series per department or source
    (the `limit` with the most bids)."""

    name = "bids-per-day"
    params_class = s.BidsPerDayParams
    serializer_class = s.BidsPerDaySerializer

    def compute(self, *, workspace_id, today, days, limit, by):
        answer = selectors.bids_per_day(
            workspace_id=workspace_id, today=today, days=days, by=by, limit=limit
        )
        return {**_window(today, days), **answer}


@extend_schema(
    tags=["analytics"],
    parameters=[s.WindowParams],
    responses={200: s.TopDepartmentsSerializer, 400: ERROR, 401: NOT_AUTHENTICATED},
)
class TopDepartmentsView(AnalyticsView):
    """Departments by the total amount of their bids posted in the window, largest first."""

    name = "top-departments"
    serializer_class = s.TopDepartmentsSerializer

    def compute(self, *, workspace_id, today, days, limit):
        rows = selectors.top_departments(
            workspace_id=workspace_id, today=today, days=days, limit=limit
        )
        return {
            **_window(today, days),
            "currency": settings.ANALYTICS_CURRENCY,
            "departments": rows,
        }


@extend_schema(
    tags=["analytics"],
    parameters=[s.ProcurementParams],
    responses={200: s.ProcurementSerializer, 400: ERROR, 401: NOT_AUTHENTICATED},
)
class ProcurementView(AnalyticsView):
    """Bids posted in the window by status, and by currency with each currency's total amount
    (amounts of different currencies are never added together)."""

    name = "procurement"
    params_class = s.ProcurementParams
    serializer_class = s.ProcurementSerializer

    def compute(self, *, workspace_id: int, today: dt.date, **params: Any) -> dict[str, Any]:
        days = params["days"]
        answer = selectors.procurement_summary(workspace_id=workspace_id, today=today, days=days)
        return {**_window(today, days), **answer}


@extend_schema(
    tags=["analytics"],
    parameters=[s.HealthParams],
    responses={200: s.CrawlHealthSerializer, 400: ERROR, 401: NOT_AUTHENTICATED},
)
class CrawlHealthView(AnalyticsView):
    """Per source: crawls of the window, success rate, pages/s, error classes, last success."""

    name = "crawl-health"
    params_class = s.HealthParams
    serializer_class = s.CrawlHealthSerializer

    def compute(self, *, workspace_id, today, days):
        now = timezone.now()
        sources = selectors.crawl_health(workspace_id=workspace_id, now=now, days=days)
        return {"since": now - dt.timedelta(days=days), "sources": sources}
