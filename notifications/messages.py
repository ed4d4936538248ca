"""The text of alert, digest and reminder notifications (in-app, email and channels alike) and
the per-bid part of their webhook payloads: what matched, why, and what changed (old -> new)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

LISTED_MAX = 10  # bids a message lists; the rest are "and N more"
PAYLOAD_MAX = 100  # bids a webhook payload details; `count` says how many in all


class Item(NamedTuple):
    """One matched bid as a message shows it."""

    bid_id: int
    title: str
    reasons: Sequence[str]
    changes: dict[str, Any]
    crawl_id: int | None = None


def _value(value: Any) -> str:
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def change_lines(changes: dict[str, Any]) -> list[str]:
    """`field: old -> new`, one a field, in field order."""
    return [f"{name}: {_value(old)} -> {_value(new)}" for name, (old, new) in changes.items()]


def reason_label(reason: str) -> str:
    return reason.replace("_", " ")


def listing(items: Sequence[Item], total: int) -> str:
    """The bids (at most LISTED_MAX) with their reasons and changes, then "and N more"."""
    lines = []
    for item in items[:LISTED_MAX]:
        reasons = ", ".join(reason_label(r) for r in item.reasons)
        lines.append(f"- {item.title} (#{item.bid_id}){f' [{reasons}]' if reasons else ''}")
        lines.extend(f"    {line}" for line in change_lines(item.changes))
    more = total - min(len(items), LISTED_MAX)
    if more > 0:
        lines.append(f"and {more} more")
    return "\n".join(lines)


def payload_matches(items: Sequence[Item]) -> list[dict[str, Any]]:
    """The per-bid part of a webhook payload (at most PAYLOAD_MAX)."""
    return [
        {
            "bid": item.bid_id,
            "title": item.title,
            "reasons": list(item.reasons),
            "changes": item.changes,
            **({"crawl": item.crawl_id} if item.crawl_id is not None else {}),
        }
        for item in items[:PAYLOAD_MAX]
    ]


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def deadline_text(deadline: dt.datetime) -> str:
    return deadline.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
