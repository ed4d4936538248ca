"""Migrations match the models, and apply forward and back to zero on a scratch database."""

import subprocess

import psycopg
import pytest
from django.core.management import call_command

from tests.processes import BASE_DIR, database_url, program_env, python

OUR_APPS = ["analytics", "notifications", "crawls"]


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def manage(*args, database):
    result = subprocess.run(
        python("manage.py", *args),
        cwd=BASE_DIR,
        env=program_env(DATABASE_URL=database_url(database)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def tables(database):
    with psycopg.connect(database_url(database)) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


@pytest.mark.slow
def test_migrations_apply_forward_back_to_zero_and_forward_again(scratch_database):
    manage("migrate", "--noinput", database=scratch_database)
    assert {"crawls_workspace", "crawls_membership"} <= tables(scratch_database)
    for app in OUR_APPS:
        manage("migrate", app, "zero", "--noinput", database=scratch_database)
    assert not {t for t in tables(scratch_database) if t.startswith(tuple(OUR_APPS))}
    manage("migrate", "--noinput", database=scratch_database)
    assert "crawls_membership" in tables(scratch_database)
