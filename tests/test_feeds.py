"""Atom and RSS feeds of alert rules: content of both formats, the secret token in the URL
(stored hashed, revocable, 404 alike for unknown and revoked), workspaces, the query budget,
the throttle, the API and the rule page's buttons."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from crawls import services as crawl_services
from crawls.models import Bid, BidRevision, Membership
from notifications import services
from notifications.models import FeedToken
from tests.clients import API, bearer
from tests.factories import NOW, absent_pk, make_bid, new_bid
from tests.test_notifications import make_rule

ATOM = "{http://www.w3.org/2005/Atom}"
MINUTE = dt.timedelta(minutes=1)


def parse(response) -> ET.Element:
    assert response.status_code == 200, response.content
    return ET.fromstring(response.content)  # noqa: S314 - our own feed, in a test


def feed_paths(raw: str) -> tuple[str, str]:
    return f"/feeds/{raw}/atom/", f"/feeds/{raw}/rss/"


def add_revision(bid: Bid, changes: dict, at: dt.datetime) -> BidRevision:
    Bid.objects.filter(pk=bid.pk).update(changed_at=at)
    return BidRevision.objects.create(
        workspace_id=bid.workspace_id, bid=bid, changes=changes, changed_at=at
    )


@pytest.fixture
def roads(source_a, source_b, teammate, workspace_a):
    """A rule of Tomas's for "road" bids in workspace A, its bids (newest changed first) and a
    feed token of it."""
    repair = make_bid(
        source_a,
        title="Road repair, Jongno",
        department="Seoul Roads Office",
        amount=Decimal("1500000.00"),
        currency="KRW",
        deadline=dt.datetime(2026, 3, 20, 9, 0, tzinfo=dt.UTC),
        status=Bid.Status.ACTIVE,
        changed_at=NOW + dt.timedelta(hours=2),
    )
    paving = make_bid(source_a, title="Road paving", department="Mapo-gu")
    add_revision(
        paving,
        {"amount": ["100.00", "200.00"], "status": ["active", "cancelled"]},
        NOW + dt.timedelta(hours=1),
    )
    make_bid(source_a, title="Bridge inspection")  # not a road
    make_bid(source_b, title="Road works in Busan")  # another workspace
    rule = make_rule(workspace_a, teammate)
    token, raw = services.feed_token_create(rule=rule, user_id=teammate.pk)
    return {"rule": rule, "bids": [repair, paving], "token": token, "raw": raw}


def test_feed_rss_lists_the_rules_bids_with_their_fields_and_change(roads):
    repair, paving = roads["bids"]
    channel = parse(Client().get(feed_paths(roads["raw"])[1])).find("channel")
    assert channel.findtext("title") == "Forest — Roads"
    items = channel.findall("item")
    assert [item.findtext("title") for item in items] == [repair.title, paving.title]
    first, second = items
    assert first.findtext("link") == f"http://testserver/bids/{repair.pk}/"
    description = first.findtext("description")
    assert "Department: Seoul Roads Office" in description
    assert "Amount: 1,500,000.00 KRW" in description
    assert "Deadline: 2026-03-20T09:00:00+00:00" in description
    assert "Status: Active" in description
    assert "New bid (no change recorded yet)." in description
    assert first.findtext("category") == "Seoul Roads Office"
    changed = second.findtext("description")
    assert "amount: 100.00 → 200.00" in changed
    assert "status: active → cancelled" in changed
    guid = second.find("guid")
    assert guid.get("isPermaLink") == "false"
    assert guid.text == f"urn:forest:bid:{paving.pk}:{(NOW + dt.timedelta(hours=1)).isoformat()}"
    assert first.findtext("pubDate") == "Mon, 02 Mar 2026 11:30:00 +0000"


def test_feed_atom_carries_the_same_entries_with_updated_times(roads):
    repair, paving = roads["bids"]
    feed = parse(Client().get(feed_paths(roads["raw"])[0]))
    assert feed.tag == f"{ATOM}feed"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [repair.title, paving.title]
    assert [e.findtext(f"{ATOM}updated") for e in entries] == [
        "2026-03-02T11:30:00+00:00",
        "2026-03-02T10:30:00+00:00",
    ]
    assert entries[1].findtext(f"{ATOM}id") == (
        f"urn:forest:bid:{paving.pk}:{(NOW + dt.timedelta(hours=1)).isoformat()}"
    )
    assert entries[0].find(f"{ATOM}link").get("href") == f"http://testserver/bids/{repair.pk}/"
    summary = entries[1].findtext(f"{ATOM}summary")
    assert "Department: Mapo-gu" in summary
    assert "amount: 100.00 → 200.00" in summary
    assert feed.findtext(f"{ATOM}updated") == "2026-03-02T11:30:00+00:00"


def test_feed_follows_the_rules_filter_and_keeps_fifty_entries(roads, source_a):
    rule = roads["rule"]
    services.alert_rule_update(rule=rule, filter={"search": "road", "department": "Mapo-gu"})
    items = parse(Client().get(feed_paths(roads["raw"])[1])).find("channel").findall("item")
    assert [item.findtext("title") for item in items] == ["Road paving"]
    later = NOW + dt.timedelta(days=1)
    Bid.objects.bulk_create(
        new_bid(source_a, title=f"Road {n}", department="Mapo-gu", changed_at=later + n * MINUTE)
        for n in range(60)
    )
    items = parse(Client().get(feed_paths(roads["raw"])[1])).find("channel").findall("item")
    assert len(items) == 50
    assert items[0].findtext("title") == "Road 59"  # newest changed first


def test_feed_token_unknown_revoked_or_orphaned_answers_404(roads, api, owner, teammate):
    atom, rss = feed_paths(roads["raw"])
    client = Client()
    assert client.get(rss).status_code == 200
    wrong_secret = roads["raw"][:8] + "x" * (len(roads["raw"]) - 8)
    for path in (*feed_paths(wrong_secret), *feed_paths("nothing"), *feed_paths("a" * 60)):
        assert client.get(path).status_code == 404
    revoked = api(teammate).delete(
        f"{API}/alert-rules/{roads['rule'].pk}/feeds/{roads['token'].pk}/"
    )
    assert revoked.status_code == 204
    assert client.get(atom).status_code == 404
    assert client.get(rss).status_code == 404
    # A token made by someone who left the workspace stops with their membership.
    other, raw = services.feed_token_create(rule=roads["rule"], user_id=owner.pk)
    assert client.get(feed_paths(raw)[0]).status_code == 200
    Membership.objects.filter(workspace_id=other.workspace_id, user=owner).delete()
    assert client.get(feed_paths(raw)[0]).status_code == 404


def test_feed_token_is_stored_hashed_only(roads):
    raw, token = roads["raw"], roads["token"]
    token.refresh_from_db()
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(token.prefix)
    assert len(token.prefix) == 8
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {FeedToken._meta.db_table}")  # noqa: S608 - a test's read
        columns = [str(value) for row in cursor.fetchall() for value in row]
    assert not any(raw in value for value in columns)


def test_feed_query_budget_is_constant(roads, source_a, django_assert_num_queries):
    rss = feed_paths(roads["raw"])[1]
    # 1. the token with its rule (and its creator's membership), 2. the bids, 3. their latest
    # revisions.
    with django_assert_num_queries(3):
        assert Client().get(rss).status_code == 200
    for n in range(20):
        bid = make_bid(source_a, title=f"Road {n}")
        add_revision(bid, {"views": [n, n + 1]}, NOW + dt.timedelta(minutes=n))
    with django_assert_num_queries(3):
        items = parse(Client().get(rss)).find("channel").findall("item")
    assert len(items) == 22


def test_feed_is_throttled_per_client(roads):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "caller": "2/min"}
    with override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        client = Client()
        atom, rss = feed_paths(roads["raw"])
        assert client.get(atom).status_code == 200
        assert client.get(rss).status_code == 200
        refused = client.get(atom)
        assert refused.status_code == 429
        assert int(refused["Retry-After"]) >= 1
        assert client.get(feed_paths("guessing")[0]).status_code == 429


# --- API ----------------------------------------------------------------------------------------


def test_feed_api_creates_lists_and_revokes(api, teammate, viewer, workspace_a):
    rule = make_rule(workspace_a, teammate)
    feeds = f"{API}/alert-rules/{rule.pk}/feeds/"
    created = api(teammate).post(feeds)
    assert created.status_code == 201, created.content
    body = created.json()
    token = FeedToken.objects.get(pk=body["id"])
    assert body["atom_url"].startswith("http://testserver/feeds/")
    assert body["atom_url"].endswith("/atom/")
    assert body["rss_url"].endswith("/rss/")
    raw = body["atom_url"].split("/")[-3]
    assert raw.startswith(token.prefix)
    assert Client().get(body["rss_url"].removeprefix("http://testserver")).status_code == 200
    # A viewer sees the rule, so may make a feed of it, and revoke only their own.
    mine = api(viewer).post(feeds)
    assert mine.status_code == 201
    listed = api(viewer).get(feeds)
    assert listed.status_code == 200
    assert [t["prefix"] for t in listed.json()] == [mine.json()["prefix"], token.prefix]
    assert "atom_url" not in listed.json()[0]
    assert api(viewer).delete(f"{feeds}{token.pk}/").status_code == 403
    assert api(viewer).delete(f"{feeds}{mine.json()['id']}/").status_code == 204
    assert api(teammate).delete(f"{feeds}{token.pk}/").status_code == 204
    assert api(teammate).delete(f"{feeds}{token.pk}/").status_code == 204  # again: unchanged
    states = {t["id"]: t["is_active"] for t in api(teammate).get(feeds).json()}
    assert states == {token.pk: False, mine.json()["id"]: False}
    assert api(teammate).delete(f"{feeds}{absent_pk(FeedToken)}/").status_code == 404


def test_feed_api_of_another_workspace_answers_404(
    api, teammate, outsider, workspace_a, workspace_b
):
    rule = make_rule(workspace_a, teammate)
    token, _raw = services.feed_token_create(rule=rule, user_id=teammate.pk)
    feeds = f"{API}/alert-rules/{rule.pk}/feeds/"
    client = api(outsider)
    assert client.get(feeds).status_code == 404
    assert client.post(feeds).status_code == 404
    assert client.delete(f"{feeds}{token.pk}/").status_code == 404
    # A token of workspace B does not reach workspace A's rule either.
    crawl_services.membership_add(
        workspace=workspace_b, user=teammate, role=Membership.Role.MEMBER, actor=outsider
    )
    assert bearer(teammate, workspace_b).post(feeds).status_code == 404
    assert FeedToken.objects.filter(rule=rule).count() == 1
    token.refresh_from_db()
    assert token.revoked_at is None


def test_feed_api_needs_authentication(api, teammate, workspace_a):
    rule = make_rule(workspace_a, teammate)
    token, _raw = services.feed_token_create(rule=rule, user_id=teammate.pk)
    feeds = f"{API}/alert-rules/{rule.pk}/feeds/"
    assert api.get(feeds).status_code == 401
    assert api.post(feeds).status_code == 401
    assert api.delete(f"{feeds}{token.pk}/").status_code == 401


# --- Dashboard ----------------------------------------------------------------------------------


def test_rule_page_makes_shows_and_revokes_feed_urls(teammate, viewer, workspace_a):
    rule = make_rule(workspace_a, teammate)
    page = reverse("notifications:rule_edit", args=[rule.pk])
    client = Client()
    client.force_login(teammate)
    assert b"No feed URL yet." in client.get(page).content
    made = client.post(reverse("notifications:rule_feed_create", args=[rule.pk]), follow=True)
    token = FeedToken.objects.get(rule=rule)
    text = made.content.decode()
    assert "http://testserver/feeds/" in text
    assert f"<code>{token.prefix}…</code>" in text
    assert "they are shown this once" in text
    shown = re.search(r'id="new-feed-atom" type="text" value="http://testserver([^"]+)"', text)
    assert Client().get(shown.group(1)).status_code == 200
    assert made["Cache-Control"].startswith("max-age=0")
    again = client.get(page).content.decode()
    assert "http://testserver/feeds/" not in again  # shown once
    viewing = Client()
    viewing.force_login(viewer)
    revoke = reverse("notifications:rule_feed_revoke", args=[rule.pk, token.pk])
    assert viewing.post(revoke).status_code == 403
    assert client.post(revoke).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert f"<code>{token.prefix}…</code>" not in client.get(page).content.decode()


def test_feed_api_list_query_budget(api, teammate, workspace_a, django_assert_num_queries):
    rule = make_rule(workspace_a, teammate)
    client = api(teammate)
    feeds = f"{API}/alert-rules/{rule.pk}/feeds/"
    for _ in range(2):
        services.feed_token_create(rule=rule, user_id=teammate.pk)
    # 1. the rule, scoped to the caller's workspaces, 2. the caller's role in its workspace,
    # 3. its feed tokens.
    with django_assert_num_queries(3):
        assert len(client.get(feeds).json()) == 2
    for _ in range(5):
        services.feed_token_create(rule=rule, user_id=teammate.pk)
    with django_assert_num_queries(3):
        assert len(client.get(feeds).json()) == 7
