"""Personas (owner, teammate, viewer, outsider) and the real programs the suite shares."""

from __future__ import annotations

import contextlib
import copy
import os
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import override_settings

from crawls import services
from crawls.api.throttles import limiter
from crawls.demo.board import BoardConfig
from crawls.models import Membership
from project import dbscope, runtime, staticfiles
from project.celery import app as celery_app
from tests import clients, crawling, factories, outages, processes
from tests.processes import (
    Program,
    database_url,
    http_get,
    http_status,
    program_env,
    python,
    start_daphne,
    wait_until,
)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Personas are made in almost every test: don't spend PBKDF2's 1M rounds on each."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(scope="session", autouse=True)
def _static_files():
    """Pages render {% static %} through the manifest storage, as in production: collected
    again when a static file changed (a missing entry fails every page)."""
    staticfiles.static_collect_if_stale()


@pytest.fixture(scope="session", autouse=True)
def _record_responses():
    """Note every API response the suite produces (tests/responses.py)."""
    with override_settings(MIDDLEWARE=["tests.responses.Recorder", *settings.MIDDLEWARE]):
        yield


_deselected: list = []  # by -k / -m: the run is not the whole suite


def pytest_deselected(items):
    _deselected.extend(items)


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected
def pytest_collection_modifyitems(session, config, items):
    """Tests that wait for work running beside the suite (marker late) run after the others;
    checks of what the whole suite did (marker after_everything) run after every other test,
    and only in a run of the whole suite: in a partial run they are deselected, not skipped."""
    late = [item for item in items if item.get_closest_marker("late")]
    last = [item for item in items if item.get_closest_marker("after_everything")]
    for item in late + last:
        items.remove(item)
    items.extend(late)
    every_module = {path.name for path in Path(__file__).parent.glob("test_*.py")}
    whole = (
        not _deselected
        and every_module <= {item.path.name for item in items}
        and not any("::" in arg for arg in config.args)
    )
    if whole:
        items.extend(last)
    elif last:
        config.hook.pytest_deselected(items=last)


# FOREST_TEST_RLS=1: the suite held to row-level security (docs/tenancy.md). The test database is
# made and migrated as the owner (the server's superuser); then every connection of the tests and
# of the programs they start logs in as the application's role with DATABASE_RLS on. Test bodies
# (and fixtures) run in the system scope, as a management command does; requests, consumers and
# tasks narrow it as they do in production.
TEST_RLS = os.environ.get("FOREST_TEST_RLS", "").strip().lower() in {"1", "on", "true", "yes"}


@pytest.fixture(scope="session", autouse=True)
def _held_to_rls(request):
    if not TEST_RLS:
        yield
        return
    request.getfixturevalue("django_db_setup")
    with request.getfixturevalue("django_db_blocker").unblock():
        with override_settings(DATABASE_APP_ROLE=runtime.APP_ROLE):
            dbscope.grant_app_role("default")
        # The plan tests ANALYZE as the application's role: MAINTAIN exists from PostgreSQL 17
        # (on an older server those tests plan without fresh statistics).
        if connection.pg_version >= 170000:
            with connection.cursor() as cursor:
                cursor.execute(f"GRANT MAINTAIN ON crawls_bid TO {runtime.APP_ROLE}")
        for conn in connections.all():
            conn.close()
        connection.close_pool()
        owner = processes.owner_role = connection.settings_dict["USER"]
        connection.settings_dict["USER"] = runtime.APP_ROLE
    saved = os.environ.get("DATABASE_RLS")
    os.environ["DATABASE_RLS"] = "on"  # the programs the tests start (tests.processes)
    dbscope.forget_roles()
    with override_settings(DATABASE_RLS=True):
        yield
    connection.close()
    connection.close_pool()
    connection.settings_dict["USER"] = owner
    processes.owner_role = None
    os.environ.pop("DATABASE_RLS") if saved is None else os.environ.update(DATABASE_RLS=saved)


