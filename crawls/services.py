"""Writes: one transaction each, side effects (Celery tasks, published events) on commit."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import secrets
import threading
import zoneinfo

import kombu.exceptions
from celery.schedules import crontab
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from crawls import bounds, events
from crawls.demo import board as demo_board
from crawls.engine import frontier, guard, lifecycle, rules, run, sandbox, store, urls
from crawls.engine.fetch import Fetcher, FetchSettings
from crawls.models import ApiToken, Crawl, Membership, Source, Workspace
from project.celery import app as celery_app

logger = logging.getLogger(__name__)


def _unique_slug(name: str) -> str:
    base = slugify(name, allow_unicode=True)[:60] or "workspace"
    slug = base
    while Workspace.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


@transaction.atomic
def workspace_create(*, owner, name: str) -> Workspace:
    """Create a workspace with `owner` as its owner."""
    workspace = Workspace.objects.create(name=name, slug=_unique_slug(name))
    Membership.objects.create(workspace=workspace, user=owner, role=Membership.Role.OWNER)
    return workspace


@transaction.atomic
def membership_set(*, workspace: Workspace, user, role: str) -> Membership:
    """Add `user` to `workspace` with `role`, or change an existing member's role, with nobody
    acting (setup and tests; no adapter calls it): only the last-owner rule applies."""
    _check_role(role)
    _members_lock(workspace.pk)
    current = Membership.objects.filter(workspace=workspace, user=user).first()
    if current is not None:
        _keep_an_owner(membership=current, role=role)
    membership, _ = Membership.objects.update_or_create(
        workspace=workspace, user=user, defaults={"role": role}
    )
    return membership


# --- Sources ---------------------------------------------------------------------------------

SOURCE_FIELDS = (
    "name", "start_urls", "allowed_hosts", "max_depth", "max_pages", "include_patterns",
    "exclude_patterns", "concurrency_per_host", "delay_seconds", "obey_robots", "user_agent",
    "rules", "schedule_cron", "schedule_timezone", "overlap_policy", "retry_max",
    "retry_backoff_seconds", "time_limit_seconds",
)  # fmt: skip


def source_clean(source: Source) -> None:
    """Validate a source; ValidationError names every bad field (rules errors by path)."""
    errors: dict[str, list[str]] = {}
    same_name = Source.objects.in_workspace(source.workspace_id).filter(name=source.name)
    if same_name.exclude(pk=source.pk).exists():
        errors["name"] = ["a source with this name exists in this workspace"]
    errors.update(_source_bounds_errors(source))
    if "rules" not in errors:
        try:
            rules.rules_parse(source.rules)
        except rules.RulesError as exc:
            errors["rules"] = [f"{path}: {message}" for path, message in exc.errors.items()]
    allowlist = run.allowlist()
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
    if errors:
        raise ValidationError(errors)


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


def demo_source_ensure(*, workspace: Workspace, base_url: str) -> Source:
    """The demo board's source in `workspace`, created on first use."""
    source = Source.objects.in_workspace(workspace).filter(name="Demo board").first()
    if source is not None:
        return source
    return source_create(
        workspace=workspace,
        name="Demo board",
        start_urls=[f"{base_url}/notices"],
        rules=demo_board.DEMO_RULES,
        max_pages=5000,
    )


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


def source_preview(*, rules_data: object, url: str) -> dict:
    """Fetch one URL (through the SSRF guard) and show what the rules extract from it.

    The rules run in a child process killed after PREVIEW_TIMEOUT_SECONDS (ValidationError
    naming the step); PreviewBusy when PREVIEW_MAX_CONCURRENT previews are running here."""
    try:
        parsed = rules.rules_parse(rules_data)
    except rules.RulesError as exc:
        raise ValidationError({"rules": [f"{p}: {m}" for p, m in exc.errors.items()]}) from exc
    try:
        with _preview_pool().sandbox() as child:
            return _preview(parsed, url, child)
    except sandbox.Busy:
        raise PreviewBusy from None


