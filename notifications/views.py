"""Dashboard pages: the caller's notifications, and the alert rules of the current workspace.

Plain function views over selectors and services; every page works without JavaScript.
"""

from __future__ import annotations

from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crawls import forms as crawl_forms
from crawls import selectors as crawl_selectors
from crawls.models import Bid
from crawls.views import Place, current_membership, place_of, render_page
from notifications import channels, selectors, services
from notifications.models import AlertRule, Channel

PAGE_SIZE = 100
# The feed just made (its rule and URLs), until the rule page after the redirect shows it.
SESSION_NEW_FEED = "new_feed"


class CommaListField(django_forms.CharField):
    """A list of names typed comma-separated."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [name.strip() for name in text.split(",") if name.strip()]


class RuleForm(django_forms.Form):
    name = django_forms.CharField(max_length=200)
    webhook_url = django_forms.URLField(
        required=False,
        max_length=2000,
        assume_scheme="https",
        label="Webhook URL",
        help_text="Optional: POSTed a signed JSON body per matching batch.",
    )
    email = django_forms.EmailField(required=False, help_text="Optional: one email per crawl.")
    is_active = django_forms.BooleanField(required=False, initial=True, label="Active")
    # What the rule cares about and how it is delivered (docs/notifications.md, "Conditions").
    conditions = django_forms.MultipleChoiceField(
        required=False,
        choices=AlertRule.Condition.choices,
        widget=django_forms.CheckboxSelectMultiple,
        initial=[AlertRule.Condition.NEW, AlertRule.Condition.CHANGED],
        help_text="None ticked: new and changed.",
    )
    changed_fields = CommaListField(
        required=False,
        max_length=2000,
        label="Changed fields",
        help_text="For “changed”: only these fields, comma-separated (amount, deadline, "
        "extra.region…); empty: any field.",
    )
    amount_change_pct = django_forms.DecimalField(
        required=False, min_value=0.01, max_value=10000, decimal_places=2,
        label="Amount change (%)", help_text="For “amount changed”: at least this much.",
    )  # fmt: skip
    remind_days = django_forms.IntegerField(
        required=False, min_value=1, max_value=365, label="Remind days before the deadline",
        help_text="Empty: no deadline reminders.",
    )  # fmt: skip
    delivery = django_forms.ChoiceField(
        required=False, choices=AlertRule.Delivery.choices, initial=AlertRule.Delivery.IMMEDIATE
    )
    channels = django_forms.ModelMultipleChoiceField(
        required=False,
        queryset=Channel.objects.none(),
        widget=django_forms.CheckboxSelectMultiple,
        help_text="Apprise channels to tell too (your own: Channels page).",
    )

    def __init__(self, *args: Any, channels: QuerySet[Channel], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channels"].queryset = channels  # type: ignore[attr-defined]

    def clean_conditions(self) -> list[str]:
        default = [AlertRule.Condition.NEW.value, AlertRule.Condition.CHANGED.value]
        return list(self.cleaned_data["conditions"]) or default

    def clean_delivery(self) -> str:
        return self.cleaned_data["delivery"] or AlertRule.Delivery.IMMEDIATE


@login_required
@require_GET
def notification_list(request):
    place = place_of(request)
    notifications = selectors.notification_list_for_user(user=request.user).filter(
        workspace_id__in=[m.workspace_id for m in place.memberships]
    )
    if request.GET.get("unread") == "true":
        notifications = notifications.filter(read_at=None)
    context = {
        "notifications": list(notifications.order_by("-id")[:PAGE_SIZE]),
        "unread_only": request.GET.get("unread") == "true",
    }
    return render_page(request, "notifications/notification_list.html", place, context)


@login_required
@require_POST
def notification_read(request, notification_id: int):
    notification = (
        selectors.notification_list_for_user(user=request.user).filter(pk=notification_id).first()
    )
    if notification is None:
        raise Http404("No such notification.")
    services.notification_mark_read(notification=notification)
    if request.POST.get("go") and notification.link.startswith("/"):
        return redirect(notification.link)
    return redirect("notifications:list")


@login_required
@require_POST
def notification_read_all(request):
    marked = services.notification_mark_all_read(user=request.user)
    messages.success(request, f"Marked {marked} notification{'s' if marked != 1 else ''} read.")
    return redirect("notifications:list")


@login_required
@require_GET
def alert_rule_list(request):
    place = place_of(request)
    workspace_id = current_membership(place).workspace_id
    rules = selectors.alert_rule_list().filter(workspace_id=workspace_id).select_related("owner")
    return render_page(request, "notifications/rule_list.html", place, {"rules": list(rules)})


def _filter_form(data, workspace_id: int):
    sources = list(crawl_selectors.source_list_for_workspace(workspace_id=workspace_id))
    filterset = crawl_forms.bid_filter(data, queryset=Bid.objects.none(), sources=sources)
    form = filterset.form
    for name in services.RESERVED_FILTERS:
        form.fields.pop(name, None)  # bid_filter already dropped `workspace`
    return form


def _filter_values(form, data) -> dict:
    """The filter fields the user filled in, as the API's query parameters."""
    values = {}
    for name, field in form.fields.items():
        raw = field.widget.value_from_datadict(data, {}, form.add_prefix(name))
        if raw in (None, "", []):
            continue
        values[name] = raw
    return values


