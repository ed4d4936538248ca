"""/api/v1/tokens/: creating, listing and revoking API tokens, and what a token may do."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crawls import services
from crawls.models import ApiToken, Membership, Workspace
from tests.clients import error_of, invalid_fields
from tests.factories import absent_pk, join

pytestmark = pytest.mark.django_db


# --- Tokens -----------------------------------------------------------------------------------


def test_token_create_shows_the_token_once(as_user, workspace_a, teammate):
    client = as_user(teammate)
    response = client.post("/api/v1/tokens/", {"workspace": workspace_a.id, "name": "ci"})
    assert response.status_code == 201
    body = response.json()
    raw = body["token"]
    assert raw.startswith("fst_")
    assert (body["name"], body["workspace"], body["active"]) == ("ci", workspace_a.id, True)
    assert "key_hash" not in body
    stored = ApiToken.objects.get(pk=body["id"])
    assert raw not in stored.key_hash
    assert stored.user == teammate
    # never again: neither in the list nor in the token's own page
    listing = client.get("/api/v1/tokens/")
    detail = client.get(f"/api/v1/tokens/{stored.id}/")
    for later in (listing, detail):
        assert later.status_code == 200
        assert raw not in later.content.decode()
        assert stored.key_hash not in later.content.decode()
    assert set(detail.json()) == {
        "id", "workspace", "name", "prefix", "active", "created_at", "last_used_at", "revoked_at",
    }  # fmt: skip
    # and it works
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/workspaces/").status_code == 200


def test_a_viewer_may_create_a_token(as_user, workspace_a, viewer):
    response = as_user(viewer).post("/api/v1/tokens/", {"workspace": workspace_a.id, "name": "r"})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "ci"}, "workspace"),
        ({"workspace": "ABSENT", "name": "ci"}, "workspace"),
        ({"workspace": "FOREIGN", "name": "ci"}, "workspace"),
        ({"workspace": "A"}, "name"),
        ({"workspace": "A", "name": "  "}, "name"),
        ({"workspace": "A", "name": "n" * 101}, "name"),
    ],
)
def test_token_create_names_the_bad_field(
    as_user, workspace_a, workspace_b, teammate, payload, field
):
    ids = {"A": workspace_a.id, "FOREIGN": workspace_b.id, "ABSENT": absent_pk(Workspace)}
    payload = {k: ids.get(v, v) if k == "workspace" else v for k, v in payload.items()}
    response = as_user(teammate).post("/api/v1/tokens/", payload)
    assert invalid_fields(response) == {field}
    assert not ApiToken.objects.exists()


def test_a_token_cannot_create_tokens(bearer, workspace_a, owner):
    client = bearer(owner, workspace_a)
    response = client.post("/api/v1/tokens/", {"workspace": workspace_a.id, "name": "more"})
    assert response.status_code == 403
    assert "sign in" in error_of(response)["message"]
    assert ApiToken.objects.count() == 1


def test_token_list_shows_only_the_callers_own_tokens(
    as_user, workspace_a, workspace_b, owner, teammate
):
    join(workspace=workspace_b, user=teammate, role=Membership.Role.MEMBER)
    mine_a, _ = services.token_create(user=teammate, workspace=workspace_a, name="a")
    mine_b, _ = services.token_create(user=teammate, workspace=workspace_b, name="b")
    theirs, _ = services.token_create(user=owner, workspace=workspace_a, name="theirs")
    client = as_user(teammate)
    rows = client.get("/api/v1/tokens/").json()["results"]
    assert [r["id"] for r in rows] == [mine_b.id, mine_a.id]
    rows = client.get(f"/api/v1/tokens/?workspace={workspace_a.id}").json()["results"]
    assert [r["id"] for r in rows] == [mine_a.id]
    assert client.get(f"/api/v1/tokens/{theirs.id}/").status_code == 404


def test_a_token_lists_its_users_tokens_of_its_workspace_only(
    bearer, workspace_a, workspace_b, teammate
):
    join(workspace=workspace_b, user=teammate, role=Membership.Role.MEMBER)
    other, _ = services.token_create(user=teammate, workspace=workspace_b, name="b")
    client = bearer(teammate, workspace_a)
    rows = client.get("/api/v1/tokens/").json()["results"]
    assert [r["id"] for r in rows] == [client.token.id]
    assert client.get(f"/api/v1/tokens/{other.id}/").status_code == 404


def test_token_delete_revokes_and_the_token_then_answers_401(as_user, bearer, workspace_a, viewer):
    token_client = bearer(viewer, workspace_a)
    token = token_client.token
    client = as_user(viewer)
    assert client.delete(f"/api/v1/tokens/{token.id}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    response = token_client.get("/api/v1/workspaces/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="forest"'
    assert error_of(response)["code"] == "authentication_failed"
    # still listed, as revoked; filterable
    rows = client.get("/api/v1/tokens/?active=false").json()["results"]
    assert [(r["id"], r["active"]) for r in rows] == [(token.id, False)]
    assert client.get("/api/v1/tokens/?active=true").json()["results"] == []
    # revoking again changes nothing
    revoked_at = token.revoked_at
    assert client.delete(f"/api/v1/tokens/{token.id}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at == revoked_at


def test_token_revoke_action_answers_with_the_revoked_token(as_user, bearer, workspace_a, owner):
    token_client = bearer(owner, workspace_a)
    response = as_user(owner).post(f"/api/v1/tokens/{token_client.token.id}/revoke/")
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert response.json()["revoked_at"] is not None
    assert token_client.get("/api/v1/members/").status_code == 401


def test_a_token_may_revoke_itself(bearer, workspace_a, teammate):
    client = bearer(teammate, workspace_a)
    assert client.delete(f"/api/v1/tokens/{client.token.id}/").status_code == 204
    assert client.get("/api/v1/tokens/").status_code == 401


def test_nobody_revokes_someone_elses_token(as_user, bearer, workspace_a, owner, teammate):
    token = bearer(teammate, workspace_a).token
    client = as_user(owner)  # even the workspace's owner
    assert client.delete(f"/api/v1/tokens/{token.id}/").status_code == 404
    assert client.post(f"/api/v1/tokens/{token.id}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_tokens_cannot_be_changed(as_user, bearer, workspace_a, owner):
    token = bearer(owner, workspace_a).token
    response = as_user(owner).patch(f"/api/v1/tokens/{token.id}/", {"name": "x"})
    assert response.status_code == 405


def test_last_used_at_is_written_at_most_once_a_minute(bearer, workspace_a, teammate):
    client = bearer(teammate, workspace_a)
    token = client.token
    assert token.last_used_at is None
    assert client.get("/api/v1/tokens/").status_code == 200
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    client.get("/api/v1/tokens/")
    token.refresh_from_db()
    assert token.last_used_at == first  # within the minute: not written again
    earlier = timezone.now() - dt.timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=earlier)
    body = client.get(f"/api/v1/tokens/{token.id}/").json()
    token.refresh_from_db()
    assert token.last_used_at > earlier
    assert body["last_used_at"] is not None


@pytest.mark.parametrize(
    "header",
    ["Bearer fst_00000000nope", "Bearer", "Bearer a b", "Bearer not-a-forest-token"],
)
def test_bad_bearer_tokens_answer_401(api, workspace_a, header):
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/api/v1/members/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="forest"'
    assert error_of(response)["code"] == "authentication_failed"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/workspaces/"),
        ("post", "/api/v1/workspaces/"),
        ("get", "/api/v1/members/"),
        ("post", "/api/v1/members/"),
        ("get", "/api/v1/tokens/"),
        ("post", "/api/v1/tokens/"),
        ("delete", "/api/v1/tokens/1/"),
    ],
)
def test_anonymous_callers_get_401(api, method, url):
    response = getattr(api, method)(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="forest"'
    assert error_of(response)["code"] == "not_authenticated"
