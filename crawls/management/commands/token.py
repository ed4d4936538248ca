"""`manage.py token create|list|revoke`: API tokens for scripts (the dashboard's tokens page and
`POST /api/v1/tokens/` go through the same services)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crawls import services
from crawls.models import ApiToken, Workspace


class Command(BaseCommand):
    help = (
        "create: print a new token of --user in --workspace (the raw token only, shown this "
        "once); list: a user's tokens, one a line; revoke: revoke a token by id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="a new token; prints it alone")
        create.add_argument("--user", required=True, help="username")
        create.add_argument("--workspace", required=True, help="workspace slug or id")
        create.add_argument("--name", default="command line", help="what the token is for")
        listing = actions.add_parser("list", help="id, prefix, workspace, state, name")
        listing.add_argument("--user", required=True, help="username")
        listing.add_argument("--workspace", help="workspace slug or id (default: all)")
        revoke = actions.add_parser("revoke", help="revoke a token by id")
        revoke.add_argument("id", type=int, help="the token's id (see `token list`)")
        revoke.add_argument("--user", help="only if the token is this user's")

    def handle(self, *args: object, action: str, **options: Any) -> None:
        getattr(self, f"_{action}")(**options)

    def _create(self, *, user: str, workspace: str, name: str, **options: Any) -> None:
        if not name.strip() or len(name) > (ApiToken._meta.get_field("name").max_length or 0):
            raise CommandError("--name: 1 to 100 characters")
        try:
            _, raw = services.token_create(
                user=_user(user), workspace=_workspace(workspace), name=name.strip()
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(raw)

    def _list(self, *, user: str, workspace: str | None, **options: Any) -> None:
        tokens = ApiToken.objects.filter(user=_user(user)).select_related("workspace")
        if workspace:
            tokens = tokens.filter(workspace=_workspace(workspace))
        for token in tokens.order_by("id"):
            state = "active" if token.is_active else f"revoked {token.revoked_at.isoformat()}"
            used = token.last_used_at.isoformat() if token.last_used_at else "never"
            self.stdout.write(
                f"{token.pk}\tfst_{token.prefix}…\t{token.workspace.slug}\t{state}"
                f"\tlast used {used}\t{token.name}"
            )

    def _revoke(self, *, id: int, user: str | None, **options: Any) -> None:
        tokens = ApiToken.objects.filter(pk=id)
        if user:
            tokens = tokens.filter(user=_user(user))
        token = tokens.first()
        if token is None:
            raise CommandError(f"no token {id}" + (f" of {user}" if user else ""))
        was_active = token.is_active
        services.token_revoke(token=token)
        state = "revoked" if was_active else "was already revoked"
        self.stdout.write(f"token {token.pk} ({token.name}) {state}")


def _user(username: str) -> Any:
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist as exc:
        raise CommandError(f"no user {username!r}") from exc


def _workspace(ref: str) -> Workspace:
    found = Workspace.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
    found = found or Workspace.objects.filter(slug=ref).first()
    if found is None:
        raise CommandError(f"no workspace {ref!r} (a slug or an id)")
    return found
