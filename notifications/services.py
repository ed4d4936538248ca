"""Notification writes: alert rules, matching committed crawl batches, crawl outcomes, reading,
live push. Each write is one transaction; pushes run on commit, emails (emails.py) and webhooks
(webhooks.py) are stored rows whose tasks are enqueued on commit. docs/notifications.md.
"""

from __future__ import annotations

import functools
import logging
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from crawls import events, realtime
from crawls.filters import BidFilter
from crawls.models import Bid, Crawl, CrawlEvent
from notifications import emails, fanout, selectors, webhooks
from notifications.fanout import absolute
from notifications.models import (
    FEED_PREFIX_LENGTH,
    AlertMatch,
    AlertRule,
    FeedToken,
    Notification,
    feed_token_hash,
)

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "notification.message"  # NotificationConsumer.notification_message
# Implied by the rule (its workspace) or by the match (the crawl): not saved in a filter, not
# shown in the dashboard's rule form (views._filter_form).
RESERVED_FILTERS = frozenset({"workspace", "crawl", "state"})

# --- Alert rules ---------------------------------------------------------------------------------


def filter_querydict(filter: dict) -> QueryDict:
    """A saved filter as the query string the API would have received."""
    data = QueryDict(mutable=True)
    for name, value in filter.items():
        values = value if isinstance(value, list) else [value]
        data.setlist(name, [str(v) for v in values])
    return data


def alert_filter_errors(*, filter) -> dict[str, list[str]]:
    """What is wrong with a saved filter, by parameter name (BidFilter validates, as the API)."""
    if not isinstance(filter, dict):
        return {"non_field_errors": ["must be an object of bid filter parameters"]}
    errors: dict[str, list[str]] = {}
    for name, value in filter.items():
        if name not in BidFilter.base_filters:
            errors[name] = ["unknown bid filter"]
        elif name in RESERVED_FILTERS:
            errors[name] = ["not allowed in an alert rule (the rule's workspace and crawl apply)"]
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, bool) or not isinstance(v, str | int | float) for v in values):
            errors.setdefault(name, []).append("must be a string, a number or a list of them")
        elif len(values) > settings.ALERT_FILTER_MAX_VALUES:
            errors.setdefault(name, []).append(f"at most {settings.ALERT_FILTER_MAX_VALUES} values")
        elif any(len(str(v)) > settings.ALERT_FILTER_MAX_LENGTH for v in values):
            errors.setdefault(name, []).append(
                f"a value is longer than {settings.ALERT_FILTER_MAX_LENGTH} characters"
            )
    if errors:
        return errors
    form = BidFilter(filter_querydict(filter), queryset=Bid.objects.none()).form
    if not form.is_valid():
        return {name: list(messages) for name, messages in form.errors.items()}
    return {}


def _alert_rule_clean(*, filter, webhook_url: str) -> None:
    errors: dict[str, list[str]] = {}
    filter_errors = alert_filter_errors(filter=filter)
    if filter_errors:
        errors["filter"] = [f"{name}: {' '.join(m)}" for name, m in filter_errors.items()]
    refusal = webhooks.webhook_url_refusal(url=webhook_url) if webhook_url else None
    if refusal:
        errors["webhook_url"] = [f"refused: {refusal}"]
    if errors:
        raise ValidationError(errors)


def alert_rule_create(
    *,
    workspace_id: int,
    owner,
    name: str,
    filter: dict,
    webhook_url: str = "",
    email: str = "",
    is_active: bool = True,
) -> AlertRule:
    """Save a rule with a fresh webhook secret (shown once to its creator)."""
    _alert_rule_clean(filter=filter, webhook_url=webhook_url)
    return AlertRule.objects.create(
        workspace_id=workspace_id,
        owner=owner,
        name=name,
        filter=filter,
        webhook_url=webhook_url,
        webhook_secret=secrets.token_hex(32),
        email=email,
        is_active=is_active,
    )


RULE_FIELDS = ("name", "filter", "webhook_url", "email", "is_active")


def alert_rule_update(*, rule: AlertRule, **changes) -> AlertRule:
    """Change a rule's name, filter, delivery or active flag (not its workspace or owner)."""
    for name, value in changes.items():
        if name not in RULE_FIELDS:
            raise ValidationError({name: ["cannot be changed"]})
        setattr(rule, name, value)
    _alert_rule_clean(filter=rule.filter, webhook_url=rule.webhook_url)
    rule.save(update_fields=[*changes, "updated_at"])
    return rule


def alert_rule_delete(*, rule: AlertRule) -> None:
    """Delete a rule; its notifications stay (without the rule)."""
    rule.delete()


# --- Feed tokens ------------------------------------------------------------------------------


