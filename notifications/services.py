"""Notification writes: alert rules, crawl outcomes, reading. Each write is one transaction;
pushes (push.py) run on commit, emails (emails.py) and webhooks (webhooks.py) are stored rows
whose tasks are enqueued on commit. Matching crawl batches is matching.py (re-exported here),
digests digests.py, deadline reminders reminders.py. docs/notifications.md.
"""

from __future__ import annotations

import functools
import logging
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from crawls.filters import BidFilter
from crawls.models import Bid, Crawl
from notifications import conditions, emails, fanout, matching, push, selectors, webhooks
from notifications.fanout import absolute
from notifications.models import (
    FEED_PREFIX_LENGTH,
    AlertRule,
    FeedToken,
    Notification,
    feed_token_hash,
)

logger = logging.getLogger(__name__)

# Implied by the rule (its workspace) or by the match (the crawl): not saved in a filter, not
# shown in the dashboard's rule form (views._filter_form).
RESERVED_FILTERS = frozenset({"workspace", "crawl", "state"})

# Re-exported: their homes are matching.py, push.py and selectors.py.
alert_match_batch = matching.alert_match_batch
bids_link = matching.bids_link
filter_querydict = selectors.filter_querydict
notification_message = push.notification_message
notification_push = push.notification_push
_push_on_commit = push.push_on_commit

# --- Alert rules ---------------------------------------------------------------------------------


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


# What a rule cares about and how it is delivered (conditions.py; docs/notifications.md).
RULE_OPTIONS = ("conditions", "changed_fields", "amount_change_pct", "remind_days", "delivery")


def _alert_rule_clean(*, filter, webhook_url: str, options: dict | None = None) -> None:
    errors: dict[str, list[str]] = {}
    errors.update(conditions.rule_option_errors(**(options or {})))
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
    **options,
) -> AlertRule:
    """Save a rule with a fresh webhook secret (shown once to its creator); `options` are
    RULE_OPTIONS (the model's defaults when left out)."""
    unknown = set(options) - set(RULE_OPTIONS)
    if unknown:
        raise ValidationError({name: ["not a rule field"] for name in sorted(unknown)})
    _alert_rule_clean(filter=filter, webhook_url=webhook_url, options=options)
    if "conditions" in options:
        options["conditions"] = list(dict.fromkeys(options["conditions"]))
    return AlertRule.objects.create(
        workspace_id=workspace_id,
        owner=owner,
        name=name,
        filter=filter,
        webhook_url=webhook_url,
        webhook_secret=secrets.token_hex(32),
        email=email,
        is_active=is_active,
        **options,
    )


RULE_FIELDS = ("name", "filter", "webhook_url", "email", "is_active", *RULE_OPTIONS)


def alert_rule_update(*, rule: AlertRule, **changes) -> AlertRule:
    """Change a rule's name, filter, delivery or active flag (not its workspace or owner)."""
    for name, value in changes.items():
        if name not in RULE_FIELDS:
            raise ValidationError({name: ["cannot be changed"]})
        if name == "conditions":
            value = list(dict.fromkeys(value))
        setattr(rule, name, value)
    options = {name: getattr(rule, name) for name in RULE_OPTIONS}
    _alert_rule_clean(filter=rule.filter, webhook_url=rule.webhook_url, options=options)
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
