"""scripts/mypy: strict outside a baseline of modules that may keep their errors; the baseline
is rewritten by --update-baseline and works on a fresh clone (no DATABASE_URL...)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("mypy_baseline", ROOT / "scripts/mypy_baseline.py")
assert _spec is not None
assert _spec.loader is not None
mypy_baseline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mypy_baseline)


def errors_of(**counts: int) -> dict[str, list[str]]:
    return {
        module.replace("__", "."): [f"{module}.py:{n}: error: x  [misc]" for n in range(count)]
        for module, count in counts.items()
    }


@pytest.fixture
def baseline_file(tmp_path, monkeypatch):
    path = tmp_path / "mypy-baseline.txt"
    monkeypatch.setattr(mypy_baseline, "BASELINE", path)
    return path


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("crawls/views.py", "crawls.views"),
        ("crawls/services/__init__.py", "crawls.services"),
        ("crawls/engine/run.py", "crawls.engine.run"),
    ],
)
def test_mypy_baseline_module_of(path, module):
    assert mypy_baseline.module_of(path) == module


def test_mypy_baseline_check_fails_outside_the_baseline_and_above_a_count(capsys):
    baseline = {"crawls.views": (2, "")}
    assert mypy_baseline.check(errors_of(crawls__views=2), baseline) == 0
    assert mypy_baseline.check(errors_of(crawls__views=3), baseline) == 1
    assert "crawls.views has 3 errors, the baseline allows 2" in capsys.readouterr().out
    assert mypy_baseline.check(errors_of(crawls__views=1, analytics__new=1), baseline) == 1
    out = capsys.readouterr().out
    assert "analytics.new has 1 errors, the baseline allows 0" in out
    assert "fewer errors than the baseline in crawls.views" in out


def test_mypy_baseline_update_keeps_notes_and_marks_new_modules(baseline_file):
    assert mypy_baseline.update(errors_of(crawls__views=2, crawls__old=1), {}) == 0
    first = mypy_baseline.read_baseline()
    assert first == {"crawls.old": (1, ""), "crawls.views": (2, "")}  # first run: no notes
    baseline_file.write_text(baseline_file.read_text().replace("views 2", "views 2  # split me"))
    # crawls.old passes now, crawls.views shrank, crawls.services.bids is new after a merge.
    current = errors_of(crawls__views=1, crawls__services__bids=4)
    mypy_baseline.update(current, mypy_baseline.read_baseline())
    after = mypy_baseline.read_baseline()
    assert set(after) == {"crawls.views", "crawls.services.bids"}
    assert after["crawls.views"] == (1, "split me")
    assert after["crawls.services.bids"][0] == 4
    assert after["crawls.services.bids"][1].startswith("new on ")
    assert mypy_baseline.check(current, after) == 0


@pytest.mark.slow
def test_scripts_mypy_passes_on_a_fresh_clone_environment():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}
    }
    done = subprocess.run(
        [str(ROOT / "scripts/mypy")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mypy: strict outside the baseline" in done.stdout
