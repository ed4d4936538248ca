"""Notifications (in-app, per user), alert rules (saved bid filters), webhook and email
deliveries."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from crawls.models import Bid, Crawl, Workspace, WorkspaceOwned


def _default_conditions() -> list[str]:
    return ["new", "changed"]


class AlertRule(WorkspaceOwned):
    """A saved bid filter of one user and what they care about in the bids it matches (its
    conditions: new, changed, removed...; deadline reminders), delivered at once or in digests.
    docs/notifications.md."""

    class Condition(models.TextChoices):
        NEW = "new", "New bid"
        CHANGED = "changed", "Changed (any field, or the fields named)"
        REMOVED = "removed", "Removed from the board"
        CANCELLED = "cancelled", "Cancelled"
        AMOUNT_CHANGED = "amount_changed", "Amount changed by at least the percentage"
        DEADLINE_MOVED = "deadline_moved", "Deadline moved"

    class Delivery(models.TextChoices):
        IMMEDIATE = "immediate", "Immediately"
        HOURLY = "hourly", "Hourly digest"
        DAILY = "daily", "Daily digest"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="alert_rules")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_rules"
    )
    name = models.CharField(max_length=200)
    filter = models.JSONField(default=dict, blank=True, help_text="BidFilter query parameters.")
    webhook_url = models.URLField(max_length=2000, blank=True)
    webhook_secret = models.CharField(max_length=64, editable=False)
    email = models.EmailField(blank=True)
    conditions = ArrayField(
        models.CharField(max_length=20, choices=Condition.choices),
        default=_default_conditions,
        help_text="What makes a bid matching the filter news (Condition values).",
    )
    changed_fields = ArrayField(
        models.CharField(max_length=100),
        default=list,
        blank=True,
        help_text="Condition 'changed': only these fields (empty: any field).",
    )
    amount_change_pct = models.DecimalField(
        max_digits=7, decimal_places=2, null=True, blank=True,
        help_text="Condition 'amount_changed': the least change, in percent.",
    )  # fmt: skip
    remind_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Remind when a deadline is within this many days."
    )
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.IMMEDIATE)
    digest_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    channels: models.ManyToManyField[Channel, Any] = models.ManyToManyField(
        "Channel", blank=True, related_name="rules"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["workspace"], name="alertrule_ws_active", condition=Q(is_active=True)
            ),
            models.Index(
                fields=["remind_days"],
                name="alertrule_reminding",
                condition=Q(is_active=True, remind_days__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Notification(WorkspaceOwned):
    class Kind(models.TextChoices):
        CRAWL_SUCCEEDED = "crawl_succeeded", "Crawl succeeded"
        CRAWL_FAILED = "crawl_failed", "Crawl failed"
        ALERT_MATCHED = "alert_matched", "Alert rule matched"
        ALERT_DIGEST = "alert_digest", "Alert digest"
        REMINDER = "reminder", "Deadline reminder"
        CRAWL_DEGRADED = "crawl_degraded", "Crawl degraded"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=2000, blank=True)
    crawl = models.ForeignKey(
        Crawl, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    count = models.PositiveIntegerField(default=0, help_text="Bids matched (alerts).")
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["recipient", "-id"], name="notification_recipient_recent"),
            models.Index(
                fields=["recipient"], name="notification_unread", condition=Q(read_at=None)
            ),
        ]
        constraints = [
            # One alert notification per rule per crawl: later batches update its count.
            models.UniqueConstraint(
                fields=["rule", "crawl"],
                name="notification_unique_alert",
                condition=Q(kind="alert_matched"),
            ),
            # One crawl outcome per recipient, however often the final event is delivered.
            models.UniqueConstraint(
                fields=["recipient", "crawl", "kind"],
                name="notification_unique_crawl_outcome",
                condition=Q(kind__in=["crawl_succeeded", "crawl_failed", "crawl_degraded"]),
            ),
        ]

    def __str__(self) -> str:
        return self.title


class AlertMatch(models.Model):
    """A bid a rule matched in a crawl: the ledger that makes matching idempotent. `reasons`
    names the conditions met, `changes` what changed ({field: [old, new]}); a digest rule's
    matches wait with digested_at None until its digest goes out."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="+")
    crawl = models.ForeignKey(Crawl, on_delete=models.CASCADE, related_name="+")
    bid = models.ForeignKey(Bid, on_delete=models.CASCADE, related_name="+")
    is_new = models.BooleanField()
    reasons = ArrayField(models.CharField(max_length=20), default=list, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    digested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "crawl", "bid"], name="alertmatch_unique"),
        ]
        indexes = [
            models.Index(
                fields=["rule", "id"], name="alertmatch_undigested", condition=Q(digested_at=None)
            ),
        ]

    def __str__(self) -> str:
        return f"rule {self.rule_id} crawl {self.crawl_id} bid {self.bid_id}"


