"""Sending the recorded requests again: recorded inter-arrival times divided by `speed`, at most
`concurrency` requests in flight, over aiohttp. No Django here beyond the plan it is given."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from project.replay import mapping
from project.replay.logfile import SAFE_METHODS, Entry, Resolved

MAX_BODY = 8 * 1024 * 1024  # bytes read of one answer; the rest is left unread


class TargetError(Exception):
    """The target cannot be replayed to: it refused the token, or does not answer."""


@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the replay's start
    method: str
    path: str
    route: str  # "GET api/v1/bids/<pk>/"


@dataclass(frozen=True)
class Sample:
    route: str
    at: float  # seconds after the replay's start when it was sent
    latency_ms: float
    status: int | None  # None: no answer (error names why)
    error: str | None


@dataclass
class Plan:
    requests: list[Planned] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Auth:
    token: str = ""
    cookie: str = ""

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.cookie:
            headers["Cookie"] = self.cookie
        return headers


def plan(
    pairs: list[tuple[Entry, Resolved]], ids: mapping.IdMap, *, speed: float, unsafe: bool
) -> Plan:
    """The requests to send and when; what is not sent is counted by reason."""
    result = Plan()
    if not pairs:
        return result
    first = pairs[0][0].start
    for entry, resolved in pairs:
        if entry.method not in SAFE_METHODS and not unsafe:
            result.skipped[f"unsafe method {entry.method} (--unsafe)"] += 1
            continue
        try:
            path = ids.path(entry, resolved)
        except mapping.Unmappable as exc:
            result.skipped[str(exc)] += 1
            continue
        at = (entry.start - first) / speed
        result.requests.append(Planned(at, entry.method, path, f"{entry.method} {resolved.route}"))
    return result


async def fetch_target_ids(
    session: aiohttp.ClientSession, base: str, kinds: set[str], *, per_kind: int = 200
) -> dict[str, list[int]]:
    """The ids of the target's objects of each kind, as its API lists them to the caller."""
    found: dict[str, list[int]] = {}
    for kind in sorted(kinds):
        url = mapping.KIND_LISTS.get(kind)
        if url is None:
            continue
        async with session.get(f"{base}{url}", params={"page_size": str(per_kind)}) as response:
            if response.status in (401, 403):
                raise TargetError(
                    f"{base}{url} answered {response.status}: give a token of the target "
                    "workspace (--token or FOREST_REPLAY_TOKEN)"
                )
            if response.status != 200:
                found[kind] = []
                continue
            body = await response.json()
        rows = body.get("results", []) if isinstance(body, dict) else []
        found[kind] = sorted(row["id"] for row in rows if isinstance(row.get("id"), int))
    return found


async def _send(
    session: aiohttp.ClientSession, base: str, request: Planned, started: float, number: int
) -> Sample:
    sent = time.monotonic()
    try:
        async with session.request(
            request.method,
            f"{base}{request.path}",
            allow_redirects=False,
            headers={"X-Request-ID": f"replay-{number}"},
        ) as response:
            await response.content.read(MAX_BODY)
            status, error = response.status, None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        status, error = None, type(exc).__name__
    latency = (time.monotonic() - sent) * 1000
    if status is not None and status >= 400:
        error = f"{status // 100}xx"
    return Sample(request.route, round(sent - started, 3), round(latency, 2), status, error)


async def replay(
    requests: list[Planned],
    *,
    base: str,
    auth: Auth,
    concurrency: int,
    timeout: float,
    on_done: Callable[[Sample], None] = lambda sample: None,
) -> list[Sample]:
    """Send `requests` on their schedule; a request waits for a free slot when `concurrency`
    are in flight (then it goes late: the schedule never piles up more than that)."""
    slots = asyncio.Semaphore(concurrency)
    samples: list[Sample] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(
        headers=auth.headers(), connector=connector, timeout=client_timeout
    ) as session:
        started = time.monotonic()
        tasks = set()

        async def one(request: Planned, number: int) -> None:
            try:
                sample = await _send(session, base, request, started, number)
                samples.append(sample)
                on_done(sample)
            finally:
                slots.release()

        for number, request in enumerate(requests, 1):
            delay = started + request.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            task = asyncio.create_task(one(request, number))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*tasks)
    samples.sort(key=lambda s: s.at)
    return samples


async def target_session_ids(
    *, base: str, auth: Auth, kinds: set[str], timeout: float
) -> dict[str, list[int]]:
    try:
        async with aiohttp.ClientSession(
            headers=auth.headers(), timeout=aiohttp.ClientTimeout(total=timeout)
        ) as session:
            return await fetch_target_ids(session, base, kinds)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise TargetError(f"{base} did not answer the listing of its ids: {exc!r}") from exc
