"""The preview of a source's rules on one URL: fetched through the SSRF guard as a crawl of the
source would, read in a sandboxed child under a time limit, every secret redacted from what it
shows."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ValidationError

from crawls.engine import kinds, rules, sandbox, scope, store
from crawls.engine import request as requests
from crawls.engine.fetch import Fetcher, Response
from crawls.models import Source
from crawls.services.sources import secrets_used


class PreviewBusy(Exception):
    """PREVIEW_MAX_CONCURRENT previews are running in this process already."""

    retry_after = 5

    def __init__(self) -> None:
        super().__init__("too many previews are running; try again in a few seconds")


_previews_lock = threading.Lock()
_previews: sandbox.Pool | None = None


def _preview_pool() -> sandbox.Pool:
    global _previews
    with _previews_lock:
        if _previews is None:
            _previews = sandbox.Pool(settings.PREVIEW_MAX_CONCURRENT)
        return _previews


PREVIEW_RECORDS = 20  # records shown (with their fields) of an API's page
PREVIEW_REQUESTS = 100  # next requests and links shown


def source_preview(
    *,
    rules_data: object,
    url: str,
    kind: str = kinds.HTML,
    secrets: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Fetch the rules' first request for one start URL (through the SSRF guard) and show what
    they read from it: fields and links (html), records, next requests and the publisher's
    error (json, xml, ocds). No secret's value appears in what it returns.

    The rules run in a child process killed after PREVIEW_TIMEOUT_SECONDS (ValidationError
    naming the step); PreviewBusy when PREVIEW_MAX_CONCURRENT previews are running here."""
    secrets = dict(secrets or {})
    missing = sorted(secrets_used(rules_data) - set(secrets))
    if missing:
        raise ValidationError(
            {"secrets": [f"the rules use {{secret.{name}}}: give its value" for name in missing]}
        )
    try:
        parsed = kinds.rules_parse(kind, rules_data)
    except rules.RulesError as exc:
        field = "kind" if set(exc.errors) == {"kind"} else "rules"
        raise ValidationError({field: [f"{p}: {m}" for p, m in exc.errors.items()]}) from exc
    try:
        first = kinds.start_requests(parsed, [url])[0]
    except (ValueError, IndexError) as exc:  # TemplateError is a ValueError
        message = requests.redact(str(exc), secrets)
        raise ValidationError({"rules": [f"request: {message}"]}) from exc
    try:
        with _preview_pool().sandbox() as child:
            preview = _preview(parsed, first, secrets, child)
    except sandbox.Busy:
        raise PreviewBusy from None
    return cast(dict[str, Any], _redacted(preview, secrets))


def _preview(
    parsed: kinds.AnyRules,
    first: requests.Request,
    secrets: dict[str, str],
    child: sandbox.Sandbox,
) -> dict[str, Any]:
    kind = kinds.kind_of(parsed)
    # As a crawl of such a source fetches (its kind's content types, its secrets filled in at
    # send time and redacted from what comes back), once and quickly.
    fetch_settings = dataclasses.replace(
        scope.fetch_settings(Source(kind=kind, secrets=secrets)),
        timeout=min(settings.CRAWL_REQUEST_TIMEOUT, 15.0),
        retries=0,
    )

    async def fetch_one() -> Response:
        async with Fetcher(fetch_settings) as fetcher:
            return await fetcher.fetch(first)

    response = asyncio.run(fetch_one())
    preview: dict[str, Any] = {"url": response.url, "status": response.status, "kind": kind}
    if first.describe() != first.url:
        preview["request"] = first.describe()
    # An API's 4xx/5xx answer may carry the publisher's error envelope: it is read too.
    readable = kind != kinds.HTML and response.body and response.status
    if not response.ok and not readable:
        preview["error"] = {"class": response.error_class, "message": response.error}
        return preview
    limit = settings.PREVIEW_TIMEOUT_SECONDS
    try:
        # The whole limit is the budget: steps stop cooperatively first, a stuck one is killed.
        page = child.extract(
            response.body or b"",
            url=response.url,
            rules=parsed,
            budget=limit,
            kill_after=0.5,
            request=first,
            status=response.status or 200,
            link_next=getattr(response, "link_next", None),
        )
    except sandbox.SandboxError as exc:
        raise ValidationError({"rules": [f"preview failed: {exc}"]}) from exc
    if page.timeout is not None:
        raise ValidationError({"rules": [_timeout_message(page.timeout, limit)]})
    if page.error is not None:
        preview["error"] = {"class": "publisher", "message": page.error}
    elif not response.ok:
        preview["error"] = {"class": response.error_class, "message": response.error}
    preview.update(
        fields={k: store.jsonable(v) for k, v in (page.fields or {}).items()},
        errors=page.errors,
        canonical=page.canonical,
        follow=page.follow[:PREVIEW_REQUESTS],
        items=page.items[:PREVIEW_REQUESTS],
        records_total=len(page.records),
        records=[
            {
                "key": record.key,
                "url": record.url,
                "fields": {k: store.jsonable(v) for k, v in record.fields.items()},
                "errors": dict(record.errors),
            }
            for record in page.records[:PREVIEW_RECORDS]
        ],
        requests=[r.describe() for r in page.requests[:PREVIEW_REQUESTS]],
        item_requests=[r.describe() for r in page.item_requests[:PREVIEW_REQUESTS]],
    )
    return preview


def _redacted(value: object, secrets: dict[str, str]) -> object:
    """`value` with every secret's value in its strings put back as its placeholder."""
    if not secrets:
        return value
    if isinstance(value, str):
        return requests.redact(value, secrets)
    if isinstance(value, dict):
        return {_redacted(k, secrets): _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, secrets) for v in value]
    return value


def _timeout_message(step: str, limit: float) -> str:
    where = step if step in ("page", "links") else f"fields.{step}"
    return f"{where}: preview took longer than {limit:g} s"
