"""Extraction quality of a crawl (docs/quality.md): counters gathered batch by batch, and the
report a completed crawl ends with, against the medians of the source's recent crawls. A crawl
that breaches a threshold ends `degraded` with the reasons.

Counting is pure (a flat Counter per batch, merged into Crawl.quality["counts"] with the batch's
other counters); `crawl_assess` is called by lifecycle.crawl_finish, inside its transaction, for
a crawl about to succeed.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from crawls.models import Crawl

# Counter keys: totals, then one per field ("field:department") and per field error.
ITEMS_READ = "items_read"  # items extracted (a 304 is seen, not read: not in the coverage)
NOT_MODIFIED = "not_modified"
ITEM_PAGES = "item_pages"  # HTML detail pages answered and read
EMPTY_ITEM_PAGES = "empty_item_pages"  # ... that gave no item
REQUIRED_FAILURES = "required_failures"  # item pages or API records with a required field missing
FIELD = "field:"
ERROR = "error:"

# Each threshold: (lowest, highest) it may be set to; whole numbers for min_history.
LIMITS: dict[str, tuple[float, float]] = {
    "coverage_drop_points": (0, 100),
    "items_ratio_min": (0, 1),
    "required_failure_pct": (0, 100),
    "empty_item_page_pct": (0, 100),
    "min_history": (1, 50),
    "min_items": (1, 1_000_000),
}
WHOLE = ("min_history", "min_items")


# --- Counting (engine/pages.py, per page) ---------------------------------------------------------


def present(value: object) -> bool:
    return value is not None and value != "" and value != []


def count_item(counts: Counter[str], fields: Mapping[str, object]) -> None:
    """One item read: its fields present (a key for every field, so absent ones show 0%)."""
    counts[ITEMS_READ] += 1
    for name, value in fields.items():
        counts[FIELD + name] += 1 if present(value) else 0


def count_errors(counts: Counter[str], errors: Iterable[str]) -> None:
    for name in errors:
        counts[ERROR + name] += 1


def count_item_page(
    counts: Counter[str],
    *,
    fields: Mapping[str, object] | None,
    errors: Mapping[str, str],
    required: frozenset[str],
    gave_item: bool,
) -> None:
    """An HTML detail page that was read (None fields: it could not be)."""
    counts[ITEM_PAGES] += 1
    if gave_item and fields is not None:
        count_item(counts, fields)
    else:
        counts[EMPTY_ITEM_PAGES] += 1
    count_errors(counts, errors)
    if fields is None or any(name in errors or not present(fields.get(name)) for name in required):
        counts[REQUIRED_FAILURES] += 1


def count_left_out(counts: Counter[str], errors: Mapping[str, str]) -> None:
    """An API page's records left out for a missing required field (api_read's items[i])."""
    counts[REQUIRED_FAILURES] += sum(
        1 for key, message in errors.items() if key.startswith("items[") and "required" in message
    )


def counts_merge(quality: Mapping[str, Any] | None, batch: Counter[str]) -> dict[str, Any]:
    """Crawl.quality with a batch's counters added."""
    merged = dict(quality or {})
    if batch:
        counts = Counter(merged.get("counts") or {})
        counts.update(batch)
        merged["counts"] = dict(counts)
    return merged


# --- Thresholds --------------------------------------------------------------------------------


def thresholds_errors(value: object) -> dict[str, str]:
    """Problems of a source's overrides, keyed `quality_thresholds.<key>`."""
    if not isinstance(value, dict):
        return {"quality_thresholds": "quality_thresholds must be an object"}
    errors = {}
    for key, given in value.items():
        where = f"quality_thresholds.{key}"
        if key not in LIMITS:
            errors[where] = f"unknown threshold {key!r}; expected one of: {', '.join(LIMITS)}"
            continue
        if given is None:
            continue  # the check is off for this source
        low, high = LIMITS[key]
        whole = key in WHOLE
        if isinstance(given, bool) or not isinstance(given, int if whole else int | float):
            errors[where] = f"{key} must be a {'whole number' if whole else 'number'} or null"
        elif not low <= given <= high:
            errors[where] = f"{key} must be between {low:g} and {high:g}, not {given}"
    return errors


def thresholds_validate(value: object) -> None:
    if errors := thresholds_errors(value):
        raise ValidationError(errors)


