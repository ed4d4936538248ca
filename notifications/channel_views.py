"""Dashboard page of the caller's Apprise channels in the current workspace: list, add with a
URL (judged by the guard, never shown again), delete, send a test. Works without JavaScript."""

from __future__ import annotations

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from crawls.views import place_of, render_page
from notifications import channel_urls, channels, selectors
from notifications.models import Channel


class ChannelForm(django_forms.Form):
    name = django_forms.CharField(max_length=200)
    url = django_forms.CharField(
        max_length=channel_urls.URL_MAX_LENGTH,
        label="Apprise URL",
        help_text="e.g. ntfys://ntfy.example.org/topic or slack://TokenA/TokenB/TokenC. "
        "Kept secret: never shown again.",
    )
    crawl_problems = django_forms.BooleanField(
        required=False, label="Also tell me of failed and degraded crawls"
    )


def _channel_of(request: HttpRequest, channel_id: int) -> Channel:
    channel = selectors.channel_list_for_user(user=request.user).filter(pk=channel_id).first()
    if channel is None:
        raise Http404("No such channel.")
    return channel


@login_required
@require_http_methods(["GET", "POST"])
def channel_list(request: HttpRequest) -> HttpResponse:
    place = place_of(request)
    if place.current is None:
        raise Http404("You are not a member of any workspace.")
    workspace_id = place.current.workspace_id
    form = ChannelForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                channels.channel_create(
                    workspace_id=workspace_id, owner=request.user, **form.cleaned_data
                )
                messages.success(request, "Channel saved.")
                return redirect("notifications:channels")
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
        status = 400
    mine = selectors.channel_list_for_user(user=request.user).filter(workspace_id=workspace_id)
    context = {"form": form, "channels": list(mine)}
    return render_page(request, "notifications/channel_list.html", place, context, status=status)


@login_required
@require_POST
def channel_delete(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel_of(request, channel_id)
    channels.channel_delete(channel=channel)
    messages.success(request, f"Channel “{channel.name}” deleted.")
    return redirect("notifications:channels")


@login_required
@require_POST
def channel_test(request: HttpRequest, channel_id: int) -> HttpResponse:
    try:
        channels.channel_test(channel=_channel_of(request, channel_id))
        messages.success(request, "Test message on its way.")
    except ValidationError:
        messages.error(request, "The channel is not active.")
    return redirect("notifications:channels")
