"""Reads, always scoped to the caller's workspaces."""

from __future__ import annotations

import heapq
import zoneinfo
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, Func, Lookup, Q, TextField, Value
from django.db.models.functions import Lower

from crawls.models import (
    ApiToken,
    Bid,
    BidRevision,
    Crawl,
    CrawlEvent,
    Membership,
    Source,
    Workspace,
)


def workspace_list_for_user(*, user):
    """Workspaces where `user` is a member, by name."""
    if not user.is_authenticated or not user.is_active:
        return Workspace.objects.none()
    return Workspace.objects.filter(memberships__user=user)


def workspace_ids_for(*, user, token: ApiToken | None = None):
    """Ids of the workspaces a caller reads: with an API token its workspace alone (the token's
    lookup checked that its user is an active member there), else the user's (none for an
    anonymous or inactive user). A list for a token; for a user a lazy query of memberships,
    a subquery inside a filter and one query when listed."""
    if token is not None:
        return [token.workspace_id]
    if not user.is_authenticated or not user.is_active:
        return []
    return Membership.objects.filter(user=user).values_list("workspace_id", flat=True)


# --- Workspace API: finding the user to add as a member ------------------------------------------


def users_matching(*, username: str | None = None, email: str | None = None) -> list:
    """Active users with this username, or this e-mail address (any case); at most two."""
    users = get_user_model().objects.filter(is_active=True)
    if username is not None:
        users = users.filter(username=username)
    else:
        users = users.filter(email__iexact=email)
    return list(users.order_by("id")[:2])


# --- Bids -----------------------------------------------------------------------------------------

# What lists and exports read of a bid (not its hashes and HTTP validators).
BID_FIELDS = (
    "id", "workspace_id", "source_id", "url", "title", "department", "views", "post_date",
    "amount", "deadline", "reference", "currency", "status", "procurement_method",
    "classifications", "extra", "first_seen_at", "last_seen_at", "changed_at", "first_crawl_id",
    "last_crawl_id", "missed_crawls", "removed_at",
)  # fmt: skip
BID_REVISIONS_SHOWN = 100


def bid_list():
    """Bids with their source's name (one join, no query per row); the caller scopes them."""
    return Bid.objects.only(*BID_FIELDS).annotate(source_name=F("source__name"))


class _ContainsIgnoringCase(Lookup):
    """`lhs ILIKE '%value%'`, which a pg_trgm index on the bare column serves (Django's
    icontains writes `UPPER(lhs) LIKE UPPER(…)`, which it does not)."""

    lookup_name = "contains_ignoring_case"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [f"%{connection.ops.prep_for_like_query(value)}%"]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ILIKE {rhs}", [*lhs_params, *rhs_params]


def bid_search_condition(*, text: str) -> _ContainsIgnoringCase:
    """Titles containing `text`, any case: the title's trigram index serves 3+ characters."""
    return _ContainsIgnoringCase(F("title"), text)


# --- Finding notices: full text (`q`), `extra` keys ----------------------------------------------

# A bid's searchable text: title, department, reference and the string values of `extra` (at any
# depth). The SQL of the indexes bid_search_fts and bid_search_trgm (migration 0008_bid_search):
# keep both identical, or PostgreSQL will not match the query's expression to the index.
SEARCH_EXTRA_PATH = 'strict $.** ? (@.type() == "string")'
SEARCH_TERMS_MAX = 8


class SearchDocument(Func):
    """`title || ' ' || department || ' ' || reference || ' ' || <extra's strings as JSON>`."""

    output_field = TextField()

    def __init__(self) -> None:
        super().__init__(F("title"), F("department"), F("reference"), F("extra"))

    def as_sql(  # type: ignore[override]  # Func's and BaseExpression's stubs disagree
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[Any, ...]]:
        parts: list[str] = []
        params: list[Any] = []
        for expression in self.source_expressions:
            sql, part_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(part_params)
        title, department, reference, extra = parts
        path = SEARCH_EXTRA_PATH.replace("'", "''")
        sql = (
            f"({title} || ' ' || {department}::text || ' ' || {reference}::text || ' ' || "
            f"COALESCE(jsonb_path_query_array({extra}, '{path}'::jsonpath)::text, ''))"
        )
        return sql, tuple(params)


