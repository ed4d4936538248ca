"""Row-level security on the tables of crawls (docs/tenancy.md): a backstop behind the
application's scoping. Each table's policy lets a statement see and write the rows of the
workspaces in the session setting forest.workspace_ids ("*": every workspace, the system scope;
unset or "": none). FORCE: the owner of the tables is held to it too, unless it is a superuser
or BYPASSRLS. No rewrite; ALTER TABLE takes a brief ACCESS EXCLUSIVE lock per table.
"""

from django.db import migrations

from project.rls_policies import in_scope, leakproof, policy_create, policy_drop, through

# table -> the condition its rows must meet
POLICIES = {
    "crawls_workspace": in_scope("id"),
    "crawls_membership": in_scope("workspace_id"),
    "crawls_source": in_scope("workspace_id"),
    "crawls_crawl": in_scope("workspace_id"),
    "crawls_frontierurl": in_scope("workspace_id"),
    "crawls_bid": in_scope("workspace_id"),
    "crawls_bidrevision": in_scope("workspace_id"),
    "crawls_crawlevent": in_scope("workspace_id"),
    "crawls_apitoken": in_scope("workspace_id"),
    "crawls_subscribercursor": through("crawls_crawl", "crawl_id"),
    "crawls_importjob": in_scope("workspace_id"),
}


# A qual with a function that is not LEAKPROOF runs after the policy's, so no index serves it:
# bid search (ILIKE, the title trigram index) and the classification filter (@>, the GIN index)
# became sequential scans of the workspace (1.3 ms -> 316 ms on 200,000 bids). Neither reveals
# row data through its errors (they depend on the pattern or the types only). Only a superuser
# may mark them; another owner leaves them be, with a warning (docs/tenancy.md).
LEAKPROOF = ["texticlike(text, text)", "arraycontains(anyarray, anyarray)"]


class Migration(migrations.Migration):
    dependencies = [('crawls', '0012_import_jobs')]

    operations = [
        *(
            migrations.RunSQL(policy_create(table, condition), policy_drop(table))
            for table, condition in POLICIES.items()
        ),
        migrations.RunSQL(leakproof(LEAKPROOF, "LEAKPROOF"), leakproof(LEAKPROOF, "NOT LEAKPROOF")),
    ]
