"""Paths that once ran with no database scope under row-level security (docs/tenancy.md): the
body of a streaming response, WebSocket consumers with a token, feeds read by their secret,
a new workspace, threads and scripts. Each test runs as the application's role with RLS on."""

from __future__ import annotations

import ast
import csv
import io
import json
import threading
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test import Client, override_settings
from rest_framework.test import APIClient

from crawls import events, realtime, services
from crawls.engine import store_sql
from crawls.models import Bid, CrawlEvent, Workspace
from notifications import services as notify
from project import dbscope, runtime
from tests import factories
from tests.clients import session_cookie
from tests.processes import Program, database_url, program_env, python, start_daphne
from tests.test_streams import frames, receive_until_closed, sse, ws

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


def app_env() -> dict[str, str]:
    """A program's environment as the application's role, held to RLS."""
    url = database_url().replace("//postgres", f"//{runtime.APP_ROLE}", 1)
    assert runtime.APP_ROLE in url
    return program_env(DATABASE_URL=url, DATABASE_RLS="on")


@pytest.fixture(scope="module")
def app_daphne(django_db_setup, django_db_blocker, tmp_path_factory):
    """daphne serving project.asgi as the application's role with DATABASE_RLS=on."""
    with django_db_blocker.unblock(), override_settings(DATABASE_APP_ROLE=runtime.APP_ROLE):
        dbscope.grant_app_role("default")
    server = start_daphne(app_env(), tmp_path_factory.mktemp("daphne-rls") / "daphne.log")
    yield server
    server.stop()


def finished_crawl(source, count: int = 3):
    crawl = services.crawl_start(source=source, workers=0)
    for i in range(count):
        kind = events.SUCCEEDED if i == count - 1 else events.PROGRESS
        events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=kind, payload={"n": i}
        )
    realtime.flush()
    return crawl


def logged_sequences(crawl) -> list[int]:
    return list(
        CrawlEvent.objects.filter(crawl=crawl)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )


# --- Streaming bodies ---------------------------------------------------------------------------


def test_rls_sse_of_a_session_and_of_a_token_reads_in_the_callers_scope(
    app_daphne, owner, source_a
):
    crawl = finished_crawl(source_a)
    _, raw = services.token_create(user=owner, workspace=source_a.workspace, name="sse")
    path = f"/api/v1/crawls/{crawl.pk}/events/stream"
    for headers in ({"Cookie": session_cookie(owner)}, {"Authorization": f"Bearer {raw}"}):
        status, _, body = sse(app_daphne, path, headers)
        assert status == 200, body
        assert [seq for seq, _, _ in frames(body)] == logged_sequences(crawl)


def test_rls_sse_of_another_workspaces_crawl_is_404(app_daphne, outsider, source_a):
    crawl = finished_crawl(source_a)
    status, _, _ = sse(
        app_daphne, f"/api/v1/crawls/{crawl.pk}/events/stream", {"Cookie": session_cookie(outsider)}
    )
    assert status == 404