def _preview(parsed: rules.Rules, url: str, child: sandbox.Sandbox) -> dict:
    fetch_settings = FetchSettings(
        allowlist=run.allowlist(),
        user_agent=settings.CRAWL_USER_AGENT,
        timeout=min(settings.CRAWL_REQUEST_TIMEOUT, 15.0),
        retries=0,
    )

    async def fetch_one():
        async with Fetcher(fetch_settings) as fetcher:
            return await fetcher.get(url)

    response = asyncio.run(fetch_one())
    preview = {"url": response.url, "status": response.status}
    if not response.ok:
        preview["error"] = {"class": response.error_class, "message": response.error}
        return preview
    limit = settings.PREVIEW_TIMEOUT_SECONDS
    try:
        # The whole limit is the budget: steps stop cooperatively first, a stuck one is killed.
        page = child.extract(
            response.body or b"", url=response.url, rules=parsed, budget=limit, kill_after=0.5
        )
    except sandbox.SandboxError as exc:
        raise ValidationError({"rules": [f"preview failed: {exc}"]}) from exc
    if page.timeout is not None:
        raise ValidationError({"rules": [_timeout_message(page.timeout, limit)]})
    preview.update(
        fields={k: store.jsonable(v) for k, v in (page.fields or {}).items()},
        errors=page.errors,
        canonical=page.canonical,
        follow=page.follow[:100],
        items=page.items[:100],
    )
    return preview


def _timeout_message(step: str, limit: float) -> str:
    where = step if step in ("page", "links") else f"fields.{step}"
    return f"{where}: preview took longer than {limit:g} s"


# --- Crawls ----------------------------------------------------------------------------------


class Backpressure(Exception):
    """The workspace has as many active crawls as it may (CRAWL_MAX_ACTIVE_PER_WORKSPACE)."""

    retry_after = 30

    def __init__(self, active: int):
        super().__init__(
            f"this workspace has {active} crawls queued or running, the most it may have; "
            f"try again when one has finished"
        )
        self.active = active


class CrawlConflict(Exception):
    """The source has an active crawl and its overlap policy is "skip"."""

    def __init__(self, active: Crawl):
        super().__init__(f"crawl {active.pk} of this source is still {active.status}")
        self.active = active


def _enqueue(crawl_id: int, *, workers: int = 1) -> None:
    """Send the crawl's tasks (after its transaction committed). A broker that cannot be
    reached loses nothing: the crawl stays queued and the sweep sends it again."""
    try:
        for _ in range(workers):
            celery_app.send_task("crawls.run", args=[crawl_id], queue=settings.CRAWL_QUEUE)
    except kombu.exceptions.OperationalError as exc:
        logger.warning(
            "crawl %s not sent, the broker is unreachable (%s): the sweep will", crawl_id, exc
        )


@transaction.atomic
def crawl_start(
    *, source: Source, user=None, trigger: str = "manual", workers: int | None = None
) -> Crawl:
    """Queue a crawl of `source`: the row, its seed URLs and a `queued` event in one
    transaction; `workers` Celery tasks (default CRAWL_WORKERS_PER_CRAWL) are sent when it
    commits. Raises CrawlConflict when the source has an active crawl and its overlap policy
    is "skip", Backpressure when the workspace has too many active crawls."""
    source = Source.objects.select_for_update().get(pk=source.pk)  # one start at a time
    active = source.crawls.filter(status__in=Crawl.ACTIVE).order_by("id").first()
    if active is not None and source.overlap_policy == Source.OverlapPolicy.SKIP:
        raise CrawlConflict(active)
    busy = Crawl.objects.filter(workspace_id=source.workspace_id, status__in=Crawl.ACTIVE).count()
    if busy >= settings.CRAWL_MAX_ACTIVE_PER_WORKSPACE:
        raise Backpressure(busy)
    crawl = Crawl.objects.create(
        workspace_id=source.workspace_id,
        source=source,
        created_by=user,
        heartbeat_at=timezone.now(),
    )
    parsed = rules.rules_parse(source.rules)
    allowlist = run.allowlist()
    seeds, refused = [], []
    for url in source.start_urls:
        canonical = urls.canonicalize(url, ignore_params=parsed.ignore_params)
        try:
            guard.check_url(canonical, allowlist=allowlist)
        except guard.Refused as exc:
            refused.append({"url": url, "class": "refused", "error": exc.reason})
        else:
            seeds.append(frontier.Link(canonical, urls.url_hash(canonical), 0, "list"))
    added = frontier.frontier_add(
        crawl_id=crawl.pk, workspace_id=crawl.workspace_id, links=seeds, room=source.max_pages
    )
    Crawl.objects.filter(pk=crawl.pk).update(pages_total=added)
    crawl.pages_total = added
    events.event_append(
        crawl_id=crawl.pk,
        workspace_id=crawl.workspace_id,
        type=events.QUEUED,
        payload={"source": source.pk, "trigger": trigger, "start_urls": len(seeds)},
    )
    for payload in refused:
        events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.URL_REFUSED,
            payload=payload,
        )  # fmt: skip
    n = settings.CRAWL_WORKERS_PER_CRAWL if workers is None else workers
    transaction.on_commit(lambda: _enqueue(crawl.pk, workers=n))
    return crawl