class Reminder(models.Model):
    """A deadline reminder sent: once per bid per rule per deadline (a moved deadline reminds
    again), whatever how often the reminder job runs."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="+")
    bid = models.ForeignKey(Bid, on_delete=models.CASCADE, related_name="+")
    deadline = models.DateTimeField()
    notification = models.ForeignKey(
        "Notification", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "bid", "deadline"], name="reminder_unique"),
        ]

    def __str__(self) -> str:
        return f"rule {self.rule_id} bid {self.bid_id} deadline {self.deadline:%Y-%m-%d}"


class Channel(WorkspaceOwned):
    """A notification channel of one user through Apprise (Slack, Discord, Telegram, Teams,
    ntfy, Matrix...). The Apprise URL holds secrets: write-only, shown as `display` only."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="channels")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="channels"
    )
    name = models.CharField(max_length=200)
    url = models.TextField(editable=False, help_text="The Apprise URL (secret, write-only).")
    service = models.CharField(max_length=40, editable=False, help_text="Apprise scheme.")
    display = models.CharField(max_length=300, editable=False, help_text="The URL, redacted.")
    crawl_problems = models.BooleanField(
        default=False, help_text="Also tell of failed and degraded crawls (owners and admins)."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.service})"


class DeliveryStatus(models.TextChoices):
    """Where a webhook or email delivery stands (notifications/deliveries.py)."""

    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (will retry)"
    DEAD = "dead", "Dead (gave up)"


class Delivery(WorkspaceOwned):
    """What webhook and email deliveries share: a status, attempts, the next attempt's time."""

    Status = DeliveryStatus

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    notification = models.ForeignKey(
        Notification, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-id"]


class WebhookDelivery(Delivery):
    """One POST of a rule's webhook, retried with backoff until it succeeds or goes dead."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="deliveries")
    url = models.URLField(max_length=2000)
    payload = models.JSONField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta(Delivery.Meta):
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhookdelivery_due",
                condition=Q(status__in=["pending", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.pk} of rule {self.rule_id} ({self.status})"


class EmailDelivery(Delivery):
    """One alert email, sent by a task and retried with backoff on SMTP errors, then dead."""

    to = models.EmailField()
    subject = models.CharField(max_length=400)
    body = models.TextField()

    class Meta(Delivery.Meta):
        verbose_name_plural = "email deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="emaildelivery_due",
                condition=Q(status__in=["pending", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return f"Email {self.pk} to {self.to} ({self.status})"


class ChannelDelivery(Delivery):
    """One message to an Apprise channel, retried with backoff until it succeeds or goes dead."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    title = models.CharField(max_length=400)
    body = models.TextField()

    class Meta(Delivery.Meta):
        verbose_name_plural = "channel deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="channeldelivery_due",
                condition=Q(status__in=["pending", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return f"Channel delivery {self.pk} to {self.channel_id} ({self.status})"


FEED_PREFIX_LENGTH = 8  # hex characters at the start of a feed token: its public part


def feed_token_hash(raw: str) -> str:
    """What a feed token is stored as (never in clear): its SHA-256."""
    return hashlib.sha256(raw.encode()).hexdigest()


class FeedToken(WorkspaceOwned):
    """A secret in the URL of an alert rule's Atom and RSS feeds (feed readers send no headers):
    shown once, stored as its SHA-256, revocable. docs/notifications.md, "Feeds"."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="feed_tokens")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    prefix = models.CharField(max_length=12, unique=True, help_text="Identifies the token.")
    key_hash = models.CharField(max_length=64, help_text="SHA-256 of the whole token.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Feed {self.prefix}… of rule {self.rule_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
