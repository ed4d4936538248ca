"""Row-level security on the table of analytics (docs/tenancy.md): a backstop behind the
application's scoping. Each table's policy lets a statement see and write the rows of the
workspaces in the session setting forest.workspace_ids ("*": every workspace, the system scope;
unset or "": none). FORCE: the owner of the tables is held to it too, unless it is a superuser
or BYPASSRLS. No rewrite; ALTER TABLE takes a brief ACCESS EXCLUSIVE lock per table.
"""

from django.db import migrations

SCOPE = "current_setting('forest.workspace_ids', true)"


def in_scope(column):
    return f"({SCOPE} = '*' OR {column} = ANY (string_to_array(nullif({SCOPE}, '*'), ',')::bigint[]))"


def through(parent, column):
    """Rows without a workspace of their own: visible when their parent row is (the parent's
    policy applies inside the EXISTS)."""
    return f"EXISTS (SELECT 1 FROM {parent} p WHERE p.id = {column})"


# table -> the condition its rows must meet
POLICIES = {
    "analytics_departmentday": in_scope("workspace_id"),
}


def forward(table, condition):
    return (
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;"
        f" ALTER TABLE {table} FORCE ROW LEVEL SECURITY;"
        f" CREATE POLICY forest_workspace ON {table} USING ({condition}) WITH CHECK ({condition});"
    )


def backward(table):
    return (
        f"DROP POLICY IF EXISTS forest_workspace ON {table};"
        f" ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;"
        f" ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;"
    )


class Migration(migrations.Migration):
    dependencies = [('analytics', '0001_initial'), ('crawls', '0013_rls_policies')]

    operations = [
        migrations.RunSQL(forward(table, condition), backward(table))
        for table, condition in POLICIES.items()
    ]
