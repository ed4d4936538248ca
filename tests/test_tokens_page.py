"""The dashboard's API tokens page and `manage.py token`: the API's token rules (a token is its
user's, in one workspace; shown once; revocable), through the same services."""

from __future__ import annotations

import io
import re
from html import unescape

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from crawls import services
from crawls.models import ApiToken

pytestmark = pytest.mark.django_db

RAW = re.compile(r"fst_[0-9a-f]{8}[\w-]{43}")


def text(response) -> str:
    return unescape(response.content.decode())


@pytest.fixture
def login(client):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user


# --- The page ---------------------------------------------------------------------------------


def test_the_page_lists_only_your_tokens_of_the_current_workspace(
    login, owner, teammate, workspace_a, workspace_b, outsider
):
    mine, _ = services.token_create(user=owner, workspace=workspace_a, name="nightly export")
    services.token_create(user=teammate, workspace=workspace_a, name="tomas script")
    services.token_create(user=outsider, workspace=workspace_b, name="oscar script")
    response = login(owner).get(reverse("crawls:tokens"))
    assert response.status_code == 200
    assert [t.pk for t in response.context["tokens"]] == [mine.pk]
    html = text(response)
    assert "nightly export" in html
    assert f"fst_{mine.prefix}…" in html
    assert "never" in html  # last used
    assert "tomas script" not in html
    assert "oscar script" not in html
    assert 'href="/tokens/"' in text(login(owner).get(reverse("crawls:overview")))  # the nav


def test_create_shows_the_token_once_and_it_works(login, owner, workspace_a):
    client = login(owner)
    response = client.post(reverse("crawls:tokens"), {"name": "nightly export"}, follow=True)
    assert response.redirect_chain == [(reverse("crawls:tokens"), 302)]  # a reload: no new one
    assert "no-store" in response["Cache-Control"]
    raws = RAW.findall(response.content.decode())
    assert len(set(raws)) == 1
    token = services.token_authenticate(raw=raws[0])
    assert token is not None
    assert (token.user, token.workspace_id, token.name) == (owner, workspace_a.pk, "nightly export")
    assert 'data-copy="new-token"' in response.content.decode()
    assert "new_token" not in client.session  # forgotten once shown
    again = client.get(reverse("crawls:tokens"))
    assert RAW.search(again.content.decode()) is None  # shown once
    assert "no-store" not in again.get("Cache-Control", "")
    assert [t.pk for t in again.context["tokens"]] == [token.pk]


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_create_refuses_a_bad_name(login, owner, workspace_a, name):
    response = login(owner).post(reverse("crawls:tokens"), {"name": name})
    assert response.status_code == 400
    assert "name" in response.context["form"].errors
    assert not ApiToken.objects.exists()


def test_a_viewer_may_have_tokens_as_in_the_api(login, viewer, workspace_a):
    response = login(viewer).post(reverse("crawls:tokens"), {"name": "read only"}, follow=True)
    assert response.status_code == 200
    token = services.token_authenticate(raw=RAW.search(response.content.decode()).group())
    assert token.role == "viewer"


def test_tokens_go_to_the_workspace_chosen_in_the_switcher(login, owner, workspace_a):
    other = services.workspace_create(owner=owner, name="Another")
    client = login(owner)
    client.post(reverse("crawls:workspace_switch"), {"workspace": other.pk})
    client.post(reverse("crawls:tokens"), {"name": "elsewhere"})
    assert ApiToken.objects.get(name="elsewhere").workspace_id == other.pk
    assert [t.name for t in client.get(reverse("crawls:tokens")).context["tokens"]] == ["elsewhere"]
    client.post(reverse("crawls:workspace_switch"), {"workspace": workspace_a.pk})
    assert client.get(reverse("crawls:tokens")).context["tokens"] == []


def test_revoke(login, owner, workspace_a):
    token, raw = services.token_create(user=owner, workspace=workspace_a, name="old script")
    client = login(owner)
    response = client.post(reverse("crawls:token_revoke", args=[token.pk]), follow=True)
    assert response.redirect_chain == [(reverse("crawls:tokens"), 302)]
    assert [str(m) for m in response.context["messages"]] == [
        f"Token old script ({token.prefix}…) revoked."
    ]
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert services.token_authenticate(raw=raw) is None
    assert "revoked" in text(response)
    assert f'action="{reverse("crawls:token_revoke", args=[token.pk])}"' not in text(response)
    again = client.post(reverse("crawls:token_revoke", args=[token.pk]), follow=True)
    assert "was already revoked" in str(next(iter(again.context["messages"])))