def _rule_of(request, place: Place, rule_id: int) -> AlertRule:
    rule = (
        selectors.alert_rule_list()
        .filter(pk=rule_id, workspace_id__in=[m.workspace_id for m in place.memberships])
        .first()
    )
    if rule is None:
        raise Http404("No such alert rule.")
    return rule


@login_required
@require_http_methods(["GET", "POST"])
def alert_rule_create(request):
    place = place_of(request)
    workspace_id = current_membership(place).workspace_id
    return _rule_form(request, place, workspace_id=workspace_id, rule=None)


@login_required
@require_http_methods(["GET", "POST"])
def alert_rule_edit(request, rule_id: int):
    place = place_of(request)
    rule = _rule_of(request, place, rule_id)
    return _rule_form(request, place, workspace_id=rule.workspace_id, rule=rule)


def _rule_form(request, place: Place, *, workspace_id: int, rule: AlertRule | None):
    can_write = bool(place.membership(workspace_id) and place.membership(workspace_id).can_write)
    # The channels the rule's owner (a new rule's: the user) may choose: their own active ones.
    choosable = Channel.objects.filter(
        workspace_id=workspace_id,
        owner_id=rule.owner_id if rule is not None else request.user.pk,
        is_active=True,
    ).order_by("name", "id")
    if request.method == "POST":
        place.require_writer(workspace_id)
        form = RuleForm(request.POST, channels=choosable)
        filters = _filter_form(request.POST, workspace_id)
        values = _filter_values(filters, request.POST)
        for name, errors in services.alert_filter_errors(filter=values).items():
            filters.add_error(name if name in filters.fields else None, errors)
        if form.is_valid() and not filters.errors:
            fields = dict(form.cleaned_data)
            chosen = fields.pop("channels")
            try:
                with transaction.atomic():
                    if rule is None:
                        rule = services.alert_rule_create(
                            workspace_id=workspace_id, owner=request.user, filter=values, **fields
                        )
                        secret = rule.webhook_secret
                        saved = f"Alert rule saved. Its webhook secret (shown once): {secret}"
                    else:
                        services.alert_rule_update(rule=rule, filter=values, **fields)
                        saved = "Alert rule saved."
                    channels.alert_rule_channels_set(rule=rule, channels=chosen)
                messages.success(request, saved)
                return redirect("notifications:rules")
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
        status = 400
    else:
        initial: dict[str, Any] = {"is_active": True}
        if rule is not None:
            initial = {name: getattr(rule, name) for name in RuleForm.base_fields}
            initial["channels"] = list(rule.channels.all())
        form = RuleForm(initial=initial, channels=choosable)
        data = services.filter_querydict(rule.filter) if rule is not None else None
        filters = _filter_form(data, workspace_id)
        status = 200
    feeds = list(selectors.feed_token_list(rule=rule).filter(revoked_at=None)) if rule else []
    new_feed = request.session.pop(SESSION_NEW_FEED, None) if request.method == "GET" else None
    if new_feed is not None and (rule is None or new_feed.get("rule") != rule.pk):
        new_feed = None
    context = {
        "form": form,
        "filters": filters,
        "rule": rule,
        "can_write": can_write,
        "feeds": feeds,
        "new_feed": new_feed,
    }
    response = render_page(request, "notifications/rule_form.html", place, context, status=status)
    if new_feed is not None:
        add_never_cache_headers(response)  # the feed's secret URLs: shown once, kept by no cache
    return response


@login_required
@require_POST
def alert_rule_delete(request, rule_id: int):
    place = place_of(request)
    rule = _rule_of(request, place, rule_id)
    membership = place.membership(rule.workspace_id)
    if membership is None or not membership.can_write:
        raise PermissionDenied("Viewers can look but not change anything.")
    services.alert_rule_delete(rule=rule)
    messages.success(request, f"Alert rule “{rule.name}” deleted.")
    return redirect("notifications:rules")


@login_required
@require_POST
def alert_rule_feed_create(request: HttpRequest, rule_id: int) -> HttpResponse:
    """A new feed URL of the rule, shown once on its page; any member who sees the rule."""
    place = place_of(request)
    rule = _rule_of(request, place, rule_id)
    user_id = request.user.pk
    if user_id is None:  # login_required let nobody anonymous in: this narrows the type
        raise PermissionDenied("Sign in first.")
    token, raw = services.feed_token_create(rule=rule, user_id=user_id)
    request.session[SESSION_NEW_FEED] = {
        "rule": rule.pk,
        "prefix": token.prefix,
        "atom": request.build_absolute_uri(reverse("notifications:feed_atom", args=[raw])),
        "rss": request.build_absolute_uri(reverse("notifications:feed_rss", args=[raw])),
    }
    return redirect("notifications:rule_edit", rule_id=rule.pk)


@login_required
@require_POST
def alert_rule_feed_revoke(request: HttpRequest, rule_id: int, feed_id: int) -> HttpResponse:
    """Revoke a feed URL: its creator, or a member who may change the rule."""
    place = place_of(request)
    rule = _rule_of(request, place, rule_id)
    token = selectors.feed_token_list(rule=rule).filter(pk=feed_id).first()
    if token is None:
        raise Http404("No such feed of this rule.")
    membership = place.membership(rule.workspace_id)
    if token.created_by_id != request.user.pk and not (membership and membership.can_write):
        raise PermissionDenied("Viewers can revoke only the feeds they made.")
    services.feed_token_revoke(token=token)
    messages.success(request, f"Feed {token.prefix}… revoked.")
    return redirect("notifications:rule_edit", rule_id=rule.pk)
