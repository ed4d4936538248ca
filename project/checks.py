"""System checks of the database roles (`manage.py check --database default`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import connections


@register(Tags.database)
def rls_roles_check(app_configs: Any = None, databases: Any = None, **_kwargs: Any) -> list[Any]:
    """Row-level security on, but the application's role is not bound by it (or could undo it)."""
    if not databases or "default" not in databases or not settings.DATABASE_RLS:
        return []
    if settings.DATABASE_AS_OWNER:  # migrate runs as the owner on purpose
        return []
    return [Warning(message, id="forest.W001") for message in rls_problems(connections["default"])]


def rls_problems(connection: Any) -> list[str]:
    """Why row-level security does not bind the role `connection` logs in as (empty: it does)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        user, superuser, bypass = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'crawls_bid' AND tableowner = %s",
            [user],
        )
        (owns,) = cursor.fetchone()
    if superuser or bypass:
        return [
            f"DATABASE_RLS is on but the role {user} is a superuser or BYPASSRLS: row-level "
            "security does not apply. Connect as a role of its own (DATABASE_URL) and run "
            "migrations as the owner (DATABASE_OWNER_URL); docs/tenancy.md."
        ]
    if owns:
        return [
            f"The role {user} owns the tables: row-level security applies (FORCE) but the role "
            "could turn it off. Give the application a role of its own; docs/tenancy.md."
        ]
    return []
