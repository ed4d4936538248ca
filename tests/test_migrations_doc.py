"""docs/migrations.md has one section per migration of our apps, each saying why, what, how to
verify and how safe it is live; a migration without one (or a section without a migration) fails
here with the heading to add."""

from __future__ import annotations

import re
from pathlib import Path

from tests.processes import BASE_DIR
from tests.test_migrations import OUR_APPS

DOC = Path(BASE_DIR) / "docs" / "migrations.md"
ITEMS = ("- **Why:**", "- **Changes:**", "- **Verify:**", "- **Live:**")
HEADING = re.compile(r"^### (\w+)\.(\w+)$", re.MULTILINE)
FENCED = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)  # the doc's own example


def migration_files() -> list[str]:
    return sorted(
        f"{app}.{path.stem}"
        for app in OUR_APPS
        for path in (Path(BASE_DIR) / app / "migrations").glob("[0-9][0-9][0-9][0-9]_*.py")
    )


def doc_sections(text: str) -> dict[str, str]:
    """Each `### app.migration` heading with the text up to the next heading."""
    text = FENCED.sub("", text)
    found = list(HEADING.finditer(text))
    ends = [m.start() for m in found[1:]] + [len(text)]
    return {f"{m[1]}.{m[2]}": text[m.end() : end] for m, end in zip(found, ends, strict=True)}


def template(name: str) -> str:
    app, migration = name.split(".")
    number = migration.split("_")[0]
    return (
        f"### {name}\n"
        "- **Why:** <the issue or feature that needed it>\n"
        "- **Changes:** <tables, columns, indexes, constraints, data>\n"
        f"- **Verify:** `manage.py sqlmigrate {app} {number}`; <a query that shows it>\n"
        "- **Live:** <locks and how long, rewrite or scan, CONCURRENTLY or not, cost at 1M bids>"
    )


def coverage_problems(text: str, files: list[str]) -> list[str]:
    """What docs/migrations.md (as `text`) lacks for `files`, each with what to do about it."""
    sections = doc_sections(text)
    problems = []
    missing = [name for name in files if name not in sections]
    if missing:
        problems.append(
            f"docs/migrations.md has no section for {', '.join(missing)}; add, under its app's "
            "heading and in order:\n\n" + "\n\n".join(template(name) for name in missing)
        )
    stale = sorted(set(sections) - set(files))
    if stale:
        problems.append(
            f"docs/migrations.md has sections for migrations that do not exist: "
            f"{', '.join(stale)} (renamed or renumbered? rename the heading to the file's name)"
        )
    return problems


def test_every_migration_of_our_apps_has_a_section_in_docs_migrations_md():
    files = migration_files()
    assert len(files) >= 16  # crawls 0001-0011, notifications 0001-0004, analytics 0001
    problems = coverage_problems(DOC.read_text(), files)
    assert not problems, "\n\n".join(problems)


def test_every_section_of_docs_migrations_md_says_why_what_how_to_verify_and_live_safety():
    sections = doc_sections(DOC.read_text())
    incomplete = {
        name: [item for item in ITEMS if item not in body] for name, body in sections.items()
    }
    incomplete = {name: lacking for name, lacking in incomplete.items() if lacking}
    assert not incomplete, f"sections of docs/migrations.md lacking items: {incomplete}"
    lacking_sqlmigrate = [name for name, body in sections.items() if "sqlmigrate" not in body]
    assert not lacking_sqlmigrate, f"no `manage.py sqlmigrate` in: {lacking_sqlmigrate}"


def test_docs_migrations_md_sections_follow_the_order_of_the_files_in_each_app():
    names = list(doc_sections(DOC.read_text()))
    for app in OUR_APPS:
        mine = [name for name in names if name.startswith(f"{app}.")]
        assert mine == sorted(mine), f"{app}'s sections are out of order: {mine}"


def test_the_check_names_a_missing_migration_with_the_heading_to_add():
    text = DOC.read_text()
    files = [*doc_sections(text), "notifications.0005_i15_example"]  # whatever the tree holds
    text = text.replace("### crawls.0006_crawl_revivals\n", "### crawls.0006_old\n")
    missing, stale = coverage_problems(text, files)
    assert missing.startswith(
        "docs/migrations.md has no section for crawls.0006_crawl_revivals, "
        "notifications.0005_i15_example;"
    )
    assert "### notifications.0005_i15_example\n- **Why:**" in missing
    assert "`manage.py sqlmigrate notifications 0005`" in missing
    assert "that do not exist: crawls.0006_old" in stale