def crawl_scheduled(*, source_id: int) -> Crawl | None:
    """What beat runs for a scheduled source: a crawl, or none when the policy says skip."""
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        return None
    try:
        return crawl_start(source=source, trigger="schedule")
    except (CrawlConflict, Backpressure) as refusal:
        logger.info("source %s: scheduled crawl skipped (%s)", source_id, refusal)
        return None


@transaction.atomic
def crawl_cancel(*, crawl: Crawl) -> Crawl:
    """Cancel a crawl: at once when queued, between two batches when running."""
    crawl = Crawl.objects.select_for_update().get(pk=crawl.pk)
    if crawl.status == Crawl.Status.QUEUED:
        crawl.status = Crawl.Status.CANCELLED
        crawl.cancel_requested = True
        crawl.finished_at = timezone.now()
        crawl.save(update_fields=["status", "cancel_requested", "finished_at"])
        events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.CANCELLED,
            payload={"pages_done": crawl.pages_done},
        )  # fmt: skip
    elif crawl.status == Crawl.Status.RUNNING and not crawl.cancel_requested:
        crawl.cancel_requested = True
        crawl.save(update_fields=["cancel_requested"])
        events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.CANCEL_REQUESTED
        )
    return crawl


def crawl_retry(*, crawl: Crawl, user=None) -> Crawl:
    """Start a new crawl of a finished crawl's source."""
    if crawl.is_active:
        raise CrawlConflict(crawl)
    return crawl_start(source=crawl.source, user=user, trigger="retry")


def crawl_sweep(*, stall_seconds: int | None = None) -> list[int]:
    """Re-enqueue active crawls that show no sign of life (their worker died, or their task
    message was lost); the frontier's expired leases let the new worker carry on. A crawl that
    went silent more than CRAWL_MAX_REVIVALS times is failed instead: nothing comes back forever."""
    stall = stall_seconds if stall_seconds is not None else settings.CRAWL_STALL_SECONDS
    cutoff = timezone.now() - dt.timedelta(seconds=stall)
    revived = []
    with transaction.atomic():
        stalled = (
            Crawl.objects.select_for_update(skip_locked=True)
            .filter(status__in=Crawl.ACTIVE, heartbeat_at__lt=cutoff)
            .only("id", "workspace_id", "status", "revivals")
        )
        for crawl in stalled:
            if crawl.revivals >= settings.CRAWL_MAX_REVIVALS:
                _crawl_give_up(crawl, stall)
                continue
            Crawl.objects.filter(pk=crawl.pk).update(
                heartbeat_at=timezone.now(), revivals=F("revivals") + 1
            )
            events.event_append(
                crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.RESUMED,
                payload={"stalled_for_more_than_s": stall, "revival": crawl.revivals + 1},
            )  # fmt: skip
            revived.append(crawl.pk)
        transaction.on_commit(lambda: [_enqueue(pk) for pk in revived])
    if revived:
        logger.warning("re-enqueued stalled crawls %s", revived)
    return revived


def _crawl_give_up(crawl: Crawl, stall: int) -> None:
    error = (
        f"gave up: its worker went silent for more than {stall}s "
        f"{crawl.revivals + 1} times (CRAWL_MAX_REVIVALS={settings.CRAWL_MAX_REVIVALS})"
    )
    lifecycle.crawl_finish(crawl, Crawl.Status.FAILED, owner=None, error=error)
    logger.error("crawl %s: %s", crawl.pk, error)


# --- API tokens and members -------------------------------------------------------------------

TOKEN_PREFIX = "fst_"  # noqa: S105 - a public marker, not a secret
TOKEN_TOUCH_SECONDS = 60  # last_used_at is written at most this often per token


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def token_create(*, user, workspace: Workspace, name: str) -> tuple[ApiToken, str]:
    """A new token of `user` in `workspace` (a member of it); the plain token is returned once."""
    if not Membership.objects.filter(workspace=workspace, user=user).exists():
        raise ValidationError({"workspace": ["you are not a member of this workspace"]})
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        workspace=workspace, user=user, name=name, prefix=prefix, key_hash=token_hash(raw)
    )
    return token, raw


