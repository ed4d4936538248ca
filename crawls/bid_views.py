"""The dashboard's bids pages: the filtered, keyset-paged list of the current workspace and a
bid's detail with its revisions."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request

from crawls import forms, selectors
from crawls.api.pagination import KeysetPagination
from crawls.models import Bid
from crawls.views import Place, current_membership, place_of, render_page


class _BidPages:
    """What KeysetPagination reads of a view: the ordering of the API's bid list."""

    keyset_nullable = frozenset({"post_date", "views", "amount", "deadline"})

    def __init__(self, field: str, *, ascending: bool = False):
        self.keyset_ordering = (field, "id")
        self.keyset_ascending = ascending
        self.keyset_nulls_apart = field in selectors.NULLS_APART_FIELDS


TRAIL_MAX = 50  # cursors of earlier pages carried in the bids page's links ("Previous")


@login_required
@require_GET
def bid_list(request):
    place = place_of(request)
    workspace_id = current_membership(place).workspace_id
    sources = list(selectors.source_list_for_workspace(workspace_id=workspace_id))
    zone = selectors.workspace_timezone(sources=sources)
    # Times show, and a "changed since" without an offset reads, in the workspace's zone.
    with timezone.override(zone):
        return _bid_page(request, place, workspace_id, sources, zone)


def _bid_page(request, place: Place, workspace_id: int, sources: list, zone):
    queryset = selectors.bid_list().filter(workspace_id=workspace_id)
    filterset = forms.bid_filter(
        request.GET, queryset=queryset, sources=sources, zone_name=zone.key
    )
    ordering = request.GET.get("ordering") or "-post_date"
    if ordering not in dict(forms.BID_ORDERINGS):
        ordering = "-post_date"
    shown, more, more_open = forms.bid_filter_groups(filterset.form)
    context = {
        "filters": filterset.form,
        "filters_shown": shown,
        "filters_more": more,
        "filters_more_open": more_open,
        "orderings": forms.BID_ORDERINGS,
        "ordering": ordering,
        "zone": zone.key,
    }
    if not filterset.is_valid():
        return render_page(request, "crawls/bid_list.html", place, {**context, "bids": []}, 400)
    paginator = KeysetPagination()
    try:
        bids = paginator.paginate_queryset(
            filterset.qs.values(*selectors.BID_FIELDS, "source_name"),
            Request(request),
            _BidPages(ordering.lstrip("-"), ascending=not ordering.startswith("-")),
        )
    except ApiValidationError as error:
        messages.error(request, "; ".join(_flat(error.detail)))
        return render_page(request, "crawls/bid_list.html", place, {**context, "bids": []}, 400)
    context.update(bids=bids, **_bid_links(request, paginator, bids, workspace_id))
    return render_page(request, "crawls/bid_list.html", place, context)


@login_required
@require_GET
def bid_detail(request: HttpRequest, bid_id: int) -> HttpResponse:
    """One bid: every column (the procurement ones too) and its latest field changes."""
    place = place_of(request)
    try:
        bid = selectors.bid_get_for_user(user=request.user, bid_id=bid_id)
    except Bid.DoesNotExist as exc:
        raise Http404("No such bid of yours.") from exc
    context = {"bid": bid, "revisions": selectors.bid_revisions(bid=bid, limit=20)}
    return render_page(request, "crawls/bid_detail.html", place, context)


def _flat(detail) -> list[str]:
    return [str(m) for messages_ in dict(detail).values() for m in messages_]


def _bid_links(request, paginator: KeysetPagination, bids: list, workspace_id: int) -> dict:
    """First / Previous / Next links (earlier cursors ride along in `trail`) and exports."""
    params = request.GET.copy()
    trail = params.getlist("trail")[-TRAIL_MAX:]
    cursor = params.get("cursor", "")
    for name in ("cursor", "trail"):
        params.pop(name, None)
    base = reverse("crawls:bids")

    def link(cursor_: str | None, trail_: list[str]) -> str:
        query = params.copy()
        if cursor_:
            query["cursor"] = cursor_
        query.setlist("trail", trail_)
        return f"{base}?{query.urlencode()}" if query else base

    links = {"first_link": link(None, []) if cursor else None, "previous_link": None}
    if cursor and trail:
        links["previous_link"] = link(trail[-1], trail[:-1])
    elif cursor:
        links["previous_link"] = links["first_link"]
    links["next_link"] = (
        link(paginator.cursor_for(bids[-1]), [*trail, cursor][-TRAIL_MAX:])
        if paginator.has_next
        else None
    )
    export = params.copy()
    export.pop("page_size", None)
    export["workspace"] = str(workspace_id)
    api = reverse("bid-export")
    links["exports"] = [
        (kind, f"{api}?{urlencode([*export.lists(), ('type', kind)], doseq=True)}")
        for kind in ("csv", "jsonl")
    ]
    return links
