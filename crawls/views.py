"""Dashboard pages: overview, crawls and sources of the caller's current workspace (bids:
crawls.bid_views), and what every dashboard page shares (Place, render_page).

Plain function views over selectors (reads) and services (writes). Every page works without
JavaScript; crawls/static/crawls/live.js only adds live updates over the WebSockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crawls import events, forms, quality_report, selectors, services, source_examples
from crawls.engine import progress
from crawls.models import Crawl, Membership, Source

SESSION_WORKSPACE = "workspace_id"


@dataclass
class Place:
    """The caller's memberships and the workspace the pages show."""

    memberships: list[Membership]
    current: Membership | None

    def membership(self, workspace_id: int) -> Membership | None:
        return next((m for m in self.memberships if m.workspace_id == workspace_id), None)

    def require_writer(self, workspace_id: int) -> None:
        membership = self.membership(workspace_id)
        if membership is None or not membership.can_write:
            raise PermissionDenied("Viewers can look but not change anything.")


def place_of(request) -> Place:
    """The caller's memberships and the workspace chosen in the switcher (else the first)."""
    memberships = selectors.membership_list_of_user(user=request.user)
    chosen = request.session.get(SESSION_WORKSPACE)
    current = next((m for m in memberships if m.workspace_id == chosen), None)
    return Place(memberships, current or (memberships[0] if memberships else None))