def thresholds_for(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The effective thresholds: the settings' defaults, then the source's overrides."""
    effective = dict(settings.QUALITY_THRESHOLDS)
    effective.update({k: v for k, v in (overrides or {}).items() if k in LIMITS})
    return effective


# --- The report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assessment:
    report: dict[str, Any] = field(default_factory=dict)  # stored in Crawl.quality
    reasons: tuple[str, ...] = ()  # the thresholds breached; empty: the crawl succeeded

    @property
    def degraded(self) -> bool:
        return bool(self.reasons)


def crawl_assess(crawl: Crawl) -> Assessment:
    """The report of a crawl about to succeed (its row is locked by the caller)."""
    quality = dict(crawl.quality or {})
    if "counts" not in quality:  # collection off (the benchmark's peer run): nothing to judge
        return Assessment(report=quality)
    history = list(
        Crawl.objects.filter(
            source_id=crawl.source_id, status=Crawl.Status.SUCCEEDED, quality__has_key="items"
        )
        .exclude(pk=crawl.pk)
        .order_by("-finished_at", "-id")
        .values_list("quality", flat=True)[: settings.QUALITY_HISTORY_CRAWLS]
    )
    report = report_build(
        quality["counts"], history, thresholds_for(crawl.source.quality_thresholds)
    )
    return Assessment(report, tuple(b["message"] for b in report["breaches"]))


def report_build(
    counts: Mapping[str, int], history: list[dict[str, Any]], thresholds: Mapping[str, Any]
) -> dict[str, Any]:
    """The figures of a crawl's counters, the medians of its history and the checks' breaches."""
    read = counts.get(ITEMS_READ, 0)
    coverage = {
        name.removeprefix(FIELD): round(n / read, 4)
        for name, n in sorted(counts.items())
        if name.startswith(FIELD) and read
    }
    report: dict[str, Any] = {
        "items": read + counts.get(NOT_MODIFIED, 0),
        "items_read": read,
        "not_modified": counts.get(NOT_MODIFIED, 0),
        "coverage": coverage,
        "item_pages": counts.get(ITEM_PAGES, 0),
        "empty_item_pages": counts.get(EMPTY_ITEM_PAGES, 0),
        "required_failures": counts.get(REQUIRED_FAILURES, 0),
        "errors_by_field": {
            name.removeprefix(ERROR): n
            for name, n in sorted(counts.items())
            if name.startswith(ERROR)
        },
        "history": _history(history),
        "thresholds": dict(thresholds),
    }
    report["breaches"] = _checks(report, thresholds)
    return report


def _history(history: list[dict[str, Any]]) -> dict[str, Any]:
    by_field: dict[str, list[float]] = {}
    for past in history:
        for name, share in (past.get("coverage") or {}).items():
            by_field.setdefault(name, []).append(share)
    return {
        "crawls": len(history),
        "items_median": statistics.median(p["items"] for p in history) if history else None,
        "coverage_median": {name: statistics.median(s) for name, s in sorted(by_field.items())},
    }


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _checks(report: dict[str, Any], thresholds: Mapping[str, Any]) -> list[dict[str, Any]]:
    breaches: list[dict[str, Any]] = []
    history = report["history"]
    with_history = history["crawls"] >= (thresholds.get("min_history") or 1)
    drop = thresholds.get("coverage_drop_points")
    if with_history and drop is not None and report["items_read"]:
        for name, median in history["coverage_median"].items():
            value = report["coverage"].get(name, 0.0)
            limit = round(median - drop / 100, 4)
            if value < limit:
                breaches.append(
                    {
                        "check": "coverage_drop",
                        "field": name,
                        "value": value,
                        "limit": limit,
                        "message": f"{name} coverage {_pct(value)} (recent median {_pct(median)})",
                    }
                )
    ratio = thresholds.get("items_ratio_min")
    if with_history and ratio is not None and history["items_median"]:
        limit = history["items_median"] * ratio
        if report["items"] < limit:
            breaches.append(
                {
                    "check": "items_ratio",
                    "value": report["items"],
                    "limit": limit,
                    "message": f"{report['items']} items "
                    f"(recent median {history['items_median']:g}, at least {limit:g} expected)",
                }
            )
    # API records left out are not in item_pages: they count beside the items read.
    tried = report["item_pages"] or report["items_read"] + report["required_failures"]
    noun = "item pages" if report["item_pages"] else "items"
    for check, figure, what in (
        ("required_failure_pct", report["required_failures"], "failed a required field"),
        ("empty_item_page_pct", report["empty_item_pages"], "gave no item"),
    ):
        limit = thresholds.get(check)
        base = tried if check == "required_failure_pct" else report["item_pages"]
        if limit is None or not base or base < (thresholds.get("min_items") or 1):
            continue  # a handful of pages says little: one stalled page of 3 is 33%
        value = round(figure * 100 / base, 2)
        if value > limit:
            breaches.append(
                {
                    "check": check.removesuffix("_pct"),
                    "value": value,
                    "limit": limit,
                    "message": f"{value:g}% of {noun} {what} ({figure} of {base}; "
                    f"at most {limit:g}% allowed)",
                }
            )
    return breaches