def search_terms(text: str) -> list[str]:
    """The words of a search, as typed (whitespace-separated)."""
    return text.split()


def bid_fulltext_condition(*, text: str) -> Q:
    """Bids whose title, department, reference or `extra` strings hold every word of `text`:
    as whole words (full text, `simple` configuration: bid_search_fts) or as parts of words,
    any case (trigrams: bid_search_trgm; Korean words are found inside compounds)."""
    terms = search_terms(text)
    if not terms:
        return Q()
    document = SearchDocument()
    words = Q(
        _Matches(
            Func(document, template=_TSVECTOR, output_field=TextField()),
            Func(Value(" ".join(terms)), template=_TSQUERY, output_field=TextField()),
        )
    )
    parts = Q()
    for term in terms:
        parts &= Q(_ContainsIgnoringCase(document, term))
    return words | parts


# The configuration as a constant of the SQL: the index's expression names it the same way.
_TSVECTOR = "to_tsvector('simple'::regconfig, %(expressions)s)"
_TSQUERY = "plainto_tsquery('simple'::regconfig, %(expressions)s)"


class _Matches(Lookup):
    """`tsvector @@ tsquery`."""

    lookup_name = "matches"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} @@ {rhs}", [*lhs_params, *rhs_params]


EXTRA_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"
EXTRA_FILTERS_MAX = 5


def bid_extra_condition(*, pairs: Iterable[tuple[str, str]]) -> Q:
    """Bids whose `extra` has each key with this string value (`extra @> {"key": "value"}`,
    served by the GIN index bid_extra)."""
    condition = Q()
    for key, value in pairs:
        condition &= Q(extra__contains={key: value})
    return condition


CLASSIFICATION_PREFIX_MIN = 3  # "CPV:4*" is fine; "C*" would match nearly every coded bid
CPV_CODE_DIGITS = 8


