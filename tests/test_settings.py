"""Settings come from the environment only; production values pass `check --deploy`."""

import os
import secrets
import subprocess

import pytest

from tests.processes import BASE_DIR, program_env, python

PRODUCTION = {
    "DEBUG": "false",
    "HTTPS": "true",
    "ALLOWED_HOSTS": "forest.example.org",
    "CSRF_TRUSTED_ORIGINS": "https://forest.example.org",
}


def run(args, env, timeout=60):
    return subprocess.run(
        args, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def env_without(*names, **extra):
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(extra)
    return env


@pytest.mark.django_db
def test_check_deploy_reports_nothing_with_production_values():
    env = program_env(SECRET_KEY=secrets.token_urlsafe(64), **PRODUCTION)
    result = run(python("manage.py", "check", "--deploy", "--fail-level", "WARNING"), env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db
def test_check_deploy_warns_when_https_is_off():
    env = program_env(SECRET_KEY=secrets.token_urlsafe(64), **{**PRODUCTION, "HTTPS": "false"})
    result = run(python("manage.py", "check", "--deploy", "--fail-level", "WARNING"), env)
    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout  # SECURE_SSL_REDIRECT


IMPORT_SETTINGS = "import django.conf as c; c.settings.DATABASES; print(c.settings.DEBUG)"


def test_importing_settings_without_database_url_fails_loudly_and_starts_nothing(tmp_path):
    env = env_without("DATABASE_URL", FOREST_VAR_DIR=str(tmp_path), SECRET_KEY="x" * 50)
    env["DJANGO_SETTINGS_MODULE"] = "project.settings"
    result = run(python("-c", IMPORT_SETTINGS), env)
    assert result.returncode == 1
    assert "DATABASE_URL" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no server started, nothing written


def test_settings_refuse_a_database_that_is_not_postgresql():
    env = program_env(DATABASE_URL="sqlite:///forest.db", DJANGO_SETTINGS_MODULE="project.settings")
    result = run(python("-c", IMPORT_SETTINGS), env)
    assert result.returncode == 1
    assert "must point at PostgreSQL" in result.stderr


def test_secret_key_is_required():
    env = env_without("SECRET_KEY", DJANGO_SETTINGS_MODULE="project.settings")
    result = run(python("-c", IMPORT_SETTINGS), env)
    assert result.returncode == 1
    assert "SECRET_KEY" in result.stderr


def test_debug_is_off_unless_asked_for():
    env = env_without("DEBUG", DJANGO_SETTINGS_MODULE="project.settings")
    assert run(python("-c", IMPORT_SETTINGS), env).stdout.strip() == "False"
    env["DEBUG"] = "true"
    assert run(python("-c", IMPORT_SETTINGS), env).stdout.strip() == "True"
