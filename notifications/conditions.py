"""What an alert rule's conditions mean (docs/notifications.md, "Conditions"): checking a rule's
settings, and the reasons a bid of a crawl batch is news to a rule, from what the crawl's
revisions changed. Pure functions: notifications.matching does the reading and writing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from crawls import bid_search
from crawls.engine.field_rules import BID_FIELDS
from notifications.models import AlertRule

Condition = AlertRule.Condition

CHANGED_FIELDS_MAX = 50
PCT_MAX = Decimal(10000)
REMIND_DAYS_MAX = 365
# Presence, as the crawler records it: {"removed": [false, true]} when a bid leaves the board,
# [true, false] when it comes back.
REMOVED = "removed"
# Bid filter parameters about presence itself (crawls.filters.BidFilter.presence): not
# applied to removed bids, which a rule must still hear of.
PRESENCE_FILTERS: frozenset[str] = frozenset({"presence"})


def field_name_valid(name: str) -> bool:
    """A bid field a revision can name: a column, `removed`, or `extra.<key>`."""
    if name in BID_FIELDS or name == REMOVED:
        return True
    key = name.removeprefix("extra.")
    return key != name and re.fullmatch(bid_search.EXTRA_KEY_PATTERN, key) is not None


def rule_option_errors(
    *,
    conditions: Iterable[str] | None = None,
    changed_fields: Iterable[str] | None = None,
    amount_change_pct: Any = None,
    remind_days: Any = None,
    delivery: str | None = None,
) -> dict[str, list[str]]:
    """What is wrong with a rule's conditions and delivery, by field name (None: not given)."""
    errors: dict[str, list[str]] = {}
    if conditions is not None:
        unknown = [c for c in conditions if c not in Condition.values]
        if unknown:
            errors["conditions"] = [
                f"unknown condition {c!r}; one of {', '.join(Condition.values)}" for c in unknown
            ]
    if changed_fields is not None:
        names = list(changed_fields)
        if len(names) > CHANGED_FIELDS_MAX:
            errors["changed_fields"] = [f"at most {CHANGED_FIELDS_MAX} fields"]
        bad = [n for n in names if not isinstance(n, str) or not field_name_valid(n)]
        if bad:
            errors.setdefault("changed_fields", []).extend(
                f"{n!r} is not a bid field (a column, removed, or extra.<key>)" for n in bad
            )
    if amount_change_pct is not None:
        try:
            pct = Decimal(str(amount_change_pct))
        except InvalidOperation:
            pct = Decimal("NaN")
        if pct.is_nan() or not Decimal(0) < pct <= PCT_MAX:
            errors["amount_change_pct"] = [f"a percentage above 0, at most {PCT_MAX}"]
    if remind_days is not None and (
        isinstance(remind_days, bool)
        or not isinstance(remind_days, int)
        or not 1 <= remind_days <= REMIND_DAYS_MAX
    ):
        errors["remind_days"] = [f"a whole number of days from 1 to {REMIND_DAYS_MAX}"]
    if delivery is not None and delivery not in AlertRule.Delivery.values:
        errors["delivery"] = [f"one of {', '.join(AlertRule.Delivery.values)}"]
    return errors


def changes_merged(revisions: Iterable[Mapping[str, list[Any]]]) -> dict[str, list[Any]]:
    """One bid's revisions of one crawl, oldest first, as one {field: [first old, last new]};
    a field that came back to its old value drops out."""
    merged: dict[str, list[Any]] = {}
    for changes in revisions:
        for name, (old, new) in changes.items():
            merged[name] = [merged[name][0] if name in merged else old, new]
    return {name: pair for name, pair in merged.items() if pair[0] != pair[1]}


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def amount_moved(rule: AlertRule, pair: list[Any]) -> bool:
    """|new - old| / |old| * 100 >= the rule's percentage (any change without one). A null or
    zero old amount has no base to compare with, and a null new amount is no amount: neither
    counts (condition `changed` with changed_fields ["amount"] hears of them)."""
    old, new = _decimal(pair[0]), _decimal(pair[1])
    if old is None or new is None or old == 0 or old == new:
        return False
    if rule.amount_change_pct is None:
        return True
    return abs(new - old) / abs(old) * 100 >= rule.amount_change_pct


def reasons_for(
    rule: AlertRule, *, is_new: bool, is_removed: bool, changes: Mapping[str, list[Any]] | None
) -> list[str]:
    """The conditions of `rule` a bid meets in a batch: new (found by the crawl), removed (the
    crawl marked it so), or, for a changed bid, changed / cancelled / amount_changed /
    deadline_moved from what the crawl's revisions changed (`changes`; None: the batch says
    changed but no revision of this crawl says what - condition `changed` without fields)."""
    wanted = set(rule.conditions)
    if is_new:
        return [Condition.NEW.value] if Condition.NEW in wanted else []
    if is_removed:
        return [Condition.REMOVED.value] if Condition.REMOVED in wanted else []
    reasons: list[str] = []
    fields = {
        name
        for name, pair in (changes or {}).items()
        # leaving the board is condition `removed`, not a change
        if not (name == REMOVED and pair == [False, True])
    }
    if Condition.CHANGED in wanted:
        named = set(rule.changed_fields)
        if (not named and (fields or changes is None)) or (named & fields):
            reasons.append(Condition.CHANGED)
    changes = changes or {}
    status = changes.get("status")
    if Condition.CANCELLED in wanted and status and status[1] == "cancelled" != status[0]:
        reasons.append(Condition.CANCELLED)
    amount = changes.get("amount")
    if Condition.AMOUNT_CHANGED in wanted and amount and amount_moved(rule, amount):
        reasons.append(Condition.AMOUNT_CHANGED)
    deadline = changes.get("deadline")
    if Condition.DEADLINE_MOVED in wanted and deadline and None not in deadline:
        reasons.append(Condition.DEADLINE_MOVED)
    return reasons
