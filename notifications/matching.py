"""Matching committed crawl batches against alert rules (docs/notifications.md, "Conditions").

For a batch (new, changed, removed bid ids) the crawl's revisions of those bids are read once;
each rule keeps the bids that meet one of its conditions (notifications.conditions) and that its
filter selects, with one INSERT ... ON CONFLICT DO NOTHING into the AlertMatch ledger (unique
rule, crawl, bid: a redelivered batch inserts nothing). Immediate rules then update their one
notification of the crawl; digest rules leave the matches for notifications.digests.
Queries: 3 + per rule with candidates 1 (the INSERT), + 5 or so for an immediate rule's notice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from psycopg.types.json import Jsonb

from crawls.filters import BidFilter
from crawls.models import Bid, BidRevision
from notifications import conditions, fanout, messages, push, selectors
from notifications.models import AlertMatch, AlertRule, Notification

logger = logging.getLogger(__name__)

Candidates = dict[int, tuple[list[str], dict[str, Any]]]  # bid id -> (reasons, changes)


def alert_match_batch(
    *,
    crawl_id: int,
    workspace_id: int,
    new: Sequence[int],
    changed: Sequence[int],
    removed: Sequence[int] = (),
) -> list[Notification]:
    """Match one committed batch against every active rule of the workspace; the immediate
    rules' notifications it created or updated."""
    new_ids = list(dict.fromkeys(new))
    seen = set(new_ids)
    removed_ids = [pk for pk in dict.fromkeys(removed) if pk not in seen]
    seen.update(removed_ids)
    changed_ids = [pk for pk in dict.fromkeys(changed) if pk not in seen]
    if not (new_ids or changed_ids or removed_ids):
        return []
    touched = []
    with transaction.atomic():
        rules = selectors.alert_rules_to_match(workspace_id=workspace_id)
        if not rules:
            return []
        changes = _crawl_changes(crawl_id=crawl_id, ids=[*changed_ids, *removed_ids])
        titles: dict[int, str] | None = None
        for rule in rules:
            candidates = _candidates(
                rule, new=new_ids, changed=changed_ids, removed=removed_ids, changes=changes
            )
            if not candidates:
                continue
            inserted = _match_insert(
                rule=rule, crawl_id=crawl_id, candidates=candidates, removed=set(removed_ids)
            )
            if inserted and rule.delivery == AlertRule.Delivery.IMMEDIATE:
                if titles is None:
                    titles = dict(
                        Bid.objects.filter(pk__in=[*new_ids, *changed_ids, *removed_ids])
                        .values_list("pk", "title")
                    )  # fmt: skip
                items = [messages.Item(pk, titles.get(pk, ""), *candidates[pk]) for pk in inserted]
                touched.append(
                    _alert_notify(rule=rule, crawl_id=crawl_id, items=items, new=set(new_ids))
                )
    return touched


def _crawl_changes(*, crawl_id: int, ids: list[int]) -> dict[int, dict[str, Any]]:
    """What the crawl's revisions changed of each bid ({field: [old, new]}), one query."""
    if not ids:
        return {}
    revisions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = (
        BidRevision.objects.filter(crawl_id=crawl_id, bid_id__in=ids)
        .order_by("changed_at", "id")
        .values_list("bid_id", "changes")
    )
    for bid_id, changes in rows:
        revisions[bid_id].append(changes)
    return {bid_id: conditions.changes_merged(found) for bid_id, found in revisions.items()}


def _candidates(
    rule: AlertRule,
    *,
    new: list[int],
    changed: list[int],
    removed: list[int],
    changes: dict[int, dict[str, Any]],
) -> Candidates:
    """The batch's bids that meet one of the rule's conditions, before its filter."""
    found: Candidates = {}
    for pk in new:
        reasons = conditions.reasons_for(rule, is_new=True, is_removed=False, changes=None)
        if reasons:
            found[pk] = (reasons, {})
    for pk in removed:
        reasons = conditions.reasons_for(rule, is_new=False, is_removed=True, changes=None)
        if reasons:
            found[pk] = (reasons, changes.get(pk) or {conditions.REMOVED: [False, True]})
    for pk in changed:
        what = changes.get(pk)
        reasons = conditions.reasons_for(rule, is_new=False, is_removed=False, changes=what)
        if reasons:
            found[pk] = (reasons, what or {})
    return found