def test_rls_export_body_is_read_in_the_requests_scope(two_workspaces, owner, app_role):
    """A sync streaming body (WSGI): read after ScopeMiddleware returned."""
    client = Client()
    client.force_login(owner)
    response = client.get("/api/v1/bids/export/?type=csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    workspace_a, _ = two_workspaces
    with dbscope.workspace_scope(workspace_a.pk):
        assert [int(row["id"]) for row in rows] == list(Bid.objects.values_list("id", flat=True))
    assert len(rows) == 1


def test_rls_export_body_under_asgi_is_read_in_the_requests_scope(app_daphne, owner, source_a):
    """An async streaming body (daphne): each block read in the request's scope."""
    factories.make_bid(source_a, title="Road repair")
    status, _, body = sse(app_daphne, "/api/v1/bids/export/?type=jsonl", {
        "Cookie": session_cookie(owner)
    })  # fmt: skip
    assert status == 200, body
    assert [json.loads(line)["title"] for line in body.splitlines()] == ["Road repair"]


# --- WebSocket consumers with a token -------------------------------------------------------


@pytest.mark.parametrize("where", ["header", "query"])
def test_rls_token_opens_its_workspaces_crawl_stream(app_daphne, owner, source_a, where):
    crawl = finished_crawl(source_a)
    _, raw = services.token_create(user=owner, workspace=source_a.workspace, name="live")
    path = f"/ws/crawls/{crawl.pk}/"
    options = {"token": raw} if where == "header" else {}
    with ws(app_daphne, path + ("" if options else f"?token={raw}"), **options) as s:
        received, code = receive_until_closed(s)
    assert ([m["seq"] for m in received], code) == (logged_sequences(crawl), 1000)


def test_rls_token_workspace_stream_snapshot_holds_only_its_workspace(
    app_daphne, owner, source_a, workspace_b, source_b
):
    factories.join(workspace=workspace_b, user=owner, role="member")  # the user is in both
    mine, _ = finished_crawl(source_a), finished_crawl(source_b)
    _, raw = services.token_create(user=owner, workspace=source_a.workspace, name="live")
    with ws(app_daphne, "/ws/workspace/", token=raw) as s:
        snapshot = json.loads(s.recv(timeout=30))
    assert [row["id"] for row in snapshot["crawls"]] == [mine.pk]


# --- Secrets read anonymously ---------------------------------------------------------------


def test_rls_feed_token_opens_its_rules_feed(source_a, source_b, teammate, app_role):
    with dbscope.system_scope():
        factories.make_bid(source_a, title="Road repair")
        factories.make_bid(source_b, title="Road works in Busan")
        rule = notify.alert_rule_create(
            workspace_id=source_a.workspace_id,
            owner=teammate,
            name="Roads",
            filter={"search": "road"},
        )
        _, raw = notify.feed_token_create(rule=rule, user_id=teammate.pk)
    response = Client().get(f"/feeds/{raw}/rss/")
    assert response.status_code == 200
    assert "Road repair" in response.content.decode()
    assert "Busan" not in response.content.decode()
    assert Client().get(f"/feeds/{raw[:-1]}x/rss/").status_code == 404


# --- A new workspace ------------------------------------------------------------------------


def test_rls_new_workspace_is_its_creators_within_the_request(
    workspace_a, newcomer, owner, app_role
):
    client = APIClient()
    client.force_login(newcomer)
    response = client.post("/api/v1/workspaces/", {"name": "Seoul tenders"}, format="json")
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["slug"] != workspace_a.slug  # unique among every workspace, not only hers
    assert [w["id"] for w in client.get("/api/v1/workspaces/").json()["results"]] == [made["id"]]
    with dbscope.system_scope():
        assert Workspace.objects.filter(memberships__user=newcomer).count() == 1


def test_rls_new_workspace_joins_a_list_scope_and_no_scope_stays_none(owner, workspace_b, app_role):
    with dbscope.workspace_scope(workspace_b.pk):
        workspace = services.workspace_create(owner=owner, name="Gangnam")
        assert set(Workspace.objects.values_list("pk", flat=True)) == {workspace_b.pk, workspace.pk}
    with dbscope.scope(dbscope.NOTHING):
        services.workspace_create(owner=owner, name="Mapo")
        assert dbscope.current() == dbscope.NOTHING
        assert Workspace.objects.count() == 0


# --- Threads and scripts --------------------------------------------------------------------


def test_rls_a_carried_thread_keeps_its_callers_scope(two_workspaces, app_role):
    workspace_a, _ = two_workspaces
    seen = {}

    def count(name):
        try:
            seen[name] = Bid.objects.count()
        finally:
            connection.close()  # back to the pool of one

    connection.close()
    with dbscope.workspace_scope(workspace_a.pk):
        for name, target in (("bare", count), ("carried", dbscope.carried(count))):
            thread = threading.Thread(target=target, args=(name,))
            thread.start()
            thread.join()
    assert seen == {"bare": 0, "carried": 1}


def test_rls_every_thread_of_the_application_carries_its_scope():
    """threading.Thread(target=...) in the application's code goes through dbscope.carried,
    except threads that never touch the database (named here)."""
    no_database = {"crawls/realtime.py"}  # the publisher: Redis only
    bare = []
    for path in [*ROOT.glob("crawls/**/*.py"), *ROOT.glob("notifications/**/*.py")]:
        bare += _bare_threads(path)
    for path in [*ROOT.glob("analytics/**/*.py"), *ROOT.glob("project/**/*.py")]:
        bare += _bare_threads(path)
    assert [b for b in bare if b.split(":")[0] not in no_database] == []


def _bare_threads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "threading.Thread":
            target = next((k.value for k in node.keywords if k.arg == "target"), None)
            if target is None or "dbscope.carried" not in ast.unparse(target):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_rls_stream_writer_script_takes_the_system_scope(source_a, tmp_path, app_role):
    with dbscope.system_scope():
        crawl = services.crawl_start(source=source_a, workers=0)
    writer = Program(
        python("-m", "bench.stream_writer", "--crawl", str(crawl.pk), "--count", "3", "--final"),
        env=app_env(),
        log=tmp_path / "writer.log",
    )
    assert writer.proc.wait(timeout=60) == 0, writer.output()
    with dbscope.system_scope():
        assert CrawlEvent.objects.filter(crawl=crawl).count() == 1 + 3  # queued, then 3


# --- The crawl's store -------------------------------------------------------------------------


def test_rls_store_plain_cursor_reads_in_the_tasks_scope(two_workspaces, source_a, app_role):
    """The store reads the batch's stored bids through a plain psycopg cursor (no execute
    wrapper): on a connection back from the pool with another scope on it, it must still see
    its own workspace's bids, or it stores them again (the compose test's 62 bids for 51)."""
    workspace_a, workspace_b = two_workspaces
    with dbscope.system_scope():
        stored = Bid.objects.get(source=source_a)
    with dbscope.workspace_scope(workspace_b.pk):
        assert Bid.objects.count() == 1  # the pool's one connection now holds B's scope
    connection.close()
    with dbscope.workspace_scope(workspace_a.pk), transaction.atomic():
        heads = store_sql.heads_lock(source_a.pk, [bytes(stored.url_hash)])  # its first statement
    assert [head.id for head in heads.values()] == [stored.pk]


def test_rls_every_task_has_its_scope():
    """A task in neither dbscope list runs with no scope and sees nothing (the import job did)."""
    import crawls.tasks  # noqa: F401
    import notifications.tasks  # noqa: F401
    from project.celery import app

    names = {name for name in app.tasks if not name.startswith("celery.")}
    assert "crawls.import_run" in names
    assert names - set(dbscope.TASK_ROWS) - dbscope.TASK_SYSTEM == set()


def test_rls_transaction_control_statements_come_first(two_workspaces, app_role):
    """SET TRANSACTION must be the transaction's first statement: no set_config before it
    (manage.py crawl_rebuild reads in REPEATABLE READ)."""
    workspace_a, _ = two_workspaces
    with dbscope.workspace_scope(workspace_a.pk), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute("SHOW transaction_isolation")
            assert cursor.fetchone() == ("repeatable read",)
        assert Bid.objects.count() == 1
