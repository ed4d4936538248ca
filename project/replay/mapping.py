"""Recorded ids onto the target workspace's ids, kind by kind, deterministically.

An id in a recorded path (`bids/<pk>/`, `crawls/<crawl_id>/`) or query (`?source=3,4`) names an
object of the recorded workspace. The replay reads the target's own objects of that kind over
its API (as the target token sees them, oldest id first) and maps the recorded ids, sorted, onto
them in turn: the i-th distinct recorded id becomes the (i mod n)-th target id. A request whose
kind has no object in the target, or that carries a value that cannot be mapped (a feed's
redacted token), is skipped and counted.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from project.replay.logfile import Entry, Resolved

# Kind -> the API list the target's objects of that kind are read from.
KIND_LISTS = {
    "source": "/api/v1/sources/",
    "crawl": "/api/v1/crawls/",
    "bid": "/api/v1/bids/",
    "rule": "/api/v1/alert-rules/",
    "notification": "/api/v1/notifications/",
    "channel": "/api/v1/channels/",
    "workspace": "/api/v1/workspaces/",
    "member": "/api/v1/members/",
    "token": "/api/v1/tokens/",
}
# The path segment before a `<pk>` names its kind (the API's resources).
_RESOURCE_KINDS = {
    "sources": "source",
    "crawls": "crawl",
    "bids": "bid",
    "alert-rules": "rule",
    "notifications": "notification",
    "channels": "channel",
    "workspaces": "workspace",
    "members": "member",
    "tokens": "token",
}
# Query parameters that carry ids (comma lists allowed), and those dropped: a cursor is signed
# over the recorded rows' values, and means nothing in another workspace.
QUERY_KINDS = {"source": "source", "crawl": "crawl", "workspace": "workspace", "bid": "bid"}
DROPPED_QUERY = frozenset({"cursor"})
_ID = re.compile(r"^[0-9]{1,18}$")


class Unmappable(ValueError):
    """A recorded request the target cannot be given (the reason is the skip's label)."""


def _kind_of_kwarg(name: str, resolved: Resolved) -> str | None:
    if name.endswith("_id"):
        return name[: -len("_id")]
    if name == "pk":
        segments = [s for s in resolved.route.split("/") if s]
        for before, segment in itertools.pairwise(segments):
            if segment == "<pk>":
                return _RESOURCE_KINDS.get(before)
    return None


def path_ids(resolved: Resolved) -> list[tuple[str, str, str]]:
    """(kwarg, kind, value) of the ids captured by a path's route, in route order."""
    found = []
    for name, value in resolved.kwargs.items():
        if name == "token":
            raise Unmappable("a redacted token in the path")
        kind = _kind_of_kwarg(name, resolved)
        if kind is not None and _ID.match(value):
            found.append((name, kind, value))
    return found


def query_ids(path: str) -> list[tuple[str, str]]:
    """(kind, value) of the ids in a path's query."""
    found: list[tuple[str, str]] = []
    for name, value in parse_qsl(path.partition("?")[2], keep_blank_values=True):
        kind = QUERY_KINDS.get(name)
        if kind is not None:
            found.extend((kind, part) for part in value.split(",") if _ID.match(part))
    return found


def recorded_ids(pairs: Iterable[tuple[Entry, Resolved]]) -> dict[str, set[int]]:
    """The distinct ids of each kind the recorded requests name (unmappable ones left out)."""
    ids: dict[str, set[int]] = defaultdict(set)
    for entry, resolved in pairs:
        try:
            captured = [(kind, value) for _, kind, value in path_ids(resolved)]
        except Unmappable:
            continue
        for kind, value in captured + query_ids(entry.path):
            ids[kind].add(int(value))
    return dict(ids)


@dataclass
class IdMap:
    """recorded id -> target id, per kind."""

    table: dict[str, dict[int, int]] = field(default_factory=dict)

    @classmethod
    def build(cls, recorded: dict[str, set[int]], target: dict[str, list[int]]) -> IdMap:
        table = {}
        for kind, ids in recorded.items():
            available = sorted(target.get(kind, []))
            if available:
                table[kind] = {
                    old: available[i % len(available)] for i, old in enumerate(sorted(ids))
                }
        return cls(table)

    def one(self, kind: str, value: str) -> str:
        mapped = self.table.get(kind, {}).get(int(value))
        if mapped is None:
            raise Unmappable(f"no {kind} in the target")
        return str(mapped)

    def path(self, entry: Entry, resolved: Resolved) -> str:
        """The recorded path (and query) with its ids mapped; Unmappable when it cannot be."""
        raw_path, _, raw_query = entry.path.partition("?")
        segments = raw_path.split("/")
        done: set[int] = set()
        for _, kind, value in path_ids(resolved):
            if kind not in KIND_LISTS:
                raise Unmappable(f"ids of kind {kind} are not mapped")
            index = next((i for i, s in enumerate(segments) if s == value and i not in done), None)
            if index is None:  # captured from an encoded segment: not ours to rewrite
                raise Unmappable("an id the path does not spell plainly")
            segments[index] = self.one(kind, value)
            done.add(index)
        params = []
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            if name in DROPPED_QUERY:
                continue
            query_kind = QUERY_KINDS.get(name)
            if query_kind is not None:
                value = ",".join(
                    self.one(query_kind, part) if _ID.match(part) else part
                    for part in value.split(",")
                )
            params.append((name, value))
        query = urlencode(params, safe="/,:")
        return "/".join(segments) + (f"?{query}" if query else "")
