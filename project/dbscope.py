"""The database scope: which workspaces PostgreSQL's row-level security lets a statement see.

A backstop behind the application's own scoping (WorkspaceScopedQuerySet, crawls.api.auth.scoped):
policies on every workspace-owned table (crawls 0013, notifications 0005, analytics 0002) compare
a row's workspace with the session setting `forest.workspace_ids`:
  - ""      nothing (the value of a connection nobody scoped: a forgotten scope sees no rows),
  - "3,5"   the rows of workspaces 3 and 5,
  - "*"     every row: the system scope, taken explicitly by jobs that sweep every workspace.

The scope lives in a context variable (`current()`), set by the request middleware, the Celery
task hook and `system_scope()` / `workspace_scope()`. An execute wrapper installed on every
connection brings the session setting in line with it before a statement runs (docs/tenancy.md):
one `set_config` per connection checkout and per scope change, not one per statement. A value
set inside a transaction is not trusted past the statement (a rollback would undo it), so it is
set again before each statement until the connection is back in autocommit.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import types
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.utils.functional import SimpleLazyObject, empty
from psycopg.pq import TransactionStatus

from project import runtime

logger = logging.getLogger(__name__)

SETTING = "forest.workspace_ids"
SYSTEM = "*"
NOTHING = ""


class UserScope:
    """The workspaces of a request's user, looked up only when a statement needs the scope
    (never when the role bypasses row-level security): one statement, in the system scope."""

    def __init__(self, request: Any) -> None:
        self.request = request
        self.value: str | None = None

    def resolve(self, connection: BaseDatabaseWrapper) -> str:
        if self.value is not None:
            return self.value
        # The user once loaded (django.contrib.auth caches it there): the statements that load
        # the session and the user run before, with no scope (those tables have no policy).
        user = (
            getattr(self.request, "_cached_user", None)
            or getattr(self.request, "_acached_user", None)  # request.auser() (async views)
            or getattr(self.request, "user", None)
        )
        if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
            return NOTHING
        if not user.is_authenticated or not user.is_active:
            self.value = NOTHING
        elif user.is_superuser and self.request.path.startswith("/admin/"):
            self.value = SYSTEM
        else:
            _set(connection, "%s", [SYSTEM])  # memberships are under the policies too
            self.value = _set(connection, MEMBER_WORKSPACES, [user.pk])
        return self.value


MEMBER_WORKSPACES = (
    "coalesce((SELECT string_agg(workspace_id::text, ',' ORDER BY workspace_id)"
    " FROM crawls_membership WHERE user_id = %s), '')"
)
Scope = str | UserScope
_scope: contextvars.ContextVar[Scope] = contextvars.ContextVar("forest_db_scope", default=NOTHING)


def encode(workspace_ids: Iterable[int]) -> str:
    return ",".join(str(int(pk)) for pk in sorted(set(workspace_ids)))


def current() -> Scope:
    """The scope statements of this context run in (NOTHING unless someone set one)."""
    return _scope.get()


def set_scope(value: Scope) -> contextvars.Token[Scope]:
    return _scope.set(value)


def reset_scope(token: contextvars.Token[Scope]) -> None:
    _scope.reset(token)


@contextlib.contextmanager
def scope(value: Scope) -> Iterator[None]:
    token = _scope.set(value)
    try:
        yield
    finally:
        _scope.reset(token)


def system_scope() -> contextlib.AbstractContextManager[None]:
    """Every workspace: for jobs that sweep all of them (beat, maintenance), taken explicitly."""
    return scope(SYSTEM)


def workspace_scope(*workspace_ids: int) -> contextlib.AbstractContextManager[None]:
    return scope(encode(workspace_ids))


def widen(workspace_id: int) -> None:
    """The context's scope sees `workspace_id` too (a workspace made during a request): a user's
    scope reads its memberships again at the next statement; a list of workspaces grows. No
    scope stays none (nobody scoped this context: nothing is granted by the way)."""
    value = current()
    if isinstance(value, UserScope):
        value.value = None
    elif value not in (SYSTEM, NOTHING):
        _scope.set(encode([*(int(pk) for pk in value.split(",")), workspace_id]))


def carried(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` to run in another thread (threading.Thread's target) in the caller's scope: a new
    thread starts with an empty context, so with no scope. Each call runs in a copy of the
    caller's context (a context can be entered by one thread at a time)."""
    context = contextvars.copy_context()

    def run(*args: Any, **kwargs: Any) -> Any:
        return context.copy().run(fn, *args, **kwargs)

    return run


