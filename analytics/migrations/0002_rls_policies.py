"""Row-level security on the table of analytics (docs/tenancy.md): a backstop behind the
application's scoping. Each table's policy lets a statement see and write the rows of the
workspaces in the session setting forest.workspace_ids ("*": every workspace, the system scope;
unset or "": none). FORCE: the owner of the tables is held to it too, unless it is a superuser
or BYPASSRLS. No rewrite; ALTER TABLE takes a brief ACCESS EXCLUSIVE lock per table.
"""

from django.db import migrations

from project.rls_policies import in_scope, policy_create, policy_drop

# table -> the condition its rows must meet
POLICIES = {
    "analytics_departmentday": in_scope("workspace_id"),
}


class Migration(migrations.Migration):
    dependencies = [('analytics', '0001_initial'), ('crawls', '0013_rls_policies')]

    operations = [
        migrations.RunSQL(policy_create(table, condition), policy_drop(table))
        for table, condition in POLICIES.items()
    ]
