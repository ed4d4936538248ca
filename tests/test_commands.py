"""`manage.py ensure_admin` and `manage.py run` (what `make run` calls)."""

import re
import signal

import psutil
import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from crawls.models import Membership
from tests.processes import Program, database_url, free_port, http_get, program_env, python


@pytest.mark.django_db
def test_ensure_admin_creates_one_admin_with_a_generated_password(capsys, monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    call_command("ensure_admin")
    out = capsys.readouterr().out
    password = re.search(r"password: (\S+)", out).group(1)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password(password)
    assert Membership.objects.get(user=admin).role == Membership.Role.OWNER

    call_command("ensure_admin")
    again = capsys.readouterr().out
    assert "nothing to do" in again
    assert "password" not in again
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
def test_ensure_admin_takes_credentials_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root-of-forest")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "from-the-env-42")
    call_command("ensure_admin")
    assert "password:" not in capsys.readouterr().out
    assert get_user_model().objects.get(username="root-of-forest").check_password("from-the-env-42")


@pytest.mark.slow
def test_run_serves_forest_and_ctrl_c_leaves_nothing_running(scratch_database, settings, tmp_path):
    port = free_port()
    # Its own Redis database, so its worker never takes the test worker's tasks.
    redis_url = settings.REDIS_URL.rsplit("/", 1)[0] + "/13"
    board = f"127.0.0.1:{free_port()}"
    program = Program(
        python("manage.py", "run"),
        env=program_env(
            DATABASE_URL=database_url(scratch_database),
            REDIS_URL=redis_url,
            PORT=str(port),
            DEMO_BOARD_ADDRESS=board,
        ),
        log=tmp_path / "run.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        program.wait_until(
            lambda: http_get(f"{base}/readyz")[0] == 200, what="make run", timeout=300
        )
        program.wait_until(lambda: "API docs" in program.output(), what="the URLs", timeout=30)
        assert http_get(f"{base}/admin/login/")[0] == 200
        assert http_get(f"{base}/static/admin/css/base.css")[0] == 200
        assert http_get(f"{base}/api/docs/")[0] == 200
        out = program.output()
        assert "Created admin user 'admin'" in out
        for url in (f"{base}/", f"{base}/admin/", f"{base}/api/docs/"):
            assert url in out
        assert http_get(f"http://{board}/notices")[0] == 200
        with psycopg.connect(database_url(scratch_database)) as conn:
            start_urls = conn.execute("SELECT start_urls FROM crawls_source").fetchall()
        assert start_urls == [([f"http://{board}/notices"],)]  # the demo source, ready to crawl
        for name in ("web", "worker", "beat", "board"):
            assert re.search(rf"^\d\d:\d\d:\d\d {name}\s+\| ", out, re.MULTILINE), name

        family = psutil.Process(program.proc.pid).children(recursive=True)
        assert len(family) >= 8  # honcho readers, daphne, worker + its pool, beat, board
        program.signal(signal.SIGINT)  # what Ctrl-C sends
        assert program.proc.wait(60) == 0
        _, alive = psutil.wait_procs(family, timeout=10)
        assert alive == [], f"left running: {alive}"
    finally:
        program.stop()
