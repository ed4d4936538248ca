"""`manage.py ensure_admin`, `manage.py crawl` refusals and `manage.py run` (what `make run`
calls): its log format, its static files, its start-up announcement."""

import json
import os
import re
import signal

import psutil
import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from crawls.demo import board as demo_board
from crawls.demo.board import DEMO_RULES
from crawls.models import Crawl, Membership, Source
from project.management.commands.run import children_log_format
from project.staticfiles import static_collect_if_stale
from tests.factories import START, make_source
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


@pytest.mark.django_db
def test_crawl_command_refuses_in_one_line_when_the_workspace_is_busy(settings, workspace_a):
    settings.CRAWL_MAX_ACTIVE_PER_WORKSPACE = 1
    first, second = make_source(workspace_a, "One"), make_source(workspace_a, "Two")
    call_command("crawl", str(first.pk))
    with pytest.raises(CommandError) as refused:  # printed as one line, exit status 1
        call_command("crawl", str(second.pk))
    assert refused.value.returncode == 1
    assert "1 crawls queued or running, the most it may have" in str(refused.value)
    assert list(Crawl.objects.values_list("source", flat=True)) == [first.pk]


def test_run_children_log_text_at_a_terminal_and_json_elsewhere(monkeypatch, tmp_path, settings):
    settings.DEBUG = False
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    leader, follower = os.openpty()
    with open(follower, "w") as terminal, (tmp_path / "out.log").open("w") as file:
        assert children_log_format(terminal) == "text"
        assert children_log_format(file) == "json"
        monkeypatch.setenv("LOG_FORMAT", "json")  # set explicitly: it wins
        assert children_log_format(terminal) == "json"
    os.close(leader)


def test_static_files_are_collected_again_only_when_one_changed(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,  # the manifest without whitenoise's compression: the same decision
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    settings.STATIC_ROOT = tmp_path / "collected"
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "forest-test.css").write_text("a { color: green }")
    settings.STATICFILES_DIRS = [*settings.STATICFILES_DIRS, extra]
    assert static_collect_if_stale() is True
    manifest = settings.STATIC_ROOT / "staticfiles.json"
    assert "forest-test.css" in json.loads(manifest.read_text())["paths"]
    assert static_collect_if_stale() is False  # nothing changed: no collectstatic

    earlier = manifest.stat().st_mtime - 60  # as if forest-test.css changed since
    os.utime(manifest, (earlier, earlier))
    assert static_collect_if_stale() is True
    assert static_collect_if_stale() is False

    added = extra / "added.css"
    added.write_text("b { color: red }")
    os.utime(added, (0, 0))  # copied in with an old time: the manifest still lacks it
    assert static_collect_if_stale() is True
    assert "added.css" in json.loads(manifest.read_text())["paths"]


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
            DATABASE_OWNER_URL=database_url(scratch_database, owner=True),  # migrates
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
        with psycopg.connect(database_url(scratch_database, owner=True)) as conn:
            sources = conn.execute("SELECT name, kind, start_urls FROM crawls_source").fetchall()
        assert ("Demo board", "html", [f"http://{board}/notices"]) in sources  # ready to crawl
        # Beside it, a source of each other shape of the board: one of every kind.
        others = {
            "Demo JSON API": ("json", f"http://{board}{demo_board.API_PATH}"),
            "Demo XML service": ("xml", f"http://{board}{demo_board.XML_PATH}"),
            "Demo OCDS feed": ("ocds", f"http://{board}{demo_board.OCDS_RELEASES_PATH}"),
            "Demo eGov board": ("html", f"http://{board}{demo_board.EGOV_LIST_PATH}"),
        }
        assert {name: (kind, urls[0]) for name, kind, urls in sources if name in others} == others
        assert len(sources) == 1 + len(others)
        for name in ("web", "worker", "beat", "board"):
            assert re.search(rf"^\d\d:\d\d:\d\d {name}\s+\| ", out, re.MULTILINE), name
        # The URLs and the new admin's password come again after the worker's start-up lines.
        announced = out.rindex("Forest is running")
        assert out.index("ready.") < announced
        assert re.search(r"password: \S+", out[announced:])
        # Its output is a file, not a terminal: the children log JSON lines.
        assert re.search(r'^\d\d:\d\d:\d\d worker\s+\| \{"time": ', out, re.MULTILINE)

        family = psutil.Process(program.proc.pid).children(recursive=True)
        assert len(family) >= 8  # honcho readers, daphne, worker + its pool, beat, board
        program.signal(signal.SIGINT)  # what Ctrl-C sends
        assert program.proc.wait(60) == 0
        _, alive = psutil.wait_procs(family, timeout=10)
        assert alive == [], f"left running: {alive}"
    finally:
        program.stop()


RULES_WITH_SECRET = {**DEMO_RULES, "items": ['a[data-key="{secret.service_key}"]']}


@pytest.mark.django_db
def test_crawl_command_one_off_takes_a_kind_and_secrets_the_environment_first(
    workspace_a, tmp_path, monkeypatch, capsys, caplog, sent_tasks
):
    caplog.set_level("DEBUG")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES_WITH_SECRET))
    monkeypatch.setenv("FOREST_SECRET_SERVICE_KEY", "from-the-env-123")
    monkeypatch.setenv("FOREST_SECRET_OTHER", "other-456")
    call_command(
        "crawl", "--url", START, "--kind", "html", "--rules", str(rules),
        "--secret", "service_key=from-the-command-line", "--secret", "extra=x=y=z",
        "--secrets-env", "FOREST_SECRET_", "--workspace", workspace_a.slug,
    )  # fmt: skip
    source = Source.objects.get(name=f"one-off: {START}")
    assert source.kind == "html"
    assert source.secrets == {
        "service_key": "from-the-env-123", "other": "other-456", "extra": "x=y=z",
    }  # fmt: skip
    out = capsys.readouterr()
    shown = out.out + out.err + caplog.text
    for value in ("from-the-env-123", "other-456", "from-the-command-line"):
        assert value not in shown
    assert Crawl.objects.filter(source=source).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "rules", "arguments", "mentions"),
    [
        ("html", {"items": [1], "follow": "nav a"}, [], "rules: items[0]:"),
        ("html", RULES_WITH_SECRET, [], "secrets: the rules use {secret.service_key}"),
        ("html", DEMO_RULES, ["--secret", "no-equals-sign"], "--secret 'no-equals-sign'"),
        ("html", DEMO_RULES, ["--secrets-env", "NO_SUCH_PREFIX_"], "no variable starts with"),
        # Needs the JSON API rules' parser (crawls.engine.api_rules, another helper).
        ("json", DEMO_RULES, [], "rules: "),
    ],
)
def test_crawl_command_refuses_bad_rules_by_path_with_exit_status_2(
    workspace_a, tmp_path, kind, rules, arguments, mentions
):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    with pytest.raises(CommandError) as refused:
        call_command("crawl", "--url", START, "--kind", kind, "--rules", str(path), *arguments)
    assert refused.value.returncode == 2
    assert mentions in str(refused.value)
    assert not Crawl.objects.exists()


def test_crawl_command_refuses_an_unknown_kind(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text("{}")
    with pytest.raises(CommandError) as refused:
        call_command("crawl", "--url", START, "--kind", "csv", "--rules", str(path))
    assert "invalid choice: 'csv'" in str(refused.value)
