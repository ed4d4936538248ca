"""/api/v1/members/: listing, adding, changing roles and removing members, for every persona (the
last owner stays)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from crawls.models import Membership, Workspace
from tests.clients import error_of, invalid_fields
from tests.factories import absent_pk, join, membership

pytestmark = pytest.mark.django_db

User = get_user_model()


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
    join(workspace=workspace_b, user=teammate, role=Membership.Role.VIEWER)
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
    join(workspace=workspace_b, user=teammate, role=Membership.Role.MEMBER)
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
    join(workspace=workspace_a, user=teammate, role=Membership.Role.OWNER)
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
