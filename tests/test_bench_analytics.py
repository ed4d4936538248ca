"""The analytics bench's naive side (bench/analytics_naive.py) answers what Forest answers, and
the bench fails loudly when the two differ."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from analytics import selectors, services
from analytics.api import serializers
from bench import analytics, analytics_naive
from crawls.models import Bid, Crawl, Source
from tests.factories import new_bid

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
DEPARTMENTS = ["Roads", "Water", "Parks", ""]


@pytest.fixture
def seeded(workspace_a, workspace_b):
    """Two sources in A with 300 random bids and crawls; one source in B that must not count."""
    rng = random.Random(11)  # noqa: S311 - test data, reproducible
    sources = [
        Source.objects.create(
            workspace=workspace, name=name, start_urls=["https://example.org/"], rules={}
        )
        for workspace, name in ((workspace_a, "portal"), (workspace_a, "Board"), (workspace_b, "B"))
    ]
    Bid.objects.bulk_create(
        new_bid(
            rng.choice(sources),
            department=rng.choice(DEPARTMENTS),
            post_date=None if n % 25 == 0 else TODAY - dt.timedelta(days=rng.randrange(60)),
            views=None if n % 10 == 0 else rng.randrange(1000),
            amount=None if n % 7 == 0 else Decimal(rng.randrange(10**6)),
        )
        for n in range(300)
    )
    _portal, board, other = sources
    for source, days_ago, status, pages, seconds, errors in (
        (board, 40, "succeeded", 1, 1, {"timeout": 9}),  # outside 30 days
        (board, 2, "failed", 5, 10, {"timeout": 1, "HTTP 503": 3}),
        (board, 1, "succeeded", 11, 20, {"timeout": 2}),
        (board, 0, "running", 7, None, {}),
        (other, 0, "succeeded", 50, 5, {"HTTP 404": 1}),
    ):
        created = NOW - dt.timedelta(days=days_ago, hours=1)
        Crawl.objects.create(
            workspace_id=source.workspace_id,
            source=source,
            status=status,
            pages_done=pages,
            errors=errors,
            created_at=created,
            started_at=created,
            finished_at=None if seconds is None else created + dt.timedelta(seconds=seconds),
        )
    services.summary_rebuild(workspace_ids=[workspace_a.pk, workspace_b.pk])
    return sources


@pytest.mark.parametrize(
    ("name", "params", "serializer"),
    [
        (
            "high_value_by_department",
            {"today": TODAY, "days": 30, "min_views": 500, "min_amount": Decimal(800000)},
            serializers.HighValueRowSerializer,
        ),
        (
            "high_value_by_department",
            {"today": TODAY, "days": 365, "min_views": None, "min_amount": Decimal(1)},
            serializers.HighValueRowSerializer,
        ),
        ("bids_per_day", {"today": TODAY, "days": 30, "by": "department"}, None),
        ("bids_per_day", {"today": TODAY, "days": 60, "by": "source"}, None),
        ("top_departments", {"today": TODAY, "days": 30}, serializers.DepartmentRowSerializer),
        ("top_departments", {"today": TODAY, "days": 7}, serializers.DepartmentRowSerializer),
        ("crawl_health", {"now": NOW, "days": 30}, serializers.SourceHealthSerializer),
    ],
)
def test_naive_selector_answers_what_forest_answers(seeded, workspace_a, name, params, serializer):
    if name != "crawl_health":
        params = {**params, "limit": 3}
    forest = getattr(selectors, name)(workspace_id=workspace_a.pk, **params)
    naive = analytics_naive.SELECTORS[name](workspace_id=workspace_a.pk, **params)
    if serializer is not None:
        forest = serializer(many=True).to_representation(forest)
        naive = serializer(many=True).to_representation(naive)
    assert forest  # something to compare
    assert naive == forest


def test_naive_crawl_health_counts_the_window(seeded, workspace_a):
    portal, board, _ = seeded
    last_success = Crawl.objects.get(source=board, status="succeeded", pages_done=11)
    rows = analytics_naive.crawl_health(workspace_id=workspace_a.pk, now=NOW, days=30)
    assert rows == [  # by lower(name)
        {
            "source": board.pk, "source_name": "Board", "crawls": 3, "succeeded": 1,
            "degraded": 0, "finished": 2, "success_rate": 0.5,
            "pages_per_second": 0.53,  # 16 pages in 30 s
            "errors": {"HTTP 503": 3, "timeout": 3}, "last_success_at": last_success.finished_at,
        },
        {
            "source": portal.pk, "source_name": "portal", "crawls": 0, "succeeded": 0,
            "degraded": 0, "finished": 0, "success_rate": None, "pages_per_second": None,
            "errors": {},
            "last_success_at": None,
        },
    ]  # fmt: skip


def test_bench_check_fails_when_the_answers_differ(seeded, workspace_a):
    analytics._check_selectors(selectors, analytics_naive.SELECTORS, workspace_id=workspace_a.pk)
    wrong = {**analytics_naive.SELECTORS, "top_departments": lambda **kwargs: []}
    with pytest.raises(SystemExit, match="top_departments differs"):
        analytics._check_selectors(selectors, wrong, workspace_id=workspace_a.pk)
