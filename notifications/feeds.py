"""Atom 1.0 and RSS 2.0 feeds of an alert rule's bids, at /feeds/<token>/atom/ and .../rss/.

Feed readers send no headers: the secret token in the URL is the credential (a FeedToken). An
unknown or revoked token answers 404, alike. Requests are counted per client address at the
API's anonymous rate (API_RATE_CALLER); over it: 429 with Retry-After. Three queries a feed.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.syndication.views import Feed
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed, SyndicationFeed
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from crawls.api.throttles import limiter, parse_rate
from crawls.models import Bid
from notifications import selectors
from notifications.models import AlertRule
from notifications.selectors import FeedEntry
from project import dbscope

THROTTLE_SCOPE = "feed"


@dataclass
class RuleFeed:
    """What one request of a feed shows: the token's rule and its entries."""

    rule: AlertRule
    entries: list[FeedEntry]


if TYPE_CHECKING:  # django-stubs make Feed generic; Django's own class is not subscriptable
    FeedBase = Feed[FeedEntry, RuleFeed]
else:
    FeedBase = Feed


def _throttled(request: HttpRequest) -> HttpResponse | None:
    """429 when the client's address went over the anonymous API rate; None: go on."""
    item = parse_rate(api_settings.DEFAULT_THROTTLE_RATES["caller"])
    ident = BaseThrottle().get_ident(Request(request))  # as the API counts anonymous callers
    if limiter().hit(item, THROTTLE_SCOPE, ident):
        return None
    reset = limiter().get_window_stats(item, THROTTLE_SCOPE, ident).reset_time
    response = HttpResponse("Too many requests.\n", status=429, content_type="text/plain")
    response["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
    return response


def _value(value: object) -> str:
    return "—" if value in (None, "") else str(value)


def changes_text(changes: dict[str, Any]) -> list[str]:
    """A revision's {field: [old, new]} as "field: old → new" lines, by field name."""
    return [
        f"{field}: {_value(pair[0])} → {_value(pair[1])}"
        if isinstance(pair, list | tuple) and len(pair) == 2
        else f"{field}: {_value(pair)}"
        for field, pair in sorted(changes.items())
    ]


def amount_text(bid: Bid) -> str:
    if bid.amount is None:
        return "—"
    return f"{bid.amount:,} {bid.currency}".strip()


class RuleRssFeed(FeedBase):
    """RSS 2.0 of the bids an alert rule's filter matches, newest changed first."""

    feed_type: type[SyndicationFeed] = Rss201rev2Feed

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return _throttled(request) or super().__call__(request, *args, **kwargs)

    def get_object(self, request: HttpRequest, token: str) -> RuleFeed:
        with dbscope.system_scope():  # the secret decides the workspace (docs/tenancy.md)
            found = selectors.feed_token_find(raw=token)
        if found is None:
            raise Http404("No such feed.")
        dbscope.set_scope(dbscope.encode([found.workspace_id]))  # until the request ends
        return RuleFeed(rule=found.rule, entries=selectors.feed_bids(rule=found.rule))

    def title(self, obj: RuleFeed) -> str:
        return f"Forest — {obj.rule.name}"

    def link(self, obj: RuleFeed) -> str:
        return reverse("notifications:rule_edit", args=[obj.rule.pk])

    def description(self, obj: RuleFeed) -> str:
        return f"New and changed bids matching the alert rule “{obj.rule.name}”."

    def items(self, obj: RuleFeed) -> list[FeedEntry]:
        return obj.entries

    def item_title(self, item: FeedEntry) -> str:
        return item.bid.title

    def item_link(self, item: FeedEntry) -> str:
        return reverse("crawls:bid", args=[item.bid.pk])

    def item_guid(self, item: FeedEntry) -> str:
        # One entry per bid and change: a change is news again to the reader.
        return f"urn:forest:bid:{item.bid.pk}:{item.bid.changed_at.isoformat()}"

    item_guid_is_permalink = False

    def item_description(self, item: FeedEntry) -> SafeString:
        bid = item.bid
        fields = [
            ("Department", _value(bid.department)),
            ("Amount", amount_text(bid)),
            ("Deadline", _value(bid.deadline.isoformat() if bid.deadline else None)),
            ("Status", bid.get_status_display()),
            ("Notice", bid.url),
        ]
        lines = changes_text(item.changes) or ["New bid (no change recorded yet)."]
        return format_html(
            "<p>{}</p><p>What changed:</p><ul>{}</ul>",
            format_html_join("", "{}: {}<br>", fields),
            format_html_join("", "<li>{}</li>", ((line,) for line in lines)),
        )

    def item_pubdate(self, item: FeedEntry) -> dt.datetime:
        return item.bid.changed_at

    def item_updateddate(self, item: FeedEntry) -> dt.datetime:
        return item.bid.changed_at

    def item_categories(self, item: FeedEntry) -> list[str]:
        return [item.bid.department] if item.bid.department else []


class RuleAtomFeed(RuleRssFeed):
    """Atom 1.0 of the same entries."""

    feed_type = Atom1Feed

    def subtitle(self, obj: RuleFeed) -> str:
        return self.description(obj)