def test_others_tokens_answer_404_and_stay_active(login, owner, teammate, workspace_a):
    theirs, raw = services.token_create(user=teammate, workspace=workspace_a, name="tomas")
    client = login(owner)
    assert client.post(reverse("crawls:token_revoke", args=[theirs.pk])).status_code == 404
    assert services.token_authenticate(raw=raw) is not None


def test_the_page_needs_a_login_a_workspace_and_revoke_a_post(
    client, login, owner, outsider, workspace_a
):
    assert client.get(reverse("crawls:tokens")).status_code == 302  # to the login page
    token, _ = services.token_create(user=owner, workspace=workspace_a, name="t")
    assert login(owner).get(reverse("crawls:token_revoke", args=[token.pk])).status_code == 405
    assert login(outsider).get(reverse("crawls:tokens")).status_code == 404  # no workspace


@pytest.mark.parametrize("rows", [2, 12])
def test_the_page_query_budget_does_not_grow_with_tokens(
    login, owner, workspace_a, rows, django_assert_max_num_queries
):
    for n in range(rows):
        token, _ = services.token_create(user=owner, workspace=workspace_a, name=f"t{n}")
        if n % 2:
            services.token_revoke(token=token)
    client = login(owner)
    client.get("/")  # the session's first read is not what we count
    # session, user, memberships with workspaces (the switcher), sources' zones, tokens
    with django_assert_max_num_queries(5):
        response = client.get(reverse("crawls:tokens"))
    assert len(response.context["tokens"]) == rows


# --- manage.py token ---------------------------------------------------------------------------


def token_command(*args) -> str:
    out = io.StringIO()
    call_command("token", *args, stdout=out)
    return out.getvalue()


def test_token_create_prints_the_raw_token_only(owner, workspace_a):
    out = token_command("create", "--user", "olivia", "--workspace", workspace_a.slug)
    assert RAW.fullmatch(out.strip())
    token = services.token_authenticate(raw=out.strip())
    assert (token.user, token.workspace_id, token.name) == (owner, workspace_a.pk, "command line")
    by_id = token_command(
        "create", "--user", "olivia", "--workspace", str(workspace_a.pk), "--name", "cron"
    )
    assert services.token_authenticate(raw=by_id.strip()).name == "cron"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--user", "nobody", "--workspace", "x"], "no user 'nobody'"),
        (["--user", "olivia", "--workspace", "nowhere"], "no workspace 'nowhere'"),
        (["--user", "oscar", "--workspace", "WS_A"], "you are not a member of this workspace"),
        (["--user", "olivia", "--workspace", "WS_A", "--name", ""], "--name"),
    ],
)
def test_token_create_refusals(owner, outsider, workspace_a, args, error):
    args = [workspace_a.slug if a == "WS_A" else a for a in args]
    with pytest.raises(CommandError, match=re.escape(error)):
        token_command("create", *args)
    assert not ApiToken.objects.exists()


def test_token_list_and_revoke(owner, teammate, workspace_a):
    kept, _ = services.token_create(user=owner, workspace=workspace_a, name="kept")
    gone, raw = services.token_create(user=owner, workspace=workspace_a, name="gone")
    services.token_create(user=teammate, workspace=workspace_a, name="not hers")
    assert token_command("revoke", str(gone.pk), "--user", "olivia") == (
        f"token {gone.pk} (gone) revoked\n"
    )
    assert services.token_authenticate(raw=raw) is None
    lines = token_command("list", "--user", "olivia").splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{kept.pk}\tfst_{kept.prefix}…\t{workspace_a.slug}\tactive\t")
    assert lines[0].endswith("\tlast used never\tkept")
    assert lines[1].startswith(f"{gone.pk}\tfst_{gone.prefix}…\t{workspace_a.slug}\trevoked ")
    with pytest.raises(CommandError, match="no token"):
        token_command("revoke", str(kept.pk), "--user", "tomas")  # not his
    other = services.workspace_create(owner=owner, name="Another")
    assert token_command("list", "--user", "olivia", "--workspace", other.slug) == ""
    assert token_command("list", "--user", "tomas").endswith("\tnot hers\n")
