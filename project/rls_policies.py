"""The SQL of the row-level security policies (docs/tenancy.md), shared by the migrations that
create them (crawls 0013, notifications 0005, analytics 0002). Pure strings, no Django: a
migration's SQL must not change once applied, so change these only together with a new
migration that replaces the policies.

Each policy lets a statement see and write the rows of the workspaces in the session setting
forest.workspace_ids ("*": every workspace, the system scope; unset or "": none). FORCE: the
owner of the tables is held to it too, unless it is a superuser or BYPASSRLS.
"""

from __future__ import annotations

SCOPE = "current_setting('forest.workspace_ids', true)"


def in_scope(column: str) -> str:
    """Rows whose `column` is one of the scope's workspaces."""
    return (
        f"({SCOPE} = '*' OR {column} = ANY (string_to_array(nullif({SCOPE}, '*'), ',')::bigint[]))"
    )


def through(parent: str, column: str) -> str:
    """Rows without a workspace of their own: visible when their parent row is (the parent's
    policy applies inside the EXISTS)."""
    return f"EXISTS (SELECT 1 FROM {parent} p WHERE p.id = {column})"  # noqa: S608 - our names


def policy_create(table: str, condition: str) -> str:
    return (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;"
        f" ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"
        f" CREATE POLICY forest_workspace ON {table} USING ({condition}) WITH CHECK ({condition});"
    )


def policy_drop(table: str) -> str:
    return (
        f"DROP POLICY IF EXISTS forest_workspace ON {table};"
        f" ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;"
        f" ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;"
    )


def leakproof(functions: list[str], mark: str) -> str:
    """Mark built-in `functions` LEAKPROOF (or NOT LEAKPROOF) when a superuser runs the
    migration, so that quals using them can still be served by indexes under the policies;
    another owner gets a warning instead (only a superuser may mark a function)."""
    statements = " ".join(f"ALTER FUNCTION {function} {mark};" for function in functions)
    return (
        "DO $$ BEGIN IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN "  # noqa: S608
        f"{statements} ELSE RAISE WARNING 'not a superuser: search and classification filters "
        "cannot use their indexes under row-level security (docs/tenancy.md)'; END IF; END $$;"
    )