def token_authenticate(*, raw: str) -> ApiToken | None:
    """The active token `raw` names, if its user is active and still a member; else None.

    The token carries its user and `role` (the member's role in the token's workspace).
    """
    if not raw.startswith(TOKEN_PREFIX) or len(raw) < len(TOKEN_PREFIX) + 9:
        return None
    token = _token_lookup(raw[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 8])
    if token is None or not hmac.compare_digest(token.key_hash, token_hash(raw)):
        return None
    now = timezone.now()
    if (
        token.last_used_at is None
        or (now - token.last_used_at).total_seconds() > TOKEN_TOUCH_SECONDS
    ):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def _token_lookup(prefix: str) -> ApiToken | None:
    """Token, user and membership in one statement, on every API request.

    Written as SQL over the models' columns: building the same query with the ORM
    (select_related + Exists) cost ~2 ms of Python per request, four times the query itself.
    """
    sql, token_fields, user_model, user_fields = _token_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(token_fields)
    token = ApiToken.from_db(connection.alias, token_fields, row[:split])
    token.user = user_model.from_db(connection.alias, user_fields, row[split:-1])
    token.role = row[-1]
    return token


@functools.cache
def _token_statement() -> tuple[str, list[str], type, list[str]]:
    user_model = ApiToken._meta.get_field("user").related_model
    token_columns = ApiToken._meta.concrete_fields
    user_columns = user_model._meta.concrete_fields
    columns = ", ".join(
        [f't."{f.column}"' for f in token_columns] + [f'u."{f.column}"' for f in user_columns]
    )
    # Table and column names come from the models; the prefix is a parameter.
    sql = (
        f"SELECT {columns}, m.role FROM {ApiToken._meta.db_table} t"  # noqa: S608
        f" JOIN {user_model._meta.db_table} u ON u.id = t.user_id AND u.is_active"
        f" JOIN {Membership._meta.db_table} m"
        " ON m.workspace_id = t.workspace_id AND m.user_id = t.user_id"
        " WHERE t.prefix = %s AND t.revoked_at IS NULL"
    )
    return sql, [f.attname for f in token_columns], user_model, [f.attname for f in user_columns]


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


# --- Members: who may change whom; a workspace always keeps an owner ---------------------------
#
# Every adapter (API, admin) changes members through membership_add, membership_role_change and
# membership_remove, naming its `actor`; the rules below are the only copy. Each change locks the
# workspace's row first, so changes of one workspace's members run one after the other and the
# owner count read after the lock is the committed one.

ROLE_MANAGERS_ONLY = "Only owners and admins manage members."
ROLE_OWNERS_ONLY = "Only an owner may grant or take away the owner role."
ROLE_LAST_OWNER = "a workspace needs at least one owner"


class RoleRefused(ValidationError):
    """The actor's role does not allow this change of members (the API answers 403)."""


def _check_role(role: str) -> None:
    if role not in Membership.Role.values:
        raise ValidationError({"role": [f"{role!r} is not a role"]})


def _acting_role(*, workspace_id: int, actor) -> str | None:
    """The role `actor` acts with: a Membership its own (read again), a superuser owner's, any
    other user their membership's (None: not a member of the workspace)."""
    if isinstance(actor, Membership):
        if actor.workspace_id != workspace_id:
            return None
        rows = Membership.objects.filter(pk=actor.pk)
    elif actor.is_superuser:
        return Membership.Role.OWNER
    else:
        rows = Membership.objects.filter(workspace_id=workspace_id, user_id=actor.pk)
    return rows.values_list("role", flat=True).first()


def membership_check(
    *, actor, workspace_id: int, membership: Membership | None = None, role: str | None = None
) -> None:
    """RoleRefused unless `actor` (a user or their Membership) may give `membership` (None: a
    newcomer) `role`, or remove it (`role` None): owners and admins manage members, only an
    owner grants or takes away the owner role, and anyone may leave."""
    actor_user_id = actor.user_id if isinstance(actor, Membership) else actor.pk
    if membership is not None and role is None and membership.user_id == actor_user_id:
        return  # leaving
    acting = _acting_role(workspace_id=workspace_id, actor=actor)
    if acting not in Membership.MANAGER_ROLES:
        raise RoleRefused({"role": [ROLE_MANAGERS_ONLY]})
    touched = {role, membership.role if membership is not None else None}
    if Membership.Role.OWNER in touched and acting != Membership.Role.OWNER:
        raise RoleRefused({"role": [ROLE_OWNERS_ONLY]})