@pytest.fixture(autouse=True)
def _system_scope():
    """Test bodies run in the system scope when the suite is held to RLS (FOREST_TEST_RLS)."""
    if not TEST_RLS:
        yield
        return
    with dbscope.system_scope():
        yield


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Each test starts with no request counted (the throttles' keys only)."""
    limiter().storage.reset()


@pytest.fixture(autouse=True)
def _worker_quiet_before_flush(request):
    """A test with the real worker ends when the worker's work is done, not only the crawl.

    After a crawl's final event the worker still hands the event log to the subscribers, each
    event in a transaction that reads several tables; the database flush at the test's end
    (TRUNCATE of every table) could deadlock with one. The wait is bounded: a test that
    stopped or killed the worker goes on after it.
    """
    if "celery_worker" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("_django_db_helper")  # set up before us: flushed after we wait
    yield
    with contextlib.suppress(TimeoutError):
        wait_until(crawling.worker_caught_up, what="the worker's subscribers", timeout=20)


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("olivia", password="pw-olivia-1")


@pytest.fixture
def teammate(db):
    return get_user_model().objects.create_user("tomas", password="pw-tomas-1")


@pytest.fixture
def viewer(db):
    return get_user_model().objects.create_user("vera", password="pw-vera-1")


@pytest.fixture
def outsider(db):
    return get_user_model().objects.create_user("oscar", password="pw-oscar-1")


@pytest.fixture
def workspace_a(owner, teammate, viewer):
    """Olivia's workspace: Tomas is a member, Vera a viewer."""
    workspace = services.workspace_create(owner=owner, name="Seoul tenders")
    for user, role in ((teammate, Membership.Role.MEMBER), (viewer, Membership.Role.VIEWER)):
        services.membership_add(workspace=workspace, user=user, role=role, actor=owner)
    return workspace


@pytest.fixture
def workspace_b(outsider):
    """Oscar's workspace: nobody from workspace A is in it."""
    return services.workspace_create(owner=outsider, name="Busan notices")


@pytest.fixture
def api():
    """An anonymous APIClient; api(user) is another one signed in as `user`."""
    return clients.Api()


@pytest.fixture
def sent_tasks(monkeypatch):
    """The Celery tasks the code sends (instead of sending them)."""
    sent = []
    monkeypatch.setattr(celery_app, "send_task", lambda name, **kw: sent.append((name, kw["args"])))
    return sent


@pytest.fixture
def as_user(api):
    """as_user(user) → the `api` client, signed in with a session of `user`."""

    def login(user):
        api.force_login(user)
        return api

    return login


@pytest.fixture
def bearer():
    """bearer(user, workspace) → a client sending a new token (tests.clients.bearer)."""
    return clients.bearer


@pytest.fixture
def admin_user(workspace_a):
    """Ada, an admin of workspace A."""
    user = get_user_model().objects.create_user("ada", email="ada@example.org", password="pw-ada-1")
    factories.join(workspace=workspace_a, user=user, role=Membership.Role.ADMIN)
    return user


@pytest.fixture
def newcomer(db):
    """Nina, in no workspace yet."""
    return get_user_model().objects.create_user(
        "nina", email="Nina@Example.org", password="pw-nina-1"
    )


@pytest.fixture
def source_a(workspace_a):
    return factories.make_source(workspace_a, "Seoul board")


@pytest.fixture
def source_b(workspace_b):
    return factories.make_source(workspace_b, "Busan board")


@pytest.fixture
def scratch_database(django_db_setup):
    """An empty database of its own on the session's server, dropped afterwards."""
    name = f"forest_scratch_{uuid.uuid4().hex[:8]}"
    admin = database_url("postgres", owner=True)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real Celery worker process on the test database and the test Redis."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = Program(
        python("-m", "celery", "-A", "project", "worker", "-l", "INFO", "-c", "2", "-n", "test@%h"),
        env=program_env(),
        log=log,
    )
    worker.wait_until(
        lambda: bool(celery_app.control.ping(timeout=0.5, limit=1)), what="celery worker"
    )
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def daphne_server(django_db_setup, tmp_path_factory):
    """daphne serving project.asgi on the test database, as `make run` serves it."""
    server = start_daphne(program_env(), tmp_path_factory.mktemp("daphne") / "daphne.log")
    yield server
    server.stop()


# The session's demo board: 3 listing pages of 20 links (52 notices, a few of them missing,
# broken, flaky, slow or linked twice), served by `manage.py demo_board` like `make run` does.
BOARD_CONFIG = BoardConfig(listing_pages=3)


@pytest.fixture(scope="session")
def demo_board(tmp_path_factory):
    host, port = settings.DEMO_BOARD_ADDRESS.rsplit(":", 1)
    board = Program(
        python(
            "manage.py", "demo_board", "--host", host, "--port", port,
            "--listing-pages", str(BOARD_CONFIG.listing_pages),
        ),
        env=program_env(),
        log=tmp_path_factory.mktemp("board") / "board.log",
    )  # fmt: skip
    board.base_url = f"http://{settings.DEMO_BOARD_ADDRESS}"
    board.config = BOARD_CONFIG
    board.wait_until(lambda: http_status(f"{board.base_url}/robots.txt") == 200, what="board")
    yield board
    board.stop()


@pytest.fixture
def board(demo_board):
    """The demo board, back at epoch 0."""
    status, _ = http_get(f"{demo_board.base_url}/_control/epoch?set=0")
    assert status == 200
    return demo_board


@pytest.fixture
def demo_source(workspace_a, board):
    return services.demo_source_ensure(workspace=workspace_a, base_url=board.base_url)


@pytest.fixture
def isolated_queue(settings):
    """A queue of its own, so that only the workers a test starts take its crawl tasks."""
    settings.CRAWL_QUEUE = f"isolated-{uuid.uuid4().hex[:8]}"
    return settings.CRAWL_QUEUE


@pytest.fixture(scope="session", autouse=True)
def _outage_scenario(request, _static_files):
    """The outage scenario lasts minutes: it starts with the first test, beside the others,
    when the run holds its tests (tests/test_outages.py waits for it at the end)."""
    phases = [
        item.name.removeprefix("test_")
        for item in request.session.items
        if item.path.name == "test_outages.py"
    ]
    if phases:
        outages.scenario(phases)


# --- Row-level security (tests/test_rls*.py) ---------------------------------------------------


def _reconnect(**settings_changes):
    connection.close()
    connection.close_pool()
    connection.settings_dict.update(settings_changes)


@pytest.fixture
def app_role():
    """The default connection logs in as the application's role (not the owner, no BYPASSRLS),
    from a pool of one connection, with DATABASE_RLS on; the superuser again afterwards (the
    flush at the test's end truncates as the owner)."""
    with override_settings(DATABASE_APP_ROLE=runtime.APP_ROLE):
        dbscope.grant_app_role("default")
    saved = copy.deepcopy({k: connection.settings_dict[k] for k in ("USER", "OPTIONS")})
    options = copy.deepcopy(saved["OPTIONS"])
    options["pool"] = {**options["pool"], "min_size": 1, "max_size": 1}
    _reconnect(USER=runtime.APP_ROLE, OPTIONS=options)
    with override_settings(DATABASE_RLS=True):
        yield
    _reconnect(**saved)


@pytest.fixture
def two_workspaces(workspace_a, workspace_b, source_a, source_b):
    """A bid and a crawl in each of workspaces A and B (made by the owner, before the switch)."""
    for source in (source_a, source_b):
        factories.make_bid(source)
        factories.start_crawl(source)
    return workspace_a, workspace_b