def render_page(
    request: HttpRequest,
    template: str,
    place: Place,
    context: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    """A dashboard page: `place` and the current membership are in every page's context."""
    context = {"place": place, "membership": place.current, **(context or {})}
    return render(request, template, context, status=status)


def current_membership(place: Place) -> Membership:
    """The membership of the workspace chosen in the switcher (404 without one)."""
    if place.current is None:
        raise Http404("You are not a member of any workspace.")
    return place.current


def _back(request, default: str) -> HttpResponseRedirect:
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        target = default
    return redirect(target)


# --- Overview and workspace -----------------------------------------------------------------


@login_required
@require_GET
def overview(request):
    place = place_of(request)
    if place.current is None:
        return render_page(request, "crawls/overview.html", place)
    workspace_id = place.current.workspace_id
    crawls = [
        progress.crawl_with_progress(c)
        for c in selectors.crawl_list_for_workspace(workspace_id=workspace_id)
    ]
    context = {
        "crawls": crawls,
        "sources": selectors.source_list_for_workspace(workspace_id=workspace_id),
        "counts": selectors.workspace_counts(workspace_id=workspace_id),
    }
    return render_page(request, "crawls/overview.html", place, context)


@login_required
@require_POST
def workspace_switch(request):
    place = place_of(request)
    try:
        chosen = int(request.POST.get("workspace", ""))
    except ValueError:
        chosen = 0
    if place.membership(chosen) is None:
        raise Http404("No such workspace of yours.")
    request.session[SESSION_WORKSPACE] = chosen
    return _back(request, reverse("crawls:overview"))


# --- Crawls ------------------------------------------------------------------------------------


def _crawl_of(request, crawl_id: int) -> Crawl:
    try:
        return selectors.crawl_get_for_user(user=request.user, crawl_id=crawl_id)
    except Crawl.DoesNotExist as exc:
        raise Http404("No such crawl of yours.") from exc


def _source_of(request, source_id: int) -> Source:
    try:
        return selectors.source_get_for_user(user=request.user, source_id=source_id)
    except Source.DoesNotExist as exc:
        raise Http404("No such source of yours.") from exc


def _started(request, start) -> HttpResponseRedirect | None:
    """Run a crawl_start/crawl_retry call; the refusal (409 or 429 in the API) as a message."""
    try:
        crawl = start()
    except services.CrawlConflict as conflict:
        messages.error(request, f"Not started: {conflict}.")
    except services.Backpressure as busy:
        messages.warning(request, f"Not started: {busy}.")
    else:
        messages.success(request, f"Crawl {crawl.pk} of {crawl.source.name} queued.")
        return redirect("crawls:crawl", crawl_id=crawl.pk)
    return None


@login_required
@require_POST
def crawl_start(request, source_id: int):
    place = place_of(request)
    source = _source_of(request, source_id)
    place.require_writer(source.workspace_id)
    started = _started(
        request, lambda: services.crawl_start(source=source, user=request.user, trigger="dashboard")
    )
    return started or _back(request, reverse("crawls:overview"))


@login_required
@require_GET
def crawl_detail(request, crawl_id: int):
    place = place_of(request)
    crawl = progress.crawl_with_progress(_crawl_of(request, crawl_id))
    log = selectors.crawl_events_latest(crawl=crawl)
    context = {
        "crawl": crawl,
        "crawl_membership": place.membership(crawl.workspace_id),
        "log": log,
        "page_errors": selectors.crawl_events_latest(
            crawl=crawl, limit=50, types=(events.PAGE_ERROR, events.URL_REFUSED)
        ),
        "bids": selectors.bid_list_for_crawl(crawl_id=crawl.pk),
        "report": crawl.quality or {},
        "quality_rows": quality_report.report_rows(crawl.quality or {}),
    }
    return render_page(request, "crawls/crawl_detail.html", place, context)


@login_required
@require_GET
def crawl_items(request, crawl_id: int):
    """The crawl page's items table body, re-fetched by live.js when crawl.items arrive."""
    crawl = _crawl_of(request, crawl_id)
    bids = selectors.bid_list_for_crawl(crawl_id=crawl.pk)
    return render(request, "crawls/_crawl_items.html", {"bids": bids, "crawl": crawl})


@login_required
@require_POST
def crawl_cancel(request, crawl_id: int):
    place = place_of(request)
    crawl = _crawl_of(request, crawl_id)
    place.require_writer(crawl.workspace_id)
    crawl = services.crawl_cancel(crawl=crawl)
    if crawl.status == Crawl.Status.CANCELLED:
        messages.success(request, f"Crawl {crawl.pk} cancelled.")
    elif crawl.status == Crawl.Status.RUNNING:
        messages.info(request, f"Crawl {crawl.pk} stops after the page being read.")
    else:
        messages.error(request, f"Crawl {crawl.pk} already {crawl.status}: nothing to cancel.")
    return redirect("crawls:crawl", crawl_id=crawl.pk)


@login_required
@require_POST
def crawl_retry(request, crawl_id: int):
    place = place_of(request)
    crawl = _crawl_of(request, crawl_id)
    place.require_writer(crawl.workspace_id)
    started = _started(request, lambda: services.crawl_retry(crawl=crawl, user=request.user))
    return started or redirect("crawls:crawl", crawl_id=crawl.pk)


# --- Sources -----------------------------------------------------------------------------------


@login_required
@require_GET
def source_list(request):
    place = place_of(request)
    sources = selectors.source_list_for_workspace(
        workspace_id=current_membership(place).workspace_id
    )
    return render_page(request, "crawls/source_list.html", place, {"sources": sources})


@login_required
@require_http_methods(["GET", "POST"])
def source_create(request):
    place = place_of(request)
    workspace = current_membership(place).workspace
    return _source_form(request, place, workspace_id=workspace.pk, source=None)


@login_required
@require_http_methods(["GET", "POST"])
def source_edit(request, source_id: int):
    place = place_of(request)
    source = _source_of(request, source_id)
    return _source_form(request, place, workspace_id=source.workspace_id, source=source)


def _source_form(request, place: Place, *, workspace_id: int, source: Source | None):
    """Create or edit a source; the form's Preview button shows what its rules extract."""
    can_write = bool((m := place.membership(workspace_id)) and m.can_write)
    preview = None
    secret_names = sorted(source.secrets) if source is not None else []
    if request.method == "POST":
        place.require_writer(workspace_id)
        form = forms.SourceForm(request.POST, secret_names=secret_names)
        if form.is_valid() and "preview" in request.POST:
            preview = _preview(form, stored_secrets=source.secrets if source else {})
        elif form.is_valid():
            try:
                if source is None:
                    workspace = place.membership(workspace_id).workspace
                    source = services.source_create(workspace=workspace, **form.values())
                else:
                    source = services.source_update(source=source, **form.values())
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, f"Source {source.name} saved.")
                return redirect("crawls:source_edit", source_id=source.pk)
    elif source is not None:
        form = forms.SourceForm(
            initial=forms.SourceForm.initial_for(source), secret_names=secret_names
        )
    else:
        form = forms.SourceForm()
    context: dict[str, Any] = {
        "form": form,
        "source": source,
        "preview": preview,
        "can_write": can_write,
        "rules_examples": source_examples.RULES_EXAMPLES,
    }
    if source is not None:
        trend = quality_report.quality_trend(source=source)
        context["trend"] = trend
        context["chart"] = quality_report.trend_chart(trend)
    status = 400 if form.is_bound and form.errors else 200
    return render_page(request, "crawls/source_form.html", place, context, status=status)


def _preview(form: forms.SourceForm, *, stored_secrets: dict) -> dict | None:
    """The preview of the form's rules and kind, with the secrets as typed (blank: stored)."""
    url = form.cleaned_data["preview_url"] or form.cleaned_data["start_urls"][0]
    secrets = {
        name: value if value is not None else stored_secrets.get(name, "")
        for name, value in form.secrets().items()
    }
    try:
        preview = services.source_preview(
            rules_data=form.cleaned_data["rules"],
            url=url,
            kind=form.cleaned_data["kind"],
            secrets=secrets,
        )
    except ValidationError as error:
        form.add_service_errors(error)
        return None
    except services.PreviewBusy as busy:
        form.add_error(None, str(busy))
        return None
    error = preview.get("error") or {}
    if error.get("class") == "refused":
        form.add_error("preview_url", f"refused: {error['message']}")
        return None
    # The records table's columns: every field any shown record has, in order of appearance.
    columns: dict[str, None] = {}
    for record in preview.get("records", ()):
        columns.update(dict.fromkeys(record["fields"]))
    preview["record_columns"] = list(columns)
    for record in preview.get("records", ()):
        record["cells"] = [record["fields"].get(name) for name in columns]
    return preview
