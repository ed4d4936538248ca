"""`manage.py crawl SOURCE [--wait]` and `manage.py crawl --url URL [--kind KIND] --rules FILE
[--secrets-env PREFIX] [--secret NAME=VALUE]`."""

import json
import os
import sys
import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from crawls import events, services
from crawls.engine import kinds
from crawls.models import Crawl, CrawlEvent, Source, Workspace

BAR = 30
# --wait's exit status: 0 succeeded, 1 failed or cancelled (or refused), 2 bad arguments or
# rules, 3 degraded: completed, but it extracted worse than its source's recent crawls.
EXIT_DEGRADED = 3


class Command(BaseCommand):
    help = (
        "Start a crawl of a source (by id or name), or a one-off crawl of --url with --rules. "
        "With --wait, follow its events with a progress bar until it finishes; exit status 0 "
        "succeeded, 1 failed or cancelled, 3 degraded (docs/quality.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", nargs="?", help="source id or name")
        parser.add_argument("--workspace", help="workspace slug (when names are ambiguous)")
        parser.add_argument("--url", help="one-off crawl starting at this URL")
        parser.add_argument("--rules", type=Path, help="JSON file of extraction rules (--url)")
        parser.add_argument(
            "--kind", choices=kinds.KINDS, default=kinds.HTML, help="the rules' kind (--url)"
        )
        parser.add_argument(
            "--secrets-env",
            metavar="PREFIX",
            help="secrets from the environment (--url): PREFIXSERVICE_KEY=... is the secret "
            "service_key. Preferred to --secret, whose values other users of the machine can "
            "read in the process list; it wins over --secret for a name given both ways",
        )
        parser.add_argument(
            "--secret",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a secret the rules use as {secret.NAME} (--url; repeatable)",
        )
        parser.add_argument("--wait", action="store_true", help="follow progress until done")
        parser.add_argument("--workers", type=int, help="worker tasks for this crawl")

    def handle(self, *args, source, workspace, url, rules, wait, workers, **options):
        if bool(source) == bool(url):
            raise CommandError("give a SOURCE or --url (not both)")
        try:
            target = (
                self._one_off(url, rules, workspace, options)
                if url
                else self._source(source, workspace)
            )
            crawl = services.crawl_start(source=target, trigger="command", workers=workers)
        except (services.CrawlConflict, services.Backpressure) as refused:
            # One line and exit status 1, as the API answers 409 / 429.
            raise CommandError(str(refused)) from refused
        except ValidationError as exc:
            # Bad rules, kind or secrets: every problem by path, exit status 2 (a usage error).
            raise CommandError(_problems(exc), returncode=2) from exc
        self.stdout.write(f"crawl {crawl.pk} of {target.name!r} queued")
        if wait:
            status = self._follow(crawl)
            if status == Crawl.Status.DEGRADED:
                sys.exit(EXIT_DEGRADED)  # completed, but worse than its recent crawls
            if status != Crawl.Status.SUCCEEDED:
                sys.exit(1)

    def _workspace(self, slug):
        workspaces = Workspace.objects.all()
        if slug:
            workspaces = workspaces.filter(slug=slug)
        found = list(workspaces[:2])
        if len(found) != 1:
            raise CommandError("name the workspace with --workspace SLUG")
        return found[0]

    def _source(self, ref, slug):
        sources = Source.objects.all()
        if slug:
            sources = sources.filter(workspace__slug=slug)
        sources = sources.filter(pk=int(ref)) if ref.isdigit() else sources.filter(name=ref)
        found = list(sources[:2])
        if not found:
            raise CommandError(f"no source {ref!r}")
        if len(found) > 1:
            raise CommandError(f"several sources are named {ref!r}: add --workspace SLUG")
        return found[0]

    def _one_off(self, url, rules_file, slug, options):
        if rules_file is None:
            raise CommandError("--url needs --rules FILE (extraction rules as JSON)", returncode=2)
        try:
            rules = json.loads(rules_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"--rules: {exc}", returncode=2) from exc
        values = {
            "kind": options["kind"],
            "rules": rules,
            "secrets": _secrets(options["secret"], options["secrets_env"]),
        }
        workspace = self._workspace(slug)
        name = f"one-off: {url}"[:200]
        source = Source.objects.in_workspace(workspace).filter(name=name).first()
        if source is None:
            return services.source_create(
                workspace=workspace, name=name, start_urls=[url], **values
            )
        return services.source_update(source=source, **values)

    def _follow(self, crawl: Crawl) -> str:
        """Read the crawl's event log (the source of truth) until a final event."""
        after = 0
        while True:
            batch = list(
                CrawlEvent.objects.filter(crawl=crawl, sequence__gt=after).order_by("sequence")
            )
            for event in batch:
                after = event.sequence
                self._show(event)
                if event.type in events.FINAL_TYPES:
                    self.stdout.write("")
                    return event.type.split(".", 1)[1]
            time.sleep(0.25)

    def _show(self, event: CrawlEvent) -> None:
        p = event.payload
        if event.type in (events.PROGRESS, *events.FINAL_TYPES):
            # The figures come computed in the event (crawls/engine/progress.py).
            filled = int(BAR * (p.get("percent") or 0) / 100)
            line = (
                f"\r[{'#' * filled}{'.' * (BAR - filled)}] "
                f"{p.get('pages_processed', 0)}/{p.get('pages_total', 0)} pages"
                f"  items +{p.get('items_new', 0)} ~{p.get('items_changed', 0)}"
                f" ={p.get('items_unchanged', 0)}"
                f"  errors {p.get('error_count', 0)}"
            )
            if p.get("pages_per_s"):
                line += f"  {p['pages_per_s']} pages/s"
            self.stdout.write(line, ending="")
            if event.type in events.FINAL_TYPES:
                self.stdout.write(f"\n{event.type.split('.', 1)[1]}" + (
                    f": {p['error']}" if p.get("error") else ""
                ), ending="")  # fmt: skip
        elif event.type in (events.RETRYING, events.CANCEL_REQUESTED, events.RESUMED):
            self.stdout.write(f"\n{event.type} {json.dumps(p, ensure_ascii=False)}")
        self.stdout.flush()


def _secrets(pairs: list[str], env_prefix: str | None) -> dict[str, str]:
    """--secret NAME=VALUE pairs, then PREFIX* environment variables (lower-cased names) over
    them. Never echoes a value."""
    secrets = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CommandError(f"--secret {name!r}: give NAME=VALUE", returncode=2)
        secrets[name.strip()] = value
    if env_prefix:
        found = {
            key[len(env_prefix) :].lower(): value
            for key, value in os.environ.items()
            if key.startswith(env_prefix) and len(key) > len(env_prefix)
        }
        if not found:
            raise CommandError(f"--secrets-env: no variable starts with {env_prefix}", returncode=2)
        secrets.update(found)
    return secrets


def _problems(error: ValidationError) -> str:
    """One line a problem: "rules: items: ..." (field, then the path the service names)."""
    if not hasattr(error, "error_dict"):
        return "; ".join(error.messages)
    return "\n".join(
        f"{field}: {message}"
        for field, messages in error.message_dict.items()
        for message in messages
    )
