"""Workspace scoping: a member of workspace A can read nothing of workspace B."""

import pytest
from django.contrib.auth.models import AnonymousUser

from crawls import selectors, services
from crawls.models import Membership

pytestmark = pytest.mark.django_db


def test_visible_to_returns_only_rows_of_the_users_workspaces(workspace_a, workspace_b, teammate):
    rows = Membership.objects.visible_to(teammate)
    assert {m.workspace_id for m in rows} == {workspace_a.id}
    assert rows.count() == 3  # owner, teammate, viewer of A; nothing of B


def test_visible_to_filters_by_role(workspace_a, owner, teammate):
    writers = Membership.objects.visible_to(teammate, roles=[Membership.Role.OWNER])
    assert list(writers) == []
    assert Membership.objects.visible_to(owner, roles=[Membership.Role.OWNER]).count() == 3


def test_visible_to_is_empty_for_anonymous_and_inactive_users(workspace_a, teammate):
    assert not Membership.objects.visible_to(AnonymousUser()).exists()
    teammate.is_active = False
    teammate.save(update_fields=["is_active"])
    assert not Membership.objects.visible_to(teammate).exists()


def test_in_workspace_narrows_to_one_workspace(workspace_a, workspace_b, outsider):
    assert Membership.objects.visible_to(outsider).in_workspace(workspace_a).count() == 0
    assert Membership.objects.visible_to(outsider).in_workspace(workspace_b).count() == 1


def test_workspace_selectors_refuse_foreign_workspaces(workspace_a, workspace_b, teammate):
    assert list(selectors.workspace_list_for_user(user=teammate)) == [workspace_a]
    assert list(selectors.workspace_ids_for(user=teammate)) == [workspace_a.id]
    assert list(selectors.workspace_ids_for(user=AnonymousUser())) == []


def test_workspace_ids_for_a_token_are_its_workspace_alone(
    workspace_a, workspace_b, owner, outsider
):
    services.membership_add(workspace=workspace_b, user=owner, role="member", actor=outsider)
    token, _ = services.token_create(user=owner, workspace=workspace_b, name="ci")
    assert list(selectors.workspace_ids_for(user=owner)) == sorted([workspace_a.id, workspace_b.id])
    assert selectors.workspace_ids_for(user=owner, token=token) == [workspace_b.id]


def test_membership_roles_decide_write_and_manage(workspace_a, owner, teammate, viewer):
    def role_of(user):
        return Membership.objects.get(workspace=workspace_a, user=user)

    assert (role_of(owner).can_write, role_of(owner).can_manage) == (True, True)
    assert (role_of(teammate).can_write, role_of(teammate).can_manage) == (True, False)
    assert (role_of(viewer).can_write, role_of(viewer).can_manage) == (False, False)


def test_workspace_create_makes_the_creator_owner_and_a_unique_slug(owner):
    first = services.workspace_create(owner=owner, name="입찰 공고")
    second = services.workspace_create(owner=owner, name="입찰 공고")
    assert first.slug == "입찰-공고"
    assert second.slug.startswith("입찰-공고-")
    assert first.memberships.get().role == Membership.Role.OWNER


def test_api_lists_only_the_callers_workspaces(client, workspace_a, workspace_b, viewer):
    services.workspace_create(owner=viewer, name="Vera's own")
    client.force_login(viewer)
    response = client.get("/api/v1/workspaces/")
    assert response.status_code == 200
    assert [(w["name"], w["role"]) for w in response.json()["results"]] == [
        ("Vera's own", "owner"),  # newest first
        ("Seoul tenders", "viewer"),
    ]


def test_api_answers_404_for_a_foreign_workspace(client, workspace_a, workspace_b, teammate):
    client.force_login(teammate)
    assert client.get(f"/api/v1/workspaces/{workspace_b.id}/").status_code == 404
    assert client.get(f"/api/v1/workspaces/{workspace_a.id}/").status_code == 200


def test_api_refuses_anonymous_callers(client, workspace_a):
    response = client.get("/api/v1/workspaces/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="forest"'
    assert response.json()["error"]["code"] == "not_authenticated"


def test_api_workspace_list_query_count_is_constant(client, owner, django_assert_max_num_queries):
    for n in range(30):
        services.workspace_create(owner=owner, name=f"Board {n}")
    client.force_login(owner)
    # session + user, then one query for the page (role is a subquery, not a query per row)
    with django_assert_max_num_queries(3):
        response = client.get("/api/v1/workspaces/")
    assert len(response.json()["results"]) == 30