def _filter_sql(rule: AlertRule, ids: Iterable[int], *, presence: bool) -> tuple[str, list[Any]]:
    """SELECT id of the bids among `ids` the rule's filter selects (without its presence
    parameters when `presence` is False); ("", []) when the saved filter no longer validates."""
    saved = rule.filter
    if not presence:
        saved = {k: v for k, v in saved.items() if k not in conditions.PRESENCE_FILTERS}
    base = Bid.objects.filter(workspace_id=rule.workspace_id, pk__in=list(ids))
    filterset = BidFilter(selectors.filter_querydict(saved), queryset=base)
    if not filterset.is_valid():  # saved before BidFilter changed: never widen it silently
        logger.warning("alert rule %s has an invalid filter: %s", rule.pk, filterset.errors)
        return "", []
    sql, params = filterset.qs.order_by().values_list("pk", flat=True).query.sql_with_params()
    return sql, list(params)


def _match_insert(
    *, rule: AlertRule, crawl_id: int, candidates: Candidates, removed: set[int]
) -> list[int]:
    """INSERT the candidates the rule's filter selects (removed bids: by their last known
    fields, presence filters aside); the bid ids inserted, in order."""
    present = [pk for pk in candidates if pk not in removed]
    gone = [pk for pk in candidates if pk in removed]
    wheres: list[str] = []
    params: list[Any] = []
    for ids, presence in ((present, True), (gone, False)):
        if ids:
            sql, found = _filter_sql(rule, ids, presence=presence)
            if not sql:
                return []
            wheres.append(f"c.id IN ({sql})")
            params.extend(found)
    ids = list(candidates)
    now = timezone.now()
    digested_at = now if rule.delivery == AlertRule.Delivery.IMMEDIATE else None
    table = AlertMatch._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "  # noqa: S608 - our table, our SQL
            "(rule_id, crawl_id, bid_id, is_new, reasons, changes, digested_at, created_at) "
            "SELECT %s, %s, c.id, c.reasons ? 'new', "
            "ARRAY(SELECT jsonb_array_elements_text(c.reasons))::varchar(20)[], c.changes, %s, %s "
            "FROM unnest(%s::bigint[], %s::jsonb[], %s::jsonb[]) AS c(id, reasons, changes) "
            f"WHERE {' OR '.join(wheres)} "
            "ON CONFLICT (rule_id, crawl_id, bid_id) DO NOTHING RETURNING bid_id",
            [
                rule.pk,
                crawl_id,
                digested_at,
                now,
                ids,
                [Jsonb(candidates[pk][0]) for pk in ids],
                [Jsonb(candidates[pk][1]) for pk in ids],
                *params,
            ],
        )
        return sorted(pk for (pk,) in cursor.fetchall())


def bids_link(*, filter: dict[str, Any], crawl_id: int) -> str:
    """The dashboard's bids page with the rule's filter and the crawl."""
    query = urlencode({**filter, "crawl": crawl_id}, doseq=True)
    return f"{reverse('crawls:bids')}?{query}"


def _alert_notify(
    *, rule: AlertRule, crawl_id: int, items: list[messages.Item], new: set[int]
) -> Notification:
    """The rule's one notification of the crawl, grown by this batch's matches."""
    notification: Notification
    notification, created = Notification.objects.select_for_update().get_or_create(
        kind=Notification.Kind.ALERT_MATCHED,
        rule=rule,
        crawl_id=crawl_id,
        defaults={"workspace_id": rule.workspace_id, "recipient_id": rule.owner_id},
    )
    notification.count += len(items)
    listed = [
        messages.Item(*row)
        for row in AlertMatch.objects.filter(rule=rule, crawl_id=crawl_id)
        .order_by("id")
        .values_list("bid_id", "bid__title", "reasons", "changes")[: messages.LISTED_MAX]
    ]
    notification.title = f"{rule.name}: {messages.plural(notification.count, 'bid')} matched"
    notification.body = (
        f"Crawl {crawl_id} found {messages.plural(notification.count, 'bid')} "
        f"matching “{rule.name}”:\n{messages.listing(listed, notification.count)}"
    )
    notification.link = bids_link(filter=rule.filter, crawl_id=crawl_id)
    notification.read_at = None  # news again
    notification.updated_at = timezone.now()
    notification.save()
    push.push_on_commit(notification)
    batch = {
        "new": [item.bid_id for item in items if item.bid_id in new],
        "changed": [
            item.bid_id
            for item in items
            if item.bid_id not in new and conditions.REMOVED not in item.reasons
        ],
    }
    gone = [item.bid_id for item in items if conditions.REMOVED in item.reasons]
    if gone:
        batch["removed"] = gone
    payload = {
        "event": "alert.matched",
        "workspace": rule.workspace_id,
        "rule": {"id": rule.pk, "name": rule.name},
        "crawl": crawl_id,
        "notification": notification.pk,
        "count": notification.count,
        "batch": batch,
        "matches": messages.payload_matches(items),
        "link": fanout.absolute(notification.link),
    }
    fanout.alert_fanout(
        rule=rule, notification=notification, created=created, webhook_payload=payload
    )
    return notification
