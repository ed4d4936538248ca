"""Conditions that find notices: a title's substring, full text (`q`), `extra` keys, a
classification prefix, the crawl that found or changed a bid. Filters (crawls.filters,
crawls.filter_fields) and the admin apply them to querysets their callers have already scoped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import F, Func, Lookup, Q, TextField, Value

from crawls.models import BidRevision


class _ContainsIgnoringCase(Lookup):
    """`lhs ILIKE '%value%'`, which a pg_trgm index on the bare column serves (Django's
    icontains writes `UPPER(lhs) LIKE UPPER(…)`, which it does not)."""

    lookup_name = "contains_ignoring_case"
    prepare_rhs = False

    def get_db_prep_lookup(self, value: str | int, connection: Any) -> tuple[str, tuple[str]]:
        return "%s", (f"%{connection.ops.prep_for_like_query(value)}%",)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ILIKE {rhs}", (*lhs_params, *rhs_params)


def bid_search_condition(*, text: str) -> _ContainsIgnoringCase:
    """Titles containing `text`, any case: the title's trigram index serves 3+ characters."""
    return _ContainsIgnoringCase(F("title"), text)


# --- Finding notices: full text (`q`), `extra` keys ----------------------------------------------

# A bid's searchable text: title, department, reference and the string values of `extra` (at any
# depth). The SQL of the indexes bid_search_fts and bid_search_trgm (migration 0015, after 0008):
# keep both identical, or PostgreSQL will not match the query's expression to the index.
SEARCH_EXTRA_PATH = 'strict $.** ? (@.type() == "string")'
SEARCH_TERMS_MAX = 8


class SearchDocument(Func):
    """`title || ' ' || department || ' ' || reference || ' ' || <extra's strings as JSON>`."""

    output_field = TextField()

    def __init__(self) -> None:
        super().__init__(F("title"), F("department"), F("reference"), F("extra"))

    def as_sql(
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
            f"jsonb_path_query_array({extra}, '{path}'::jsonpath)::text)"
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

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} @@ {rhs}", (*lhs_params, *rhs_params)


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