class _ElementStartsWith(Lookup):
    """An element of the array `lhs` starts with the value: `starts_with` over its elements (no
    LIKE, so no wildcard in the value). No index serves it: the workspace's ordered index and
    the page's LIMIT bound it."""

    lookup_name = "element_starts_with"
    prepare_rhs = False

    def get_db_prep_lookup(
        self, value: str | int, connection: Any
    ) -> tuple[str, tuple[str | int, ...]]:
        return "%s", (value,)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[str | int, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        # lhs and rhs are compiled SQL with placeholders; values travel as parameters.
        sql = f"EXISTS (SELECT 1 FROM unnest({lhs}) AS code WHERE starts_with(code, {rhs}))"  # noqa: S608
        return sql, (*lhs_params, *rhs_params)


def classification_prefix(code: str) -> str | None:
    """The prefix a classification filter asks for, or None for an exact code: "CPV:45*" and a
    CPV code shorter than its 8 digits ("CPV:45", a division) are prefixes."""
    if code.endswith("*"):
        return code[:-1]
    scheme, _, ident = code.partition(":")
    if scheme.upper() == "CPV" and ident.isdigit() and len(ident) < CPV_CODE_DIGITS:
        return code
    return None


def bid_classification_condition(*, code: str) -> Q | Lookup:
    """Bids with the classification `code` (array containment, served by the GIN index), or
    with a code starting with its prefix (see classification_prefix)."""
    prefix = classification_prefix(code)
    if prefix is None:
        return Q(classifications__contains=[code])
    return _ElementStartsWith(F("classifications"), prefix)


def bid_crawl_condition(*, crawl_id: int, state: str | None = None) -> Q:
    """Bids a crawl recorded: `new` (found first), `changed` (a revision of it), or either, or
    last seen by it. Only a bid's last crawl is kept, so an unchanged sighting by an older crawl
    is not recorded anywhere."""
    new = Q(first_crawl_id=crawl_id)
    changed = Q(pk__in=BidRevision.objects.filter(crawl_id=crawl_id).values("bid_id"))
    if state == "new":
        return new
    if state == "changed":
        return changed
    return new | changed | Q(last_crawl_id=crawl_id)


def bid_revisions(*, bid: Bid, limit: int = BID_REVISIONS_SHOWN) -> list[BidRevision]:
    """The bid's latest field changes, newest first."""
    return list(
        BidRevision.objects.filter(bid=bid)
        .only("id", "bid_id", "crawl_id", "changes", "changed_at")
        .order_by("-changed_at", "-id")[:limit]
    )


BID_EXPORT_CHUNK = 2000
# Orderings whose indexes are partial (a value; no value): their pages read the bids without a
# value apart, by id (KeysetPagination.keyset_nulls_apart).
NULLS_APART_FIELDS = frozenset({"deadline"})


def bid_rows_in_order(
    *,
    queryset,
    field: str,
    workspace_ids=None,
    chunk_size: int = BID_EXPORT_CHUNK,
    ascending: bool = False,
) -> Iterator[dict]:
    """Every bid of `queryset` as a dict, by `field` descending (nulls last) then id descending;
    or both ascending (still nulls last) with `ascending`.

    Read in keyset chunks: constant memory, no transaction or server-side cursor held between
    chunks, and each chunk an index range scan where an index (workspace, field DESC NULLS LAST,
    id DESC) exists (or ascending, for `ascending`). Rows inserted meanwhile appear or not, but
    no row is read twice or missed (while its `field` does not change). Several workspaces are
    walked one by one and merged, since one index walk orders a single workspace only.
    """
    rows = queryset.values(*BID_FIELDS, "source_name")
    workspace_ids = list(workspace_ids or [])
    if len(workspace_ids) <= 1:
        return _keyset_walk(rows, field, chunk_size, ascending)
    size = max(100, chunk_size // len(workspace_ids))
    walks = [
        _keyset_walk(rows.filter(workspace_id=w), field, size, ascending) for w in workspace_ids
    ]
    if ascending:
        return heapq.merge(*walks, key=lambda row: _ascending_key(row, field))
    return heapq.merge(*walks, key=lambda row: _descending_key(row, field), reverse=True)


def _descending_key(row: dict, field: str) -> tuple:
    value = row[field]
    return (value is not None, value if value is not None else 0, row["id"])


def _ascending_key(row: dict[str, Any], field: str) -> tuple[Any, ...]:
    value = row[field]
    return (value is None, value if value is not None else 0, row["id"])


def _keyset_walk(
    rows: Any, field: str, chunk_size: int, ascending: bool = False
) -> Iterator[dict[str, Any]]:
    direction = "asc" if ascending else "desc"
    order = (getattr(F(field), direction)(nulls_last=True), getattr(F("id"), direction)())
    beyond, reach, id_beyond = ("gt", "gte", "id__gt") if ascending else ("lt", "lte", "id__lt")
    present = rows.filter(**{f"{field}__isnull": False}).order_by(*order)
    chunk = list(present[:chunk_size])
    while chunk:
        yield from chunk
        if len(chunk) < chunk_size:
            break
        value, last_id = chunk[-1][field], chunk[-1]["id"]
        # The redundant `field <= value` is what makes this an index range, not a filter.
        after = Q(**{f"{field}__{reach}": value}) & (
            Q(**{f"{field}__{beyond}": value}) | Q(**{field: value, id_beyond: last_id})
        )
        chunk = None  # one chunk in memory at a time, not two while the next is read
        chunk = list(present.filter(after)[:chunk_size])
    missing = rows.filter(**{f"{field}__isnull": True})
    # Nulls by id alone where the field's indexes are partial (bid_ws_no_deadline serves that).
    missing = missing.order_by(*(order[1:] if field in NULLS_APART_FIELDS else order))
    chunk = list(missing[:chunk_size])
    while chunk:
        yield from chunk
        if len(chunk) < chunk_size:
            break
        last_id = chunk[-1]["id"]
        chunk = None
        chunk = list(missing.filter(**{id_beyond: last_id})[:chunk_size])


# --- Dashboard (added with crawls/views.py) -------------------------------------------------------

DASHBOARD_CRAWLS_SHOWN = 20
CRAWL_EVENTS_SHOWN = 200
CRAWL_ITEMS_SHOWN = 50


def membership_list_of_user(*, user) -> list[Membership]:
    """The user's memberships with their workspaces, by workspace name (the switcher's order)."""
    if not user.is_authenticated or not user.is_active:
        return []
    return list(
        Membership.objects.filter(user=user)
        .select_related("workspace")
        .order_by(Lower("workspace__name"), "workspace_id")
    )


def workspace_counts(*, workspace_id: int) -> dict[str, int]:
    """Sources, bids and active crawls of a workspace (three index-served counts)."""
    return {
        "sources": Source.objects.in_workspace(workspace_id).count(),
        "bids": Bid.objects.in_workspace(workspace_id).count(),
        "running": Crawl.objects.in_workspace(workspace_id).filter(status__in=Crawl.ACTIVE).count(),
    }


def crawl_list_for_workspace(*, workspace_id: int, limit: int = DASHBOARD_CRAWLS_SHOWN) -> list:
    """The workspace's latest crawls, newest first, with their source's name."""
    crawls = Crawl.objects.in_workspace(workspace_id).annotate(source_name=F("source__name"))
    return list(crawls.order_by("-id")[:limit])


def crawl_get_for_user(*, user, crawl_id: int) -> Crawl:
    """One of the user's crawls with its source; Crawl.DoesNotExist (→ 404) for any other."""
    return Crawl.objects.visible_to(user).select_related("source").get(pk=crawl_id)


def crawl_events_latest(
    *, crawl: Crawl, limit: int = CRAWL_EVENTS_SHOWN, types: tuple[str, ...] = ()
) -> list[CrawlEvent]:
    """The crawl's latest events up to its current sequence, oldest first."""
    events = CrawlEvent.objects.filter(crawl_id=crawl.pk, sequence__lte=crawl.event_seq)
    if types:
        events = events.filter(type__in=types)
    return list(reversed(events.order_by("-sequence")[:limit]))


def bid_list_for_crawl(*, crawl_id: int, limit: int = CRAWL_ITEMS_SHOWN) -> list:
    """Bids a crawl found or last saw, newest first."""
    bids = bid_list().filter(Q(last_crawl_id=crawl_id) | Q(first_crawl_id=crawl_id))
    return list(bids.order_by("-id")[:limit])


def bid_get_for_user(*, user: Any, bid_id: int) -> Bid:
    """One of the user's bids with its source's name; Bid.DoesNotExist (→ 404) for any other."""
    bid: Bid = Bid.objects.visible_to(user).annotate(source_name=F("source__name")).get(pk=bid_id)
    return bid


def source_list_for_workspace(*, workspace_id: int):
    """The workspace's sources by name."""
    return Source.objects.in_workspace(workspace_id).order_by(Lower("name"), "id")


def source_get_for_user(*, user, source_id: int) -> Source:
    """One of the user's sources; Source.DoesNotExist (→ 404) for any other."""
    return Source.objects.visible_to(user).get(pk=source_id)


def workspace_timezone(*, sources: Iterable[Source]) -> zoneinfo.ZoneInfo:
    """The zone the dashboard shows a workspace's times in. A workspace has no zone of its own:
    its sources' schedule_timezone when they all name the same one, else settings.TIME_ZONE."""
    zones = {source.schedule_timezone for source in sources}
    name = zones.pop() if len(zones) == 1 else settings.TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


# --- API tokens -----------------------------------------------------------------------------------


def token_list_for_user(*, user, workspace_id: int) -> list[ApiToken]:
    """The user's own tokens in one workspace (revoked ones too), newest first."""
    return list(ApiToken.objects.visible_to(user).in_workspace(workspace_id).filter(user=user))


def token_get_for_user(*, user, token_id: int) -> ApiToken:
    """One of the user's own tokens; ApiToken.DoesNotExist (→ 404) for any other."""
    return ApiToken.objects.visible_to(user).filter(user=user).get(pk=token_id)
