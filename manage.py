#!/usr/bin/env python
"""Django's command-line utility for Forest.

Before Django loads, project.runtime.bootstrap() provides DATABASE_URL and REDIS_URL: the
embedded PostgreSQL and Redis under ./var/ (started, or reused when up) unless they are set.
"""

import os
import sys

# Commands that change the schema connect as the owner of the tables (DATABASE_OWNER_URL, when
# given); everything else as the application's role (DATABASE_URL). docs/tenancy.md.
OWNER_COMMANDS = frozenset({"migrate", "dbshell"})


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from project import runtime  # noqa: PLC0415 - nothing of Django before the bootstrap

    runtime.bootstrap()
    if len(sys.argv) > 1 and sys.argv[1] in OWNER_COMMANDS:
        os.environ["FOREST_DB_AS_OWNER"] = "1"
    from project import dbscope  # noqa: PLC0415 - ditto

    # A command is maintenance: it sees every workspace (the system scope, docs/tenancy.md).
    # Requests that a command serves (runserver) run in threads of their own, scoped each.
    dbscope.set_scope(dbscope.SYSTEM)
    from django.core.management import execute_from_command_line  # noqa: PLC0415 - ditto

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
