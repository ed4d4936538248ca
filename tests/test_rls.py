"""Row-level security as a tenancy backstop (docs/tenancy.md): the application's role, connected
for real, sees only the rows of the scope its request, task or job took."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from crawls.filters import BidFilter
from crawls.models import Bid, Crawl, Source, Workspace
from project import checks, dbscope
from project.celery import _enter_db_scope, _leave_db_scope
from tests import clients, factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_rls_query_without_scope_sees_nothing(two_workspaces, app_role):
    assert dbscope.current() == dbscope.NOTHING
    assert Bid.objects.count() == 0
    assert Source.objects.count() == 0
    assert Workspace.objects.count() == 0


def test_rls_query_that_forgets_the_scope_sees_only_its_workspace(two_workspaces, app_role):
    workspace_a, workspace_b = two_workspaces
    with dbscope.workspace_scope(workspace_a.pk):
        # No .visible_to / .in_workspace: the application's scoping forgotten.
        assert set(Bid.objects.values_list("workspace_id", flat=True)) == {workspace_a.pk}
        assert list(Workspace.objects.values_list("pk", flat=True)) == [workspace_a.pk]
        assert not Source.objects.filter(workspace=workspace_b).exists()


def test_rls_system_scope_sees_every_workspace(two_workspaces, app_role):
    with dbscope.system_scope():
        assert set(Bid.objects.values_list("workspace_id", flat=True)) == {
            workspace.pk for workspace in two_workspaces
        }


def test_rls_refuses_a_write_into_another_workspace(two_workspaces, app_role):
    workspace_a, workspace_b = two_workspaces
    with dbscope.workspace_scope(workspace_a.pk), pytest.raises(DatabaseError, match="row-level"):
        Source.objects.create(workspace=workspace_b, name="Planted", start_urls=["https://x.org/"])
    with dbscope.system_scope():
        assert not Source.objects.filter(name="Planted").exists()


def test_rls_scope_does_not_leak_through_a_reused_connection(two_workspaces, app_role):
    workspace_a, _ = two_workspaces
    with dbscope.workspace_scope(workspace_a.pk):
        assert Bid.objects.count() == 1
        raw = connection.connection
    connection.close()  # back to the pool of one: the next checkout is the same connection
    assert Bid.objects.count() == 0
    assert connection.connection is raw
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [dbscope.SETTING])
        assert cursor.fetchone() == ("",)


def test_rls_scope_of_a_request_ends_with_it(two_workspaces, app_role, owner, outsider):
    """Two requests in a row on the one connection: each sees its caller's workspace only, and
    the code after them is back to no scope."""
    workspace_a, workspace_b = two_workspaces
    seen = {}
    for user in (owner, outsider):
        client = APIClient()
        client.force_login(user)  # a session, as a browser has (the middleware reads it)
        response = client.get("/api/v1/bids/")
        assert response.status_code == 200, response.content
        seen[user.username] = {row["workspace"] for row in response.json()["results"]}
    assert seen == {"olivia": {workspace_a.pk}, "oscar": {workspace_b.pk}}
    assert dbscope.current() == dbscope.NOTHING
    assert Bid.objects.count() == 0


def test_rls_bearer_request_sees_its_tokens_workspace(two_workspaces, owner, app_role):
    workspace_a, _ = two_workspaces
    with dbscope.system_scope():
        client = clients.bearer(owner, workspace_a)
    response = client.get("/api/v1/bids/")
    assert response.status_code == 200, response.content
    assert {row["workspace"] for row in response.json()["results"]} == {workspace_a.pk}


def test_rls_task_sees_only_its_crawls_workspace(two_workspaces, app_role):
    _, workspace_b = two_workspaces
    with dbscope.system_scope():
        crawl_b = Crawl.objects.get(workspace=workspace_b)
    task = type("Task", (), {"name": "crawls.run"})
    _enter_db_scope(sender=task, args=[crawl_b.pk])
    try:
        assert list(Crawl.objects.values_list("pk", flat=True)) == [crawl_b.pk]
        assert set(Bid.objects.values_list("workspace_id", flat=True)) == {workspace_b.pk}
    finally:
        _leave_db_scope()
    assert Crawl.objects.count() == 0


def test_rls_sweeping_tasks_take_the_system_scope_and_unknown_ones_nothing(
    two_workspaces, app_role
):
    assert dbscope.task_scope("notifications.digest_send", []) == dbscope.SYSTEM
    assert dbscope.task_scope("somebody.new_task", [1]) == dbscope.NOTHING
    assert dbscope.task_scope("crawls.run", [factories.absent_pk(Crawl)]) == dbscope.NOTHING


def test_rls_off_gives_the_application_role_every_row(two_workspaces, app_role):
    with override_settings(DATABASE_RLS=False):
        assert Bid.objects.count() == 2


def test_rls_check_names_a_role_that_bypasses(db):
    (problem,) = checks.rls_problems(connection)  # the suite's superuser
    assert "superuser or BYPASSRLS" in problem


def test_rls_check_warns_for_the_application_connection_not_for_migrate_as_owner(db, settings):
    settings.DATABASE_RLS = True
    settings.DATABASE_AS_OWNER = False
    (warning,) = checks.rls_roles_check(databases=["default"])  # the suite's superuser
    assert warning.id == "forest.W001"
    settings.DATABASE_AS_OWNER = True  # manage.py migrate: the owner on purpose
    assert checks.rls_roles_check(databases=["default"]) == []


def test_rls_check_passes_for_the_application_role(app_role):
    assert checks.rls_problems(connection) == []


@pytest.mark.django_db
def test_rls_every_workspace_owned_table_has_a_forced_policy():
    """A new model with a workspace (or under one) needs its policy in a migration."""
    tables = {
        model._meta.db_table
        for model in apps.get_models()
        if "workspace" in {f.name for f in model._meta.local_fields}
    } | {"crawls_workspace", "crawls_subscribercursor"}
    tables |= {"notifications_alertmatch", "notifications_reminder"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid"
            " WHERE c.relrowsecurity AND c.relforcerowsecurity AND p.polname = 'forest_workspace'"
        )
        protected = {name for (name,) in cursor.fetchall()}
    assert len(tables) == 21
    assert tables - protected == set()


def test_rls_search_and_classification_keep_their_indexes(two_workspaces, source_a, app_role):
    """ILIKE and @> are marked LEAKPROOF (crawls 0013): under the policy their indexes serve."""
    with dbscope.workspace_scope(source_a.workspace_id):
        Bid.objects.bulk_create(
            factories.new_bid(
                source_a, title=f"도로 보수공사 {n}", classifications=[f"CPV:{45000000 + n}"]
            )
            for n in range(50)
        )
        plans = []
        for params in ({"search": "보수공사"}, {"classification": "CPV:45000007"}):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table
                plans.append(BidFilter(params, queryset=Bid.objects.all()).qs.order_by().explain())
    assert "bid_title_trgm" in plans[0], plans[0]
    assert "bid_classifications" in plans[1], plans[1]
