"""Filter sets: query parameters → querysets; every filter set of the API lives here, and the
bids' is shared with saved searches (alert rules). Their bounded fields and filters are in
crawls/filter_fields.py.

A filter set validates plain data (a QueryDict or a dict), so a saved search is the same
parameters the API takes; invalid values are form errors keyed by the parameter's name.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django_filters import rest_framework as filters
from django_filters.utils import translate_validation

from crawls import bid_search
from crawls.filter_fields import (
    CHOICES_HELP,
    CLOSING_WITHIN_DAYS_MAX,
    MAX_ID,
    MAX_INT,
    SEARCH_MAX_LENGTH,
    ChoicesFilter,
    ClassificationFilter,
    CurrencyFilter,
    DaysFilter,
    DeadlineFilter,
    ExtraFilter,
    IdListFilter,
    IntegerFilter,
    MultipleValuesWidget,
    SearchFilter,
    TextListFilter,
    UtcDateTimeFilter,
    documented,
)
from crawls.models import ApiToken, Bid, Crawl, CrawlEvent, FrontierUrl, Membership, Source


class BidFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        if data.get("state") and data.get("crawl") is None and "crawl" not in self.errors:
            self.add_error("state", "`state` is relative to a crawl: give `crawl` too.")
        return data


class BidFilter(filters.FilterSet):
    """What `GET /bids/` (its export, alert rules) can ask for; all filters combine (AND)."""

    workspace = IntegerFilter(
        field_name="workspace_id", min_value=1, max_value=MAX_ID, help_text="Workspace id."
    )
    source = IdListFilter(
        field_name="source_id",
        min_value=1,
        max_value=MAX_ID,
        help_text="Source ids: repeated (`source=1&source=2`) or comma-separated (`source=1,2`).",
    )
    department = TextListFilter(
        field_name="department",
        max_length=300,
        help_text="Departments, exactly: repeated or comma-separated (any of them matches).",
    )
    post_date_after = filters.DateFilter(
        field_name="post_date", lookup_expr="gte", help_text="Posted on or after (YYYY-MM-DD)."
    )
    post_date_before = filters.DateFilter(
        field_name="post_date", lookup_expr="lte", help_text="Posted on or before (YYYY-MM-DD)."
    )
    views_min = IntegerFilter(
        field_name="views", lookup_expr="gte", min_value=0, max_value=MAX_INT, help_text="views ≥"
    )
    views_max = IntegerFilter(
        field_name="views", lookup_expr="lte", min_value=0, max_value=MAX_INT, help_text="views ≤"
    )
    amount_min = filters.NumberFilter(
        field_name="amount",
        lookup_expr="gte",
        max_digits=20,
        decimal_places=2,
        help_text="amount ≥",
    )
    amount_max = filters.NumberFilter(
        field_name="amount",
        lookup_expr="lte",
        max_digits=20,
        decimal_places=2,
        help_text="amount ≤",
    )
    changed_since = UtcDateTimeFilter(
        field_name="changed_at",
        lookup_expr="gte",
        help_text=(
            "New or changed at or after this ISO 8601 time (`changed_at` ≥; a new bid's "
            "`changed_at` is when it was first seen). Without an offset: the server's time zone; "
            "encode `+` as `%2B`."
        ),
    )
    crawl = IntegerFilter(
        method="filter_crawl",
        min_value=1,
        max_value=MAX_ID,
        help_text=(
            "Crawl id: the bids that crawl recorded — found for the first time (`first_crawl`), "
            "changed (a revision of that crawl), or last seen by it (`last_crawl`). A bid the "
            "crawl saw unchanged drops out once a later crawl sees it (only the last is kept)."
        ),
    )
    state = filters.ChoiceFilter(
        choices=[("new", "new"), ("changed", "changed")],
        method="filter_state",
        help_text=(
            "With `crawl` (required): `new` = bids that crawl found first (`first_crawl` is it); "
            "`changed` = bids whose fields that crawl changed (it recorded a revision of them)."
        ),
    )
    presence = filters.ChoiceFilter(
        choices=[("live", "live"), ("removed", "removed")],
        method="filter_presence",
        help_text=(
            "`live` = bids the source still shows; `removed` = bids complete crawls no longer "
            "saw (`removed_at` set; docs/crawling.md, Removed notices). Empty: both."
        ),
    )
    currency = CurrencyFilter(
        field_name="currency",
        max_length=3,
        help_text="ISO 4217 code of the amount, any case (`KRW`, `usd`).",
    )
    status = ChoicesFilter(
        choices=Bid.Status.choices,
        widget=MultipleValuesWidget,
        help_text="Statuses (any of them matches): " + CHOICES_HELP,
    )
    procurement_method = filters.CharFilter(
        field_name="procurement_method",
        lookup_expr="iexact",
        max_length=100,
        help_text="Procurement method, exactly but any case (OCDS: open, selective, limited, …).",
    )
    classification = ClassificationFilter(
        method="filter_classification",
        max_length=121,
        help_text=(
            'A classification code, matched exactly against a bid\'s codes ("CPV:45000000"), or '
            'a prefix of one: ending in `*` ("CPV:45*"), or a CPV code shorter than its 8 digits '
            '("CPV:45", a division). An exact code is served by the codes\' index.'
        ),
    )
    search = filters.CharFilter(
        method="filter_search",
        max_length=200,
        help_text=(
            "Words in the title, as a case-insensitive substring (Korean included); served by a "
            "trigram index from 3 characters."
        ),
    )

    q = documented(
        SearchFilter(
            method="filter_q",
            max_length=SEARCH_MAX_LENGTH,
            help_text=(
                f"Words (at most {bid_search.SEARCH_TERMS_MAX}) to find in the title, department, "
                "reference and the text values of `extra`: a bid matches when it holds every word, "
                "as a whole word (full text) or as part of a word, any case (Korean compounds "
                "included)."
            ),
        ),
        {"type": "string", "maxLength": SEARCH_MAX_LENGTH},
    )
    extra = documented(
        ExtraFilter(
            help_text=(
                "`key:value`: bids whose `extra` has this top-level key with this string "
                "value, exactly. Repeat for several (all must hold; at most "
                f"{bid_search.EXTRA_FILTERS_MAX}). The key runs to the first colon: letters, "
                "digits, `_ . -`."
            ),
        ),
        {"type": "array", "items": {"type": "string", "pattern": "^[^:]+:.*$"}},
    )
    deadline_after = documented(
        DeadlineFilter(
            field_name="deadline",
            lookup_expr="gte",
            help_text="Deadline at or after this ISO 8601 time, or a date (from its start).",
        ),
        {"type": "string", "format": "date-time"},
    )
    deadline_before = documented(
        DeadlineFilter(
            field_name="deadline",
            lookup_expr="lte",
            end_of_day=True,
            help_text="Deadline at or before this ISO 8601 time, or a date (to its end).",
        ),
        {"type": "string", "format": "date-time"},
    )
    closing_within_days = documented(
        DaysFilter(
            method="filter_closing_within_days",
            min_value=0,
            max_value=CLOSING_WITHIN_DAYS_MAX,
            help_text=(
                "Deadline between now and now + this many days (0 to "
                f"{CLOSING_WITHIN_DAYS_MAX}): bids still open that close soon."
            ),
        ),
        {"type": "integer", "minimum": 0, "maximum": CLOSING_WITHIN_DAYS_MAX},
    )

    class Meta:
        model = Bid
        fields = []
        form = BidFilterForm

    def filter_q(self, queryset: QuerySet[Bid], name: str, value: str) -> QuerySet[Bid]:
        return queryset.filter(bid_search.bid_fulltext_condition(text=value))

    def filter_closing_within_days(
        self, queryset: QuerySet[Bid], name: str, value: int
    ) -> QuerySet[Bid]:
        now = timezone.now()
        return queryset.filter(deadline__gte=now, deadline__lte=now + dt.timedelta(days=value))

    def filter_crawl(self, queryset, name, value):
        state = self.form.cleaned_data.get("state")
        return queryset.filter(bid_search.bid_crawl_condition(crawl_id=value, state=state or None))

    def filter_state(self, queryset, name, value):
        return queryset  # applied with `crawl` (filter_crawl)

    def filter_presence(self, queryset: QuerySet[Bid], name: str, value: str) -> QuerySet[Bid]:
        return queryset.filter(removed_at__isnull=value == "live")

    def filter_search(self, queryset, name, value):
        return queryset.filter(bid_search.bid_search_condition(text=value))

    def filter_classification(
        self, queryset: QuerySet[Bid], name: str, value: str
    ) -> QuerySet[Bid]:
        return queryset.filter(bid_search.bid_classification_condition(code=value))


# --- Sources, crawls, their event log and frontier (crawls/api/crawls.py) ------------------------


class SourceFilter(filters.FilterSet):
    workspace = IntegerFilter(field_name="workspace_id", min_value=1)

    class Meta:
        model = Source
        fields = ["workspace"]


class CrawlFilter(filters.FilterSet):
    source = IntegerFilter(field_name="source_id", min_value=1)
    status = ChoicesFilter(choices=Crawl.Status.choices)
    workspace = IntegerFilter(field_name="workspace_id", min_value=1)

    class Meta:
        model = Crawl
        fields = ["source", "status", "workspace"]


class CrawlEventFilter(filters.FilterSet):
    after = IntegerFilter(
        field_name="sequence",
        lookup_expr="gt",
        min_value=0,
        help_text="Only events with a greater sequence (resume a log you have read).",
    )

    class Meta:
        model = CrawlEvent
        fields = ["after"]


class FrontierFilter(filters.FilterSet):
    state = ChoicesFilter(choices=FrontierUrl.State.choices)
    kind = ChoicesFilter(choices=FrontierUrl.Kind.choices)

    class Meta:
        model = FrontierUrl
        fields = ["state", "kind"]


def filtered(request, filterset_class, queryset):
    """`queryset` through a FilterSet of the query string; 400 naming the bad parameter."""
    filterset = filterset_class(request.query_params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return filterset.qs


# --- Members and API tokens (crawls/api/workspaces.py) --------------------------------------------


class MembershipFilter(filters.FilterSet):
    workspace = IntegerFilter(field_name="workspace_id", help_text="A workspace's id.")

    class Meta:
        model = Membership
        fields = ["workspace"]


class TokenFilter(filters.FilterSet):
    workspace = IntegerFilter(field_name="workspace_id", help_text="A workspace's id.")
    active = filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", help_text="Only active (or revoked) tokens."
    )

    class Meta:
        model = ApiToken
        fields = ["workspace", "active"]