def feed_token_create(*, rule: AlertRule, user_id: int) -> tuple[FeedToken, str]:
    """A new secret for the rule's feeds, made by a member who sees the rule (the caller checks);
    the plain token is returned once."""
    prefix = secrets.token_hex(FEED_PREFIX_LENGTH // 2)
    raw = f"{prefix}{secrets.token_urlsafe(32)}"
    token = FeedToken.objects.create(
        workspace_id=rule.workspace_id,
        rule=rule,
        created_by_id=user_id,
        prefix=prefix,
        key_hash=feed_token_hash(raw),
    )
    return token, raw


def feed_token_revoke(*, token: FeedToken) -> FeedToken:
    """Revoke a feed token: its URLs answer 404 from now on (revoked already: unchanged)."""
    now = timezone.now()
    if FeedToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=now):
        token.revoked_at = now
    else:
        token.refresh_from_db(fields=["revoked_at"])
    return token


# --- Matching crawl batches --------------------------------------------------------------------


def alert_match_batch(
    *, crawl_id: int, workspace_id: int, new: list[int], changed: list[int]
) -> list[Notification]:
    """Match one committed batch against every active rule of the workspace (one query each).

    Matches go into a ledger with a unique (rule, crawl, bid), so a redelivered batch inserts
    nothing and changes nothing; a rule's matches in a crawl update its one notification.
    """
    ids = [*new, *changed]
    if not ids:
        return []
    touched = []
    with transaction.atomic():
        for rule in selectors.alert_rules_to_match(workspace_id=workspace_id):
            inserted = _match_insert(rule=rule, crawl_id=crawl_id, ids=ids, new=new)
            if inserted:
                touched.append(_alert_notify(rule=rule, crawl_id=crawl_id, inserted=inserted))
    return touched


def alert_match_crawl(*, crawl_id: int, workspace_id: int) -> list[Notification]:
    """Match again every batch the crawl's log records (its crawl.items events), once it ends.

    A batch whose subscriber call was lost (the database went away between the batch's commit
    and the call, a worker died there) is matched now; batches matched already insert nothing,
    so nobody is told twice. The log is the truth, as for the analytics read model.
    """
    new: set[int] = set()
    changed: set[int] = set()
    payloads = CrawlEvent.objects.filter(crawl_id=crawl_id, type=events.ITEMS).values_list(
        "payload", flat=True
    )
    for payload in payloads:
        new.update(payload.get("new", []))
        changed.update(payload.get("changed", []))
    return alert_match_batch(
        crawl_id=crawl_id,
        workspace_id=workspace_id,
        new=sorted(new),
        changed=sorted(changed - new),
    )


def _match_insert(
    *, rule: AlertRule, crawl_id: int, ids: list[int], new: list[int]
) -> list[tuple[int, bool]]:
    """INSERT the batch's bids the rule matches; (bid id, is new) of the rows inserted."""
    base = Bid.objects.filter(workspace_id=rule.workspace_id, pk__in=ids)
    filterset = BidFilter(filter_querydict(rule.filter), queryset=base)
    if not filterset.is_valid():  # saved before BidFilter changed: never widen it silently
        logger.warning("alert rule %s has an invalid filter: %s", rule.pk, filterset.errors)
        return []
    sql, params = filterset.qs.order_by().values_list("pk", flat=True).query.sql_with_params()
    table = AlertMatch._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "  # noqa: S608 - our table, our SQL
            "(rule_id, crawl_id, bid_id, is_new, reasons, changes, created_at) "
            f"SELECT %s, %s, m.id, m.id = ANY(%s), '{{}}', '{{}}', %s FROM ({sql}) AS m(id) "
            "ON CONFLICT (rule_id, crawl_id, bid_id) DO NOTHING RETURNING bid_id, is_new",
            [rule.pk, crawl_id, list(new), timezone.now(), *params],
        )
        return sorted(cursor.fetchall())


def bids_link(*, filter: dict, crawl_id: int) -> str:
    """The dashboard's bids page with the rule's filter and the crawl."""
    query = urlencode({**filter, "crawl": crawl_id}, doseq=True)
    return f"{reverse('crawls:bids')}?{query}"


def _alert_notify(*, rule: AlertRule, crawl_id: int, inserted: list[tuple[int, bool]]):
    notification, created = Notification.objects.select_for_update().get_or_create(
        kind=Notification.Kind.ALERT_MATCHED,
        rule=rule,
        crawl_id=crawl_id,
        defaults={"workspace_id": rule.workspace_id, "recipient_id": rule.owner_id},
    )
    notification.count += len(inserted)
    plural = "" if notification.count == 1 else "s"
    notification.title = f"{rule.name}: {notification.count} bid{plural} matched"
    notification.body = (
        f"Crawl {crawl_id} found {notification.count} new or changed bid{plural} "
        f"matching “{rule.name}”."
    )
    notification.link = bids_link(filter=rule.filter, crawl_id=crawl_id)
    notification.read_at = None  # news again
    notification.updated_at = timezone.now()
    notification.save()
    _push_on_commit(notification)
    payload = {
        "event": "alert.matched",
        "workspace": rule.workspace_id,
        "rule": {"id": rule.pk, "name": rule.name},
        "crawl": crawl_id,
        "notification": notification.pk,
        "count": notification.count,
        "batch": {
            "new": [bid for bid, is_new in inserted if is_new],
            "changed": [bid for bid, is_new in inserted if not is_new],
        },
        "link": absolute(notification.link),
    }
    fanout.alert_fanout(
        rule=rule, notification=notification, created=created, webhook_payload=payload
    )
    return notification


