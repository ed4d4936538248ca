"""mypy against a baseline of modules allowed to keep their errors (run it as scripts/mypy).

Every module of the checked apps is strict ([tool.mypy] in pyproject.toml) except those listed
in mypy-baseline.txt, each with the number of errors it may keep. The check fails on an error in
a module not listed, or on more errors than a listed module may keep; a listed module with fewer
is reported so that the baseline shrinks. --update-baseline writes the current counts, keeping
each line's note; a module listed for the first time gets a note saying so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "mypy-baseline.txt"
HEADER = """\
# Modules that may keep mypy errors, with how many: the baseline, which only shrinks.
# Every other module of crawls, notifications, analytics and project is checked strictly.
# Written by `scripts/mypy --update-baseline` (it keeps each line's note); `make lint` runs
# `scripts/mypy`, which fails on errors outside this list or above a module's count.
"""
ERROR = re.compile(r"^(?P<path>[^:\s]+\.pyi?):\d+(?::\d+)?: error: ")


def module_of(path: str) -> str:
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def run_mypy() -> dict[str, list[str]]:
    """Each module's error lines (mypy's exit status 2, a crash or bad usage, stops us)."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"mypy: exited with {done.returncode}")
    errors: dict[str, list[str]] = defaultdict(list)
    for line in done.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            errors[module_of(match["path"])].append(line)
    if done.returncode == 1 and not errors:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit("mypy: failed without an error line this script understands")
    return errors


def read_baseline() -> dict[str, tuple[int, str]]:
    """module -> (errors it may keep, its note)."""
    entries: dict[str, tuple[int, str]] = {}
    if not BASELINE.exists():
        return entries
    for raw in BASELINE.read_text().splitlines():
        line, _, note = raw.partition("#")
        if not line.strip():
            continue
        module, count = line.split()
        entries[module] = (int(count), note.strip())
    return entries


def update(errors: dict[str, list[str]], baseline: dict[str, tuple[int, str]]) -> int:
    today = dt.date.today().isoformat()  # noqa: DTZ011 - a note for people, the local date
    counts = Counter({module: len(lines) for module, lines in errors.items()})
    width = max((len(module) for module in counts), default=0) + 6
    lines = []
    for module in sorted(counts):
        count, note = counts[module], baseline.get(module, (0, ""))[1]
        if module not in baseline:
            if BASELINE.exists():  # not on the first run, when every module is new
                note = f"new on {today}: not in the baseline before; make it pass strict"
            print(f"mypy baseline: added {module} ({count} errors)")
        elif count > baseline[module][0]:
            print(f"mypy baseline: {module} grew from {baseline[module][0]} to {count} errors")
        lines.append(f"{module} {count}".ljust(width) + (f"# {note}" if note else "").rstrip())
    for module in sorted(set(baseline) - set(counts)):
        print(f"mypy baseline: removed {module} (strict-clean now)")
    BASELINE.write_text(HEADER + "".join(line.rstrip() + "\n" for line in lines))
    print(f"mypy baseline: {len(counts)} modules, {sum(counts.values())} errors")
    return 0


def check(errors: dict[str, list[str]], baseline: dict[str, tuple[int, str]]) -> int:
    failed = False
    for module in sorted(errors):
        allowed = baseline.get(module, (0, ""))[0]
        if len(errors[module]) > allowed:
            failed = True
            print("\n".join(errors[module]))
            print(f"mypy: {module} has {len(errors[module])} errors, the baseline allows {allowed}")
    shrinkable = [m for m, (count, _) in baseline.items() if len(errors.get(m, ())) < count]
    if shrinkable:
        print(
            f"mypy: fewer errors than the baseline in {', '.join(sorted(shrinkable))}:"
            " shrink it with scripts/mypy --update-baseline"
        )
    if failed:
        print(
            "mypy: fix them; if you must (a legacy module moved or split), run"
            " scripts/mypy --update-baseline and say why in the commit"
        )
        return 1
    total = sum(len(lines) for lines in errors.values())
    print(f"mypy: strict outside the baseline; {total} baseline errors in {len(errors)} modules")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--update-baseline", action="store_true", help="write mypy-baseline.txt from this run"
    )
    args = parser.parse_args()
    errors, baseline = run_mypy(), read_baseline()
    return update(errors, baseline) if args.update_baseline else check(errors, baseline)


if __name__ == "__main__":
    raise SystemExit(main())
