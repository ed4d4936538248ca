"""Atom 1.0 and RSS 2.0 feeds of an alert rule's bids, at /feeds/<token>/atom/ and .../rss/.

Feed readers send no headers: the secret token in the URL is the credential (a FeedToken). An
unknown or revoked token answers 404, alike. Requests are counted per client address at the
API's anonymous rate (API_RATE_CALLER); over it: 429 with Retry-After. Three queries a feed.
"""

from __future__ import annotations

import math
import time

from django.contrib.syndication.views import Feed
from django.http import Http404, HttpResponse
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed, Rss201rev2Feed
from django.utils.html import format_html, format_html_join
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from crawls.api.throttles import limiter, parse_rate
from crawls.models import Bid
from notifications import selectors
from notifications.models import FeedToken

THROTTLE_SCOPE = "feed"


def _throttled(request) -> HttpResponse | None:
    """429 when the client's address went over the anonymous API rate; None: go on."""
    item = parse_rate(api_settings.DEFAULT_THROTTLE_RATES["caller"])
    ident = BaseThrottle().get_ident(request)
    if limiter().hit(item, THROTTLE_SCOPE, ident):
        return None
    reset = limiter().get_window_stats(item, THROTTLE_SCOPE, ident).reset_time
    response = HttpResponse("Too many requests.\n", status=429, content_type="text/plain")
    response["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
    return response


def _value(value) -> str:
    return "—" if value in (None, "") else str(value)


def changes_text(changes: dict) -> list[str]:
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


class RuleRssFeed(Feed):
    """RSS 2.0 of the bids an alert rule's filter matches, newest changed first."""

    feed_type = Rss201rev2Feed

    def __call__(self, request, *args, **kwargs):
        return _throttled(request) or super().__call__(request, *args, **kwargs)

    def get_object(self, request, token: str) -> FeedToken:
        found = selectors.feed_token_find(raw=token)
        if found is None:
            raise Http404("No such feed.")
        found.bids = selectors.feed_bids(rule=found.rule)
        return found

    def title(self, obj: FeedToken) -> str:
        return f"Forest — {obj.rule.name}"

    def link(self, obj: FeedToken) -> str:
        return reverse("notifications:rule_edit", args=[obj.rule_id])

    def description(self, obj: FeedToken) -> str:
        return f"New and changed bids matching the alert rule “{obj.rule.name}”."

    def items(self, obj: FeedToken) -> list[Bid]:
        return obj.bids

    def item_title(self, bid: Bid) -> str:
        return bid.title

    def item_link(self, bid: Bid) -> str:
        return reverse("crawls:bid", args=[bid.pk])

    def item_guid(self, bid: Bid) -> str:
        # One entry per bid and change: a change is news again to the reader.
        return f"urn:forest:bid:{bid.pk}:{bid.changed_at.isoformat()}"

    item_guid_is_permalink = False

    def item_description(self, bid: Bid) -> str:
        fields = [
            ("Department", _value(bid.department)),
            ("Amount", amount_text(bid)),
            ("Deadline", _value(bid.deadline.isoformat() if bid.deadline else None)),
            ("Status", bid.get_status_display()),
            ("Notice", bid.url),
        ]
        lines = changes_text(bid.last_changes) or ["New bid (no change recorded yet)."]
        return format_html(
            "<p>{}</p><p>What changed:</p><ul>{}</ul>",
            format_html_join("", "{}: {}<br>", fields),
            format_html_join("", "<li>{}</li>", ((line,) for line in lines)),
        )

    def item_pubdate(self, bid: Bid):
        return bid.changed_at

    def item_updateddate(self, bid: Bid):
        return bid.changed_at

    def item_categories(self, bid: Bid) -> list[str]:
        return [bid.department] if bid.department else []


class RuleAtomFeed(RuleRssFeed):
    """Atom 1.0 of the same entries."""

    feed_type = Atom1Feed

    def subtitle(self, obj: FeedToken) -> str:
        return self.description(obj)
