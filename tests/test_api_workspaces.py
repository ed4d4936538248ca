"""/api/v1/workspaces/, /members/ and /tokens/: every endpoint, for every persona, by session and
by bearer token."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from crawls import services
from crawls.demo.board import DEMO_RULES
from crawls.models import ApiToken, Membership, Workspace
from tests.clients import error_of, invalid_fields
from tests.factories import absent_pk, membership

pytestmark = pytest.mark.django_db

User = get_user_model()


# --- Workspaces -------------------------------------------------------------------------------


def test_workspace_list_shows_each_workspace_with_the_callers_role(
    as_user, workspace_a, workspace_b, teammate
):
    services.membership_set(workspace=workspace_b, user=teammate, role=Membership.Role.ADMIN)
    response = as_user(teammate).get("/api/v1/workspaces/")
    assert response.status_code == 200
    assert [(w["id"], w["role"]) for w in response.json()["results"]] == [
        (workspace_b.id, "admin"),
        (workspace_a.id, "member"),
    ]


def test_a_token_sees_only_its_own_workspace(bearer, workspace_a, workspace_b, teammate):
    services.membership_set(workspace=workspace_b, user=teammate, role=Membership.Role.MEMBER)
    client = bearer(teammate, workspace_a)
    response = client.get("/api/v1/workspaces/")
    assert [w["id"] for w in response.json()["results"]] == [workspace_a.id]
    assert client.get(f"/api/v1/workspaces/{workspace_b.id}/").status_code == 404


def test_workspace_retrieve_has_an_etag_and_answers_304_when_unchanged(
    as_user, workspace_a, viewer
):
    client = as_user(viewer)
    response = client.get(f"/api/v1/workspaces/{workspace_a.id}/")
    assert response.status_code == 200
    assert response.json()["role"] == "viewer"
    etag = response["ETag"]
    again = client.get(f"/api/v1/workspaces/{workspace_a.id}/", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    services.workspace_rename(workspace=workspace_a, name="Renamed")
    changed = client.get(f"/api/v1/workspaces/{workspace_a.id}/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200


def test_workspace_retrieve_answers_404_for_outsiders_and_unknown_ids(
    as_user, workspace_a, outsider
):
    client = as_user(outsider)
    response = client.get(f"/api/v1/workspaces/{workspace_a.id}/")
    assert response.status_code == 404
    assert error_of(response)["message"]
    assert client.get(f"/api/v1/workspaces/{absent_pk(Workspace)}/").status_code == 404


def test_a_missing_object_answers_code_not_found(as_user, workspace_a, outsider):
    response = as_user(outsider).get(f"/api/v1/workspaces/{workspace_a.id}/")
    assert error_of(response)["code"] == "not_found"


def test_workspace_create_makes_the_caller_its_owner(as_user, outsider):
    response = as_user(outsider).post("/api/v1/workspaces/", {"name": "  Daegu bids "})
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["slug"], body["role"]) == ("Daegu bids", "daegu-bids", "owner")
    workspace = Workspace.objects.get(pk=body["id"])
    assert membership(workspace, outsider).role == Membership.Role.OWNER


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 201}, "name")],
)
def test_workspace_create_names_the_bad_field(as_user, outsider, payload, field):
    response = as_user(outsider).post("/api/v1/workspaces/", payload)
    assert invalid_fields(response) == {field}


def test_a_token_cannot_create_workspaces(bearer, workspace_a, owner):
    response = bearer(owner, workspace_a).post("/api/v1/workspaces/", {"name": "Escape"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    assert not Workspace.objects.filter(name="Escape").exists()


def test_workspace_rename_by_owner_admin_and_token(as_user, bearer, workspace_a, owner, admin_user):
    url = f"/api/v1/workspaces/{workspace_a.id}/"
    response = as_user(owner).patch(url, {"name": "Seoul bids"})
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["role"]) == ("Seoul bids", "owner")
    response = bearer(admin_user, workspace_a).patch(url, {"name": "Seoul notices"})
    assert response.status_code == 200
    workspace_a.refresh_from_db()
    assert workspace_a.name == "Seoul notices"
    assert workspace_a.slug == "seoul-tenders"  # the slug stays


def test_workspace_rename_is_refused_to_members_viewers_and_outsiders(
    as_user, workspace_a, teammate, viewer, outsider
):
    url = f"/api/v1/workspaces/{workspace_a.id}/"
    assert as_user(teammate).patch(url, {"name": "X"}).status_code == 403
    assert as_user(viewer).patch(url, {"name": "X"}).status_code == 403
    assert as_user(outsider).patch(url, {"name": "X"}).status_code == 404
    workspace_a.refresh_from_db()
    assert workspace_a.name == "Seoul tenders"


def test_workspace_rename_names_the_bad_field_and_put_is_not_offered(as_user, workspace_a, owner):
    url = f"/api/v1/workspaces/{workspace_a.id}/"
    client = as_user(owner)
    assert invalid_fields(client.patch(url, {"name": ""})) == {"name"}
    response = client.put(url, {"name": "X"})
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_workspace_delete_is_for_owners_only(
    as_user, bearer, workspace_a, owner, admin_user, teammate, outsider
):
    url = f"/api/v1/workspaces/{workspace_a.id}/"
    assert bearer(admin_user, workspace_a).delete(url).status_code == 403
    assert as_user(teammate).delete(url).status_code == 403
    assert as_user(outsider).delete(url).status_code == 404
    assert Workspace.objects.filter(pk=workspace_a.pk).exists()
    assert as_user(owner).delete(url).status_code == 204
    assert not Workspace.objects.filter(pk=workspace_a.pk).exists()


def test_workspace_delete_removes_its_sources_schedules(as_user, workspace_a, owner):
    source = services.source_create(
        workspace=workspace_a,
        name="Nightly",
        start_urls=["https://notices.example.org/list"],
        rules=DEMO_RULES,
        schedule_cron="0 3 * * *",
    )
    task_id = source.periodic_task_id
    assert task_id is not None
    assert as_user(owner).delete(f"/api/v1/workspaces/{workspace_a.id}/").status_code == 204
    assert not PeriodicTask.objects.filter(pk=task_id).exists()


# --- Members ----------------------------------------------------------------------------------


def test_member_list_shows_the_members_of_the_callers_workspaces(
    as_user, workspace_a, workspace_b, viewer, owner
):
    response = as_user(viewer).get("/api/v1/members/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert {r["workspace"] for r in rows} == {workspace_a.id}
    assert {(r["username"], r["role"]) for r in rows} == {
        ("olivia", "owner"),
        ("tomas", "member"),
        ("vera", "viewer"),
    }
    assert set(rows[0]) == {"id", "workspace", "user", "username", "email", "role", "created_at"}


def test_member_list_filters_by_workspace(as_user, workspace_a, workspace_b, teammate):
    services.membership_set(workspace=workspace_b, user=teammate, role=Membership.Role.VIEWER)
    client = as_user(teammate)
    rows = client.get(f"/api/v1/members/?workspace={workspace_b.id}").json()["results"]
    assert {(r["username"], r["workspace"]) for r in rows} == {
        ("oscar", workspace_b.id),
        ("tomas", workspace_b.id),
    }
    assert len(client.get("/api/v1/members/").json()["results"]) == 5


def test_member_list_of_a_foreign_workspace_is_empty(as_user, workspace_a, workspace_b, teammate):
    response = as_user(teammate).get(f"/api/v1/members/?workspace={workspace_b.id}")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_member_list_names_a_bad_workspace_filter(as_user, workspace_a, teammate):
    assert invalid_fields(as_user(teammate).get("/api/v1/members/?workspace=abc")) == {"workspace"}


def test_a_token_cannot_read_another_workspace_of_its_user(
    bearer, workspace_a, workspace_b, teammate, outsider
):
    services.membership_set(workspace=workspace_b, user=teammate, role=Membership.Role.MEMBER)
    client = bearer(teammate, workspace_a)
    rows = client.get("/api/v1/members/").json()["results"]
    assert {r["workspace"] for r in rows} == {workspace_a.id}
    assert client.get(f"/api/v1/members/?workspace={workspace_b.id}").json()["results"] == []
    foreign = membership(workspace_b, outsider)
    assert client.get(f"/api/v1/members/{foreign.id}/").status_code == 404
    own_in_b = membership(workspace_b, teammate)
    assert client.get(f"/api/v1/members/{own_in_b.id}/").status_code == 404


def test_member_retrieve(as_user, workspace_a, viewer, owner, outsider):
    row = membership(workspace_a, owner)
    response = as_user(viewer).get(f"/api/v1/members/{row.id}/")
    assert response.status_code == 200
    assert (response.json()["username"], response.json()["role"]) == ("olivia", "owner")
    assert "ETag" in response
    assert as_user(outsider).get(f"/api/v1/members/{row.id}/").status_code == 404


def test_owner_adds_a_member_by_username(as_user, workspace_a, owner, newcomer):
    response = as_user(owner).post(
        "/api/v1/members/", {"workspace": workspace_a.id, "username": "nina", "role": "viewer"}
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["username"], body["role"], body["workspace"]) == ("nina", "viewer", workspace_a.id)
    assert membership(workspace_a, newcomer).role == Membership.Role.VIEWER


def test_admin_adds_a_member_by_email_in_any_case_with_a_token(
    bearer, workspace_a, admin_user, newcomer
):
    response = bearer(admin_user, workspace_a).post(
        "/api/v1/members/", {"workspace": workspace_a.id, "email": "nina@example.ORG"}
    )
    assert response.status_code == 201
    assert response.json()["role"] == "member"  # the default
    assert membership(workspace_a, newcomer).role == Membership.Role.MEMBER


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "nobody"}, "username"),
        ({"email": "nobody@example.org"}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({}, "username"),
        ({"username": "nina", "email": "nina@example.org"}, "email"),
        ({"username": "tomas"}, "username"),  # already a member
        ({"username": "nina", "role": "emperor"}, "role"),
    ],
)
def test_member_add_names_the_bad_field(as_user, workspace_a, owner, newcomer, payload, field):
    response = as_user(owner).post("/api/v1/members/", {"workspace": workspace_a.id, **payload})
    assert invalid_fields(response) == {field}


def test_member_add_refuses_an_ambiguous_email(as_user, workspace_a, owner, newcomer):
    User.objects.create_user("nina2", email="nina@example.org")
    response = as_user(owner).post(
        "/api/v1/members/", {"workspace": workspace_a.id, "email": "nina@example.org"}
    )
    assert invalid_fields(response) == {"email"}


def test_member_add_to_a_foreign_or_unknown_workspace_names_workspace(
    as_user, workspace_a, workspace_b, owner, outsider, newcomer
):
    client = as_user(outsider)
    for workspace_id in (workspace_a.id, absent_pk(Workspace), "abc"):
        response = client.post("/api/v1/members/", {"workspace": workspace_id, "username": "nina"})
        assert invalid_fields(response) == {"workspace"}
    assert not Membership.objects.filter(user=newcomer).exists()


def test_member_add_is_refused_to_members_and_viewers(
    as_user, workspace_a, teammate, viewer, newcomer
):
    for user in (teammate, viewer):
        client = as_user(user)
        for username in ("nina", "nobody"):  # 403 either way: no probing for usernames
            response = client.post(
                "/api/v1/members/", {"workspace": workspace_a.id, "username": username}
            )
            assert response.status_code == 403
            assert error_of(response)["code"] == "permission_denied"
    assert not Membership.objects.filter(user=newcomer).exists()


def test_only_an_owner_may_add_an_owner(as_user, workspace_a, owner, admin_user, newcomer):
    payload = {"workspace": workspace_a.id, "username": "nina", "role": "owner"}
    assert as_user(admin_user).post("/api/v1/members/", payload).status_code == 403
    assert as_user(owner).post("/api/v1/members/", payload).status_code == 201
    assert membership(workspace_a, newcomer).role == Membership.Role.OWNER


def test_owner_and_admin_change_roles(as_user, workspace_a, owner, admin_user, teammate, viewer):
    row = membership(workspace_a, teammate)
    response = as_user(owner).patch(f"/api/v1/members/{row.id}/", {"role": "admin"})
    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    row = membership(workspace_a, viewer)
    response = as_user(admin_user).patch(f"/api/v1/members/{row.id}/", {"role": "member"})
    assert response.status_code == 200
    assert membership(workspace_a, viewer).role == Membership.Role.MEMBER


def test_only_an_owner_grants_or_takes_away_owner(
    as_user, workspace_a, owner, admin_user, teammate
):
    client = as_user(admin_user)
    promote = client.patch(
        f"/api/v1/members/{membership(workspace_a, teammate).id}/", {"role": "owner"}
    )
    assert promote.status_code == 403
    demote = client.patch(
        f"/api/v1/members/{membership(workspace_a, owner).id}/", {"role": "admin"}
    )
    assert demote.status_code == 403
    assert membership(workspace_a, owner).role == Membership.Role.OWNER
    response = as_user(owner).patch(
        f"/api/v1/members/{membership(workspace_a, teammate).id}/", {"role": "owner"}
    )
    assert response.status_code == 200
    assert membership(workspace_a, teammate).role == Membership.Role.OWNER


def test_role_change_is_refused_to_members_viewers_and_outsiders(
    as_user, workspace_a, owner, teammate, viewer, outsider
):
    url = f"/api/v1/members/{membership(workspace_a, viewer).id}/"
    assert as_user(teammate).patch(url, {"role": "admin"}).status_code == 403
    assert as_user(viewer).patch(url, {"role": "admin"}).status_code == 403
    assert as_user(outsider).patch(url, {"role": "admin"}).status_code == 404
    assert membership(workspace_a, viewer).role == Membership.Role.VIEWER


def test_role_change_names_the_bad_field(as_user, workspace_a, owner, teammate):
    url = f"/api/v1/members/{membership(workspace_a, teammate).id}/"
    assert invalid_fields(as_user(owner).patch(url, {"role": "king"})) == {"role"}
    assert invalid_fields(as_user(owner).patch(url, {})) == {"role"}


def test_the_last_owner_cannot_step_down_but_one_of_two_can(as_user, workspace_a, owner, teammate):
    client = as_user(owner)
    url = f"/api/v1/members/{membership(workspace_a, owner).id}/"
    response = client.patch(url, {"role": "admin"})
    assert invalid_fields(response) == {"role"}
    services.membership_set(workspace=workspace_a, user=teammate, role=Membership.Role.OWNER)
    assert client.patch(url, {"role": "admin"}).status_code == 200
    assert membership(workspace_a, owner).role == Membership.Role.ADMIN


def test_owner_removes_a_member_and_their_tokens_stop_working(
    as_user, bearer, workspace_a, owner, teammate
):
    teammate_client = bearer(teammate, workspace_a)
    assert teammate_client.get("/api/v1/members/").status_code == 200
    url = f"/api/v1/members/{membership(workspace_a, teammate).id}/"
    assert as_user(owner).delete(url).status_code == 204
    assert not Membership.objects.filter(workspace=workspace_a, user=teammate).exists()
    assert teammate_client.get("/api/v1/members/").status_code == 401
    teammate_client.token.refresh_from_db()
    assert teammate_client.token.revoked_at is not None


def test_admin_removes_members_but_not_owners(as_user, workspace_a, owner, admin_user, viewer):
    client = as_user(admin_user)
    assert client.delete(f"/api/v1/members/{membership(workspace_a, owner).id}/").status_code == 403
    assert (
        client.delete(f"/api/v1/members/{membership(workspace_a, viewer).id}/").status_code == 204
    )


def test_members_and_viewers_cannot_remove_others_but_may_leave(
    as_user, bearer, workspace_a, teammate, viewer, owner
):
    viewer_row = membership(workspace_a, viewer)
    assert as_user(teammate).delete(f"/api/v1/members/{viewer_row.id}/").status_code == 403
    teammate_row = membership(workspace_a, teammate)
    assert bearer(viewer, workspace_a).delete(
        f"/api/v1/members/{teammate_row.id}/"
    ).status_code == (403)
    assert as_user(viewer).delete(f"/api/v1/members/{viewer_row.id}/").status_code == 204
    assert not Membership.objects.filter(pk=viewer_row.pk).exists()


def test_the_last_owner_cannot_leave(as_user, workspace_a, owner):
    response = as_user(owner).delete(f"/api/v1/members/{membership(workspace_a, owner).id}/")
    assert invalid_fields(response) == {"role"}
    assert Membership.objects.filter(workspace=workspace_a, user=owner).exists()


def test_member_remove_in_a_foreign_workspace_is_404(as_user, workspace_a, workspace_b, owner):
    row = Membership.objects.get(workspace=workspace_b)
    response = as_user(owner).delete(f"/api/v1/members/{row.id}/")
    assert response.status_code == 404
    assert error_of(response)["message"]
    assert Membership.objects.filter(pk=row.pk).exists()


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
    services.membership_set(workspace=workspace_b, user=teammate, role=Membership.Role.MEMBER)
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
    services.membership_set(workspace=workspace_b, user=teammate, role=Membership.Role.MEMBER)
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


# --- Pagination and query counts ----------------------------------------------------------------


@pytest.fixture
def crowded_workspace(workspace_a, owner):
    """Workspace A with 120 more members and 120 tokens of its owner."""
    users = User.objects.bulk_create(
        [User(username=f"user{n:03}", email=f"user{n:03}@example.org") for n in range(120)]
    )
    Membership.objects.bulk_create(
        [Membership(workspace=workspace_a, user=user, role="viewer") for user in users]
    )
    ApiToken.objects.bulk_create(
        [
            ApiToken(
                workspace=workspace_a,
                user=owner,
                name=f"t{n}",
                prefix=f"p{n:07}",
                key_hash="0" * 64,
            )
            for n in range(120)
        ]
    )
    for n in range(20):
        services.workspace_create(owner=owner, name=f"Board {n}")
    return workspace_a


@pytest.mark.parametrize("url", ["/api/v1/workspaces/", "/api/v1/members/", "/api/v1/tokens/"])
@pytest.mark.parametrize("page_size", [5, 100])
def test_list_query_count_is_constant(
    as_user, crowded_workspace, owner, django_assert_max_num_queries, url, page_size
):
    client = as_user(owner)
    # session, user, the page: nothing per row
    with django_assert_max_num_queries(3):
        response = client.get(f"{url}?page_size={page_size}")
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(page_size, 21 if "workspaces" in url else 120)


@pytest.mark.parametrize("url", ["/api/v1/members/", "/api/v1/tokens/"])
def test_list_query_count_with_a_token_is_constant(
    bearer, crowded_workspace, owner, django_assert_max_num_queries, url
):
    client = bearer(owner, crowded_workspace)
    client.get(url)  # last_used_at written
    for page_size in (5, 100):
        # the token, its membership, the page
        with django_assert_max_num_queries(3):
            response = client.get(f"{url}?page_size={page_size}")
        assert len(response.json()["results"]) == page_size


def test_member_list_pages_through_every_member_once(as_user, crowded_workspace, owner):
    client = as_user(owner)
    seen = []
    url = f"/api/v1/members/?workspace={crowded_workspace.id}&page_size=50"
    while url:
        body = client.get(url).json()
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == 123
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize("url", ["/api/v1/workspaces/", "/api/v1/members/", "/api/v1/tokens/"])
def test_a_tampered_cursor_names_cursor(as_user, crowded_workspace, owner, url):
    client = as_user(owner)
    next_url = client.get(f"{url}?page_size=2").json()["next"]
    assert next_url
    cursor = next_url.split("cursor=")[1].split("&")[0]
    tampered = cursor[:-6] + ("AAAAAA" if not cursor.endswith("AAAAAA") else "BBBBBB")
    assert invalid_fields(client.get(f"{url}?cursor={tampered}")) == {"cursor"}
    assert invalid_fields(client.get(f"{url}?cursor=garbage")) == {"cursor"}


@pytest.mark.parametrize("url", ["/api/v1/workspaces/", "/api/v1/members/", "/api/v1/tokens/"])
@pytest.mark.parametrize("page_size", ["0", "201", "-1", "ten"])
def test_a_bad_page_size_names_page_size(as_user, workspace_a, owner, url, page_size):
    response = as_user(owner).get(f"{url}?page_size={page_size}")
    assert invalid_fields(response) == {"page_size"}
