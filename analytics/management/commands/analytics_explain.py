"""manage.py analytics_explain: EXPLAIN (ANALYZE, BUFFERS) of every analytics query and of the
bids list queries (default ordering, -views, -amount, a department filter, a search)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from analytics import explain, services
from crawls.models import Bid, Membership


class Command(BaseCommand):
    help = "Print the plans of the analytics queries and of the bids list queries."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", type=int, help="Workspace id (default: the largest).")

    def handle(self, *args, workspace=None, **options):
        workspace_id = workspace or explain.largest_workspace()
        member = Membership.objects.filter(workspace_id=workspace_id).select_related("user")
        member = member.first()
        if member is None:
            raise CommandError("No workspace with bids and a member to read them as.")
        client = Client(HTTP_HOST="localhost")
        client.force_login(member.user)  # a session: nothing written to the crawls tables
        paths = [
            (title, f"{path}{'&' if '?' in path else '?'}workspace={workspace_id}", table)
            for title, path, table in explain.ANALYTICS_PATHS
        ]
        paths += explain.bid_list_paths(workspace_id=workspace_id)
        for title, path, table in paths:
            self._explain(client, title, path, table)
        self._explain_batch(workspace_id)

    def _explain_batch(self, workspace_id: int) -> None:
        """The read model's recompute of a 500-bid crawl.items batch, rolled back."""
        ids = list(
            Bid.objects.in_workspace(workspace_id)
            .order_by("-id")
            .values_list("id", flat=True)[:500]
        )
        sql, params = services.batch_statement(
            workspace_id=workspace_id, crawl_id=0, new=ids, changed=[]
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            transaction.set_rollback(True)
        self.stdout.write(f"== read model: one crawl.items batch of 500 new bids\n{plan}\n\n")

    def _explain(self, client: Client, title: str, path: str, table: str) -> None:
        with (
            override_settings(ANALYTICS_CACHE_SECONDS=0),
            CaptureQueriesContext(connection) as queries,
        ):
            response = client.get(path)
        if response.status_code != 200:
            raise CommandError(f"{title}: {path} answered {response.status_code}")
        statement = max((q["sql"] for q in queries.captured_queries if table in q["sql"]), key=len)
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        self.stdout.write(f"== {title}: GET {path}\n{statement}\n\n{plan}\n\n")