def _members_lock(workspace_id: int) -> None:
    """Lock the workspace's row until the transaction ends. FOR NO KEY UPDATE: rows that merely
    reference the workspace (bids, crawls, new members) can still be written meanwhile."""
    Workspace.objects.select_for_update(no_key=True).only("pk").get(pk=workspace_id)


def _keep_an_owner(*, membership: Membership, role: str | None) -> None:
    """ValidationError when `membership` is its workspace's last owner and would stop being one
    (`role` None: removed). Only under _members_lock."""
    if membership.role != Membership.Role.OWNER or role == Membership.Role.OWNER:
        return
    owners = Membership.objects.filter(
        workspace_id=membership.workspace_id, role=Membership.Role.OWNER
    )
    if not owners.exclude(pk=membership.pk).exists():
        raise ValidationError({"role": [ROLE_LAST_OWNER]})


@transaction.atomic
def membership_remove(*, membership: Membership, actor) -> None:
    """Remove a member as `actor`, revoking the member's tokens; a workspace keeps an owner."""
    _members_lock(membership.workspace_id)
    current = Membership.objects.filter(pk=membership.pk).first()
    if current is None:
        return  # removed meanwhile
    membership_check(actor=actor, workspace_id=current.workspace_id, membership=current)
    _keep_an_owner(membership=current, role=None)
    ApiToken.objects.filter(workspace_id=current.workspace_id, user_id=current.user_id).update(
        revoked_at=timezone.now()
    )
    current.delete()


# --- Workspace API: workspaces, members (added with crawls/api/workspaces.py) ------------------


@transaction.atomic
def workspace_rename(*, workspace: Workspace, name: str) -> Workspace:
    """Rename a workspace; its slug stays as it was (links and tokens keep working)."""
    workspace.name = name
    workspace.save(update_fields=["name"])
    return workspace


@transaction.atomic
def workspace_delete(*, workspace: Workspace) -> None:
    """Delete a workspace and everything in it, with its sources' beat schedules."""
    PeriodicTask.objects.filter(
        pk__in=Source.objects.in_workspace(workspace)
        .exclude(periodic_task=None)
        .values("periodic_task_id")
    ).delete()
    workspace.delete()


@transaction.atomic
def membership_add(*, workspace: Workspace, user, role: str, actor) -> Membership:
    """Add `user` to `workspace` with `role` as `actor`; ValidationError when already a member."""
    _check_role(role)
    _members_lock(workspace.pk)
    membership_check(actor=actor, workspace_id=workspace.pk, role=role)
    try:
        with transaction.atomic():
            return Membership.objects.create(workspace=workspace, user=user, role=role)
    except IntegrityError as exc:
        raise ValidationError({"user": ["already a member of this workspace"]}) from exc


@transaction.atomic
def membership_role_change(*, membership: Membership, role: str, actor) -> Membership:
    """Change a member's role as `actor`; a workspace keeps at least one owner. The rules see
    the stored role, whatever `membership.role` says (a form may have set it already)."""
    _check_role(role)
    _members_lock(membership.workspace_id)
    current = Membership.objects.filter(pk=membership.pk).first()
    if current is None:
        raise ValidationError({"user": ["no longer a member of this workspace"]})
    membership_check(actor=actor, workspace_id=current.workspace_id, membership=current, role=role)
    _keep_an_owner(membership=current, role=role)
    current.role = role
    current.save(update_fields=["role"])
    membership.role = role
    return membership


# --- Sources and crawls API: deleting a source (added with crawls/api/crawls.py) ---------------


@transaction.atomic
def source_delete(*, source: Source) -> None:
    """Delete a source with its crawls, bids and beat schedule. Raises CrawlConflict while one
    of its crawls is queued or running (cancel it first): its workers would lose their rows."""
    source = Source.objects.select_for_update().get(pk=source.pk)
    active = source.crawls.filter(status__in=Crawl.ACTIVE).order_by("id").first()
    if active is not None:
        raise CrawlConflict(active)
    task_id = source.periodic_task_id
    source.delete()
    if task_id is not None:
        PeriodicTask.objects.filter(pk=task_id).delete()
