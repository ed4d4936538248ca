"""manage.py analytics_rebuild [--workspace ID]: the read model recomputed from the bids."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from analytics import services
from crawls.models import Workspace


class Command(BaseCommand):
    help = "Rebuild the analytics read model (DepartmentDay) from crawls_bid."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--workspace", type=int, help="Only this workspace (its id).")

    def handle(self, *args: Any, workspace: int | None = None, **options: Any) -> None:
        ids = list(Workspace.objects.order_by("id").values_list("id", flat=True))
        if workspace is not None:
            if workspace not in ids:
                raise CommandError(f"No workspace {workspace}.")
            ids = [workspace]
        rows = services.summary_rebuild(workspace_ids=ids)
        self.stdout.write(f"Rebuilt {rows} rows for {len(ids)} workspace(s).")