def bound(value: Scope, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` run in scope `value`, wherever it is called from (database_sync_to_async's thread,
    an async generator iterated after its view returned)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        with scope(value):
            return fn(*args, **kwargs)

    return run


def carry_stream(response: Any, value: Scope) -> None:
    """A streaming response's body is read after the view and its middleware returned: each
    step of its iterator runs in the request's scope `value` (sync and async iterators)."""
    content = response.streaming_content
    if getattr(response, "is_async", False):
        response.streaming_content = _async_steps(content, value)
    else:
        response.streaming_content = _sync_steps(content, value)


def _sync_steps(content: Iterator[Any], value: Scope) -> Iterator[Any]:
    iterator = iter(content)
    while True:
        with scope(value):
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


async def _async_steps(content: AsyncIterator[Any], value: Scope) -> AsyncIterator[Any]:
    iterator = aiter(content)
    try:
        while True:
            with scope(value):
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    return
            yield item
    finally:
        closing = getattr(iterator, "aclose", None)
        if closing is not None:
            with scope(value):
                await closing()


# --- Applying the scope on a connection ---------------------------------------------------------

# Roles that bypass row-level security (superusers, BYPASSRLS): nothing to apply. Per settings.
_bypass_cache: dict[tuple[str, str, str, Any], bool] = {}


def enabled() -> bool:
    """DATABASE_RLS: on, the scope of the context applies; off, every connection runs in the
    system scope (the policies stay, and see everything)."""
    return bool(getattr(settings, "DATABASE_RLS", True))


def role_bypasses(connection: BaseDatabaseWrapper) -> bool:
    """Whether the role `connection` logs in as is not subject to row-level security."""
    sd = connection.settings_dict
    key = (sd["NAME"], sd["USER"], sd["HOST"], sd["PORT"])
    if key not in _bypass_cache:
        row = connection.connection.execute(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        _bypass_cache[key] = bool(row and row[0])
    return _bypass_cache[key]


# Statements that read no rows and must not follow another (SET TRANSACTION comes first in its
# transaction): no scope is set before them; the next statement sets it.
_CONTROL = ("SET TRANSACTION", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def _apply(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any) -> Any:
    if not (isinstance(sql, str) and sql.lstrip()[:21].upper().startswith(_CONTROL)):
        _bring_in_line(context["connection"])
    return execute(sql, params, many, context)


def _bring_in_line(connection: Any) -> None:
    if connection.connection.info.transaction_status == TransactionStatus.INERROR:
        return  # only a rollback can run (of a savepoint: the next statement sets it again)
    wanted = current() if enabled() else SYSTEM
    if isinstance(wanted, UserScope):
        wanted = wanted.resolve(connection)
    state = getattr(connection, "_forest_scope", None)  # (raw connection, value, trusted)
    if state is None or state[0] is not connection.connection or state[1] != wanted or not state[2]:
        _set(connection, "%s", [wanted])


def sync(connection: Any) -> None:
    """Bring the session setting in line with the scope now, for statements that bypass
    Django's execute wrappers (a plain psycopg cursor on Django's connection). Call it right
    before them, in the same transaction: a rollback in between would undo it."""
    connection.ensure_connection()
    if _apply in connection.execute_wrappers:
        _bring_in_line(connection)


def _set(connection: Any, value_sql: str, params: list[Any] | None = None) -> str:
    """Set the session's scope to the value of `value_sql`; return it."""
    raw = connection.connection
    row = raw.execute(f"SELECT set_config(%s, {value_sql}, false)", [SETTING, *(params or [])])
    value: str = row.fetchone()[0]
    # Set in autocommit it holds for the session; inside a transaction a rollback (or the
    # rollback of a savepoint) would quietly bring back the previous value: not trusted.
    trusted = connection.get_autocommit() and not connection.in_atomic_block
    connection._forest_scope = (raw, value, trusted)
    return value


def _install(sender: Any, connection: BaseDatabaseWrapper, **_kwargs: Any) -> None:
    """On every new connection (with the pool: every checkout) forget what was applied: the
    connection may come back from the pool with another request's scope on it."""
    connection._forest_scope = None  # type: ignore[attr-defined]
    if connection.vendor != "postgresql":
        return
    if role_bypasses(connection):
        if _apply in connection.execute_wrappers:
            connection.execute_wrappers.remove(_apply)
        return
    if _apply not in connection.execute_wrappers:
        connection.execute_wrappers.append(_apply)


connection_created.connect(_install, dispatch_uid="forest-db-scope")


def forget_roles() -> None:
    """Forget which roles bypass row-level security (tests that switch the role)."""
    _bypass_cache.clear()


# --- Who sets the scope: requests, tasks --------------------------------------------------------


class ScopeMiddleware:
    """Each request runs in its caller's scope, and leaves the scope as it found it."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        token = _scope.set(UserScope(request))
        try:
            response = self.get_response(request)
            if getattr(response, "streaming", False):
                carry_stream(response, current())  # the body is read after we return
            return response
        finally:
            _scope.reset(token)


class ConsumerScopeMiddleware:
    """A WebSocket connection runs in its user's scope (Channels' AuthMiddleware resolved the
    user): database_sync_to_async carries the context into the threads that query."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        caller = types.SimpleNamespace(user=scope.get("user"), path=scope.get("path", ""))
        token = _scope.set(UserScope(caller))
        try:
            return await self.inner(scope, receive, send)
        finally:
            _scope.reset(token)


# A task that works for one workspace names the row it works on: (app label, model, argument).
# Every other task sweeps all workspaces and takes the system scope (TASK_SYSTEM); a task in
# neither list runs with no scope (sees nothing), so a new task has to be placed in one.
TASK_ROWS: dict[str, tuple[str, str]] = {
    "crawls.run": ("crawls", "Crawl"),
    "crawls.scheduled": ("crawls", "Source"),
    "crawls.import_run": ("crawls", "ImportJob"),
    "notifications.webhook_deliver": ("notifications", "WebhookDelivery"),
    "notifications.email_send": ("notifications", "EmailDelivery"),
    "notifications.channel_send": ("notifications", "ChannelDelivery"),
}
TASK_SYSTEM = frozenset(
    {
        "crawls.sweep",
        "crawls.subscribers_catch_up",
        "notifications.webhook_sweep",
        "notifications.email_sweep",
        "notifications.channel_sweep",
        "notifications.digest_send",
        "notifications.reminders_send",
        "project.ping",
    }
)


def task_scope(name: str, args: tuple[Any, ...] | list[Any] | None) -> str:
    """The scope task `name` called with `args` runs in."""
    if name in TASK_SYSTEM:
        return SYSTEM
    if name not in TASK_ROWS or not args:
        return NOTHING
    from django.apps import apps  # noqa: PLC0415 - project must not import the apps at load

    model = apps.get_model(*TASK_ROWS[name])
    with system_scope():
        workspace_id = model.objects.filter(pk=args[0]).values_list("workspace_id", flat=True)
        found = list(workspace_id)
    return encode(found)


# --- Roles ----------------------------------------------------------------------------------------


def grant_app_role(using: str = "default", **_kwargs: Any) -> None:
    """After `migrate` as the owner: the application's role may read and write every table
    (rows as the policies allow), never change the schema. Nothing when they are one role."""
    from django.db import connections  # noqa: PLC0415

    role = getattr(settings, "DATABASE_APP_ROLE", "")
    connection = connections[using]
    if not role or connection.vendor != "postgresql" or role == connection.settings_dict["USER"]:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            logger.warning("DATABASE_URL's role %s does not exist: no grants", role)
            return
        quoted = connection.ops.quote_name(role)
        for grant in runtime.APP_GRANTS:
            cursor.execute(grant.format(role=quoted))
