"""Sources: validation, create/update/delete with their beat schedules, the demo board's source.
The preview of rules on one URL is in previews.py."""

from __future__ import annotations

import json
import logging
import re
import zoneinfo

from celery.schedules import crontab
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from crawls import bounds
from crawls.demo import board as demo_board
from crawls.engine import guard, kinds, quality, rules, scope
from crawls.engine import request as requests
from crawls.models import Crawl, Source, Workspace
from crawls.services import crawls as crawl_services

logger = logging.getLogger(__name__)

SOURCE_FIELDS = (
    "name", "start_urls", "allowed_hosts", "max_depth", "max_pages", "include_patterns",
    "exclude_patterns", "concurrency_per_host", "delay_seconds", "obey_robots", "user_agent",
    "rules", "schedule_cron", "schedule_timezone", "overlap_policy", "retry_max",
    "retry_backoff_seconds", "time_limit_seconds", "kind", "secrets", "quality_thresholds",
    "track_removals",
)  # fmt: skip

# A source's secrets (service keys): names as {secret.NAME} placeholders write them.
SECRET_NAME = re.compile(r"[a-z_][a-z0-9_]*")
SECRETS_MAX = 20
SECRET_MAX_BYTES = 4096
SECRET_NAME_MAX = 64


def source_clean(source: Source) -> None:
    """Validate a source; ValidationError names every bad field (rules errors by path)."""
    errors: dict[str, list[str]] = {}
    same_name = Source.objects.in_workspace(source.workspace_id).filter(name=source.name)
    if same_name.exclude(pk=source.pk).exists():
        errors["name"] = ["a source with this name exists in this workspace"]
    errors.update(_source_bounds_errors(source))
    if source.kind not in kinds.KINDS:
        errors["kind"] = [f"must be one of {', '.join(kinds.KINDS)}"]
    elif "rules" not in errors:
        try:
            parsed = kinds.rules_parse(source.kind, source.rules)
        except rules.RulesError as exc:
            errors["rules"] = [f"{path}: {message}" for path, message in exc.errors.items()]
        else:
            errors.update(_request_url_errors(parsed, source.start_urls or []))
    secret_errors = secrets_check(source.secrets)
    if secret_errors:
        errors["secrets"] = secret_errors
    elif "rules" not in errors:
        missing = sorted(secrets_used(source.rules) - set(source.secrets))
        if missing:
            errors.setdefault("secrets", []).extend(
                f"the rules use {{secret.{name}}}: add a secret named {name!r}" for name in missing
            )
    allowlist = scope.allowlist()
    if not source.start_urls:
        errors["start_urls"] = ["at least one start URL is required"]
    for index, url in enumerate([] if "start_urls" in errors else source.start_urls):
        try:
            guard.check_url(url, allowlist=allowlist)
        except guard.Refused as refused:
            errors.setdefault("start_urls", []).append(f"[{index}] {url}: {refused.reason}")
    for name in ("include_patterns", "exclude_patterns"):
        for path, message in rules.patterns_check(name, getattr(source, name)).items():
            errors.setdefault(name, []).append(f"{path}: {message}")
    if source.schedule_cron:
        try:
            _crontab_fields(source.schedule_cron)
        except ValueError as exc:
            errors["schedule_cron"] = [str(exc)]
    try:
        zoneinfo.ZoneInfo(source.schedule_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors["schedule_timezone"] = [f"unknown time zone {source.schedule_timezone!r}"]
    if not 1 <= source.concurrency_per_host <= 64:
        errors["concurrency_per_host"] = ["must be between 1 and 64"]
    if source.delay_seconds < 0:
        errors["delay_seconds"] = ["must not be negative"]
    if threshold_errors := quality.thresholds_errors(source.quality_thresholds):
        errors["quality_thresholds"] = [f"{k}: {m}" for k, m in threshold_errors.items()]
    if errors:
        raise ValidationError(errors)


def secrets_check(secrets: object) -> list[str]:
    """What is wrong with a source's secrets (a flat object of names to non-empty strings,
    SECRETS_MAX at most, each value SECRET_MAX_BYTES at most). Never quotes a value."""
    if not isinstance(secrets, dict):
        return ["an object of names to values"]
    problems = []
    if len(secrets) > SECRETS_MAX:
        problems.append(f"at most {SECRETS_MAX} secrets")
    for name, value in list(secrets.items())[: SECRETS_MAX + 1]:
        if not (
            isinstance(name, str) and len(name) <= SECRET_NAME_MAX and SECRET_NAME.fullmatch(name)
        ):
            shown = str(name)[:SECRET_NAME_MAX]
            problems.append(f"{shown!r}: a name is lower case letters, digits and _ "
                            f"(not first a digit), {SECRET_NAME_MAX} at most")  # fmt: skip
        elif not isinstance(value, str) or not value:
            problems.append(f"{name}: a non-empty string")
        elif len(value.encode("utf-8")) > SECRET_MAX_BYTES:
            problems.append(f"{name}: at most {SECRET_MAX_BYTES} bytes")
    return problems


def secrets_used(data: object) -> set[str]:
    """The names of the secrets that rules use ({secret.NAME} in any string of them)."""
    found: set[str] = set()
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.update(
                name[len(requests.SECRET_PREFIX) :]
                for name in requests.placeholders(value)
                if name.startswith(requests.SECRET_PREFIX)
            )
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def secrets_merge(current: dict[str, str], given: object) -> object:
    """The secrets a write sets: `given` replaces the whole set; a null value keeps the stored
    value of that name (so a client adds or removes one without sending the others)."""
    if not isinstance(given, dict):
        return given  # secrets_check says what is wrong
    merged = {}
    for name, value in given.items():
        if value is None:
            if name not in current:
                raise ValidationError({"secrets": [f"{name}: no stored value to keep"]})
            value = current[name]
        merged[name] = value
    return merged


def _request_url_errors(parsed: kinds.AnyRules, start_urls: list[str]) -> dict[str, list[str]]:
    """An API's request template may name its own endpoint: it goes through the SSRF guard at
    save, like the start URLs (and again at every request)."""
    if kinds.kind_of(parsed) not in (kinds.JSON, kinds.XML):
        return {}
    problems = []
    allowlist = scope.allowlist()
    try:
        seeds = kinds.start_requests(parsed, start_urls)
    except ValueError as exc:
        return {"rules": [f"request.url: {exc}"]}
    for seed in seeds:
        try:
            guard.check_url(seed.url, allowlist=allowlist)
        except guard.Refused as refused:
            problems.append(f"request.url: {seed.url}: {refused.reason}")
    return {"rules": problems} if problems else {}


def _source_bounds_errors(source: Source) -> dict[str, list[str]]:
    """How far a source's lists and rules exceed their caps (SOURCE_MAX_* settings): checked
    before anything costly (the guard, regular expressions, the rules' parser) looks at them."""
    errors: dict[str, list[str]] = {}
    # include/exclude_patterns: rules.patterns_check (RULES_MAX_PATTERNS, RULES_MAX_REGEX_LENGTH)
    caps = {  # field: (most items, longest item, what they are)
        "start_urls": (
            settings.SOURCE_MAX_START_URLS,
            settings.SOURCE_MAX_URL_LENGTH,
            "start URLs",
        ),
        "allowed_hosts": (settings.SOURCE_MAX_ALLOWED_HOSTS, 253, "allowed hosts"),
    }
    for name, (most, longest, what) in caps.items():
        values = getattr(source, name) or []
        if len(values) > most:
            errors[name] = [f"at most {most} {what}"]
            continue
        too_long = [
            f"[{index}] longer than {longest} characters"
            for index, value in enumerate(values)
            if len(value) > longest
        ]
        if too_long:
            errors[name] = too_long
    try:
        bounds.value_check_depth(source.rules)
    except bounds.TooDeep as exc:
        errors["rules"] = [str(exc)]
    else:
        size, limit = bounds.json_size(source.rules), settings.SOURCE_MAX_RULES_BYTES
        if size > limit:
            errors["rules"] = [f"{size} bytes as JSON: at most {limit}"]
    return errors


def _crontab_fields(expression: str) -> dict[str, str]:
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError("a cron expression has five fields: minute hour day month weekday")
    fields = dict(
        zip(("minute", "hour", "day_of_month", "month_of_year", "day_of_week"), parts, strict=True)
    )
    crontab(**fields)  # raises ValueError on a bad field
    return fields


@transaction.atomic
def source_create(*, workspace: Workspace, **values) -> Source:
    """Create a validated source (and its schedule)."""
    if "secrets" in values:
        values = {**values, "secrets": secrets_merge({}, values["secrets"])}
    source = Source(workspace=workspace, **values)
    source_clean(source)
    source.save()
    _schedule_sync(source)
    return source


@transaction.atomic
def source_update(*, source: Source, **values) -> Source:
    """Change a source's settings (validated) and keep its schedule in step."""
    for name, value in values.items():
        if name not in SOURCE_FIELDS:
            raise ValidationError({name: ["unknown field"]})
        if name == "secrets":
            value = secrets_merge(source.secrets, value)
        setattr(source, name, value)
    source_clean(source)
    source.save()
    _schedule_sync(source)
    return source


def _schedule_sync(source: Source) -> None:
    """One django-celery-beat periodic task per scheduled source."""
    task = source.periodic_task
    if not source.schedule_cron:
        if task is not None:
            source.periodic_task = None
            source.save(update_fields=["periodic_task"])
            task.delete()
        return
    schedule, _ = CrontabSchedule.objects.get_or_create(
        **_crontab_fields(source.schedule_cron), timezone=source.schedule_timezone
    )
    if task is None:
        task = PeriodicTask(name=f"crawl source {source.pk}", task="crawls.scheduled")
    task.crontab = schedule
    task.args = json.dumps([source.pk])
    task.enabled = True
    task.save()
    if source.periodic_task_id != task.pk:
        source.periodic_task = task
        source.save(update_fields=["periodic_task"])


def demo_source_ensure(*, workspace: Workspace, base_url: str, every_kind: bool = False) -> Source:
    """The demo board's HTML source in `workspace`, created on first use. every_kind: also its
    JSON API, XML service, OCDS feed and eGov board sources (with their keys as secrets)."""
    source = Source.objects.in_workspace(workspace).filter(name="Demo board").first()
    if source is None:
        source = source_create(
            workspace=workspace,
            name="Demo board",
            start_urls=[f"{base_url}/notices"],
            rules=demo_board.DEMO_RULES,
            max_pages=5000,
        )
    if every_kind:
        _demo_sources_beside(workspace=workspace, base_url=base_url)
    return source


def _demo_sources_beside(*, workspace: Workspace, base_url: str) -> None:
    b = demo_board
    wanted = (  # name, kind, start URL, rules, secrets
        ("Demo JSON API", Source.Kind.JSON, b.API_PATH, b.DEMO_JSON_RULES,
         {"api_key": b.DEMO_API_KEY}),
        ("Demo XML service", Source.Kind.XML, b.XML_PATH, b.DEMO_XML_RULES,
         {"service_key": b.DEMO_SERVICE_KEY}),
        ("Demo OCDS feed", Source.Kind.OCDS, b.OCDS_RELEASES_PATH, b.DEMO_OCDS_RULES, {}),
        ("Demo eGov board", Source.Kind.HTML, b.EGOV_LIST_PATH, b.DEMO_EGOV_RULES, {}),
    )  # fmt: skip
    existing = set(
        Source.objects.in_workspace(workspace)
        .filter(name__in=[w[0] for w in wanted])
        .values_list("name", flat=True)
    )
    for name, kind, path, kind_rules, secrets in wanted:
        if name in existing:
            continue
        try:
            with transaction.atomic():
                source_create(
                    workspace=workspace,
                    name=name,
                    kind=kind,
                    start_urls=[f"{base_url}{path}"],
                    rules=kind_rules,
                    secrets=secrets,
                    max_pages=5000,
                )
        except ValidationError as exc:
            # A deployment that refuses it (its board's address not allowed, say): the HTML
            # source is what the demo needs; say why the other one is missing.
            logger.warning("demo source %r not created: %s", name, exc)


@transaction.atomic
def source_delete(*, source: Source) -> None:
    """Delete a source with its crawls, bids and beat schedule. Raises CrawlConflict while one
    of its crawls is queued or running (cancel it first): its workers would lose their rows."""
    source = Source.objects.select_for_update().get(pk=source.pk)
    active = source.crawls.filter(status__in=Crawl.ACTIVE).order_by("id").first()
    if active is not None:
        raise crawl_services.CrawlConflict(active)
    task_id = source.periodic_task_id
    source.delete()
    if task_id is not None:
        PeriodicTask.objects.filter(pk=task_id).delete()
