#!/usr/bin/env python
"""Django's command-line utility for Forest.

Before Django loads, project.runtime.bootstrap() provides DATABASE_URL and REDIS_URL: the
embedded PostgreSQL and Redis under ./var/ (started, or reused when up) unless they are set.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from project import runtime  # noqa: PLC0415 - nothing of Django before the bootstrap

    runtime.bootstrap()
    from django.core.management import execute_from_command_line  # noqa: PLC0415 - ditto

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