# --- Crawl outcomes ----------------------------------------------------------------------------


def crawl_outcome_notify(
    *, crawl_id: int, succeeded: bool, degraded: bool = False
) -> list[Notification]:
    """Tell a finished crawl's recipients (selectors.crawl_outcome_recipients) once each. A
    degraded crawl (docs/quality.md) is told to its managers and creator, by email too."""
    crawl = Crawl.objects.select_related("source").filter(pk=crawl_id).first()
    if crawl is None:
        return []
    if degraded:
        kind = Notification.Kind.CRAWL_DEGRADED
        title = f"Crawl of {crawl.source.name} degraded"
        body = crawl.error or "The crawl extracted worse than its source's recent crawls."
        recipients = selectors.crawl_degraded_recipients(crawl=crawl)
    else:
        kind = Notification.Kind.CRAWL_SUCCEEDED if succeeded else Notification.Kind.CRAWL_FAILED
        if succeeded:
            title = f"Crawl of {crawl.source.name} succeeded"
            body = f"{crawl.items_new} new, {crawl.items_changed} changed bids."
        else:
            title = f"Crawl of {crawl.source.name} failed"
            body = crawl.error or "The crawl failed."
        recipients = selectors.crawl_outcome_recipients(crawl=crawl, succeeded=succeeded)
    link = reverse("crawls:crawl", args=[crawl.pk])
    created_ones = []
    with transaction.atomic():
        for user_id in recipients:
            notification, created = Notification.objects.get_or_create(
                kind=kind,
                recipient_id=user_id,
                crawl=crawl,
                defaults={
                    "workspace_id": crawl.workspace_id,
                    "title": title,
                    "body": body,
                    "link": link,
                },
            )
            if created:
                _push_on_commit(notification)
                if degraded:
                    _email_recipient(notification)
                if not succeeded or degraded:
                    fanout.crawl_problem_fanout(notification=notification)
                created_ones.append(notification)
    return created_ones


def _email_recipient(notification: Notification) -> None:
    """The notification by email to its recipient's address, when they have one."""
    to = notification.recipient.email
    if to:
        emails.email_delivery_create(
            notification=notification,
            to=to,
            subject=f"[Forest] {notification.title}",
            body=f"{notification.body}\n\n{absolute(notification.link)}\n",
        )


# --- Reading -----------------------------------------------------------------------------------


def notification_mark_read(*, notification: Notification) -> Notification:
    """Mark one notification read (again: no change) and update the user's live count."""
    with transaction.atomic():
        now = timezone.now()
        marked = Notification.objects.filter(pk=notification.pk, read_at=None).update(read_at=now)
        if marked:
            notification.read_at = now
            transaction.on_commit(
                functools.partial(notification_push, user_id=notification.recipient_id)
            )
    return notification


def notification_mark_all_read(*, user, workspace_id: int | None = None) -> int:
    """Mark every unread notification of `user` (in one workspace, if given) read; how many."""
    with transaction.atomic():
        unread = Notification.objects.filter(recipient=user, read_at=None)
        if workspace_id is not None:
            unread = unread.filter(workspace_id=workspace_id)
        marked = unread.update(read_at=timezone.now())
        if marked:
            transaction.on_commit(functools.partial(notification_push, user_id=user.pk))
    return marked


# --- Delivery: live push ----------------------------------------------------------------------


def notification_message(notification: Notification) -> dict:
    """The wire form of a notification (WebSocket; the API's NotificationSerializer agrees)."""
    return {
        "id": notification.pk,
        "workspace": notification.workspace_id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "link": notification.link,
        "crawl": notification.crawl_id,
        "rule": notification.rule_id,
        "count": notification.count,
        "read_at": notification.read_at.isoformat() if notification.read_at else None,
        "created_at": notification.created_at.isoformat(),
        "updated_at": notification.updated_at.isoformat(),
    }


def notification_push(*, user_id: int, notification: Notification | None = None) -> None:
    """Send a user's sockets the notification (None: only the count changed) and unread count."""
    realtime.publish(
        [realtime.notifications_group(user_id)],
        {
            "type": MESSAGE_TYPE,
            "notification": notification_message(notification) if notification else None,
            "unread": selectors.notification_unread_count(user_id=user_id),
        },
    )


def _push_on_commit(notification: Notification) -> None:
    transaction.on_commit(
        functools.partial(
            notification_push, user_id=notification.recipient_id, notification=notification
        )
    )
