"""The dashboard's API tokens page: create one (shown once), list yours, revoke.

The same services as the API's /tokens/ (token_create, token_revoke): a token belongs to its
user in one workspace, here the workspace chosen in the switcher.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from crawls import forms, selectors, services
from crawls.models import ApiToken
from crawls.views import Place, place_of, render_page

# The token just created (id and raw), until the page after the redirect shows it.
SESSION_NEW_TOKEN = "new_token"  # noqa: S105 - a session key, not a secret


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    place = place_of(request)
    current = place.current
    if current is None:
        raise Http404("You are not a member of any workspace.")
    form = forms.TokenForm(request.POST or None)
    if form.is_valid():
        try:
            token, raw = services.token_create(
                user=request.user, workspace=current.workspace, name=form.cleaned_data["name"]
            )
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            # Shown by the GET after the redirect, then forgotten: a reload shows it no more
            # (and does not post the form again).
            request.session[SESSION_NEW_TOKEN] = {"id": token.pk, "raw": raw}
            return redirect("crawls:tokens")
    new = request.session.pop(SESSION_NEW_TOKEN, None) if request.method == "GET" else None
    response = _page(request, place, current.workspace_id, form=form, new=new)
    if new is not None:
        add_never_cache_headers(response)  # the raw token: shown once, kept by no cache
    elif form.is_bound:
        response.status_code = 400
    return response


def _page(request: HttpRequest, place: Place, workspace_id: int, **context: Any) -> HttpResponse:
    sources = selectors.source_list_for_workspace(workspace_id=workspace_id).only(
        "schedule_timezone"
    )
    zone = selectors.workspace_timezone(sources=sources)
    tokens = selectors.token_list_for_user(user=request.user, workspace_id=workspace_id)
    new = context.pop("new")
    created = next((t for t in tokens if new and t.pk == new["id"]), None)
    context.update(tokens=tokens, zone=zone.key, created=created, raw=created and new["raw"])
    with timezone.override(zone):
        return render_page(request, "crawls/token_list.html", place, context)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = selectors.token_get_for_user(user=request.user, token_id=token_id)
    except ApiToken.DoesNotExist as exc:
        raise Http404("No such token of yours.") from exc
    was_active = token.is_active
    services.token_revoke(token=token)
    if was_active:
        messages.success(request, f"Token {token.name} ({token.prefix}…) revoked.")
    else:
        messages.info(request, f"Token {token.name} ({token.prefix}…) was already revoked.")
    return redirect("crawls:tokens")
