"""/api/v1/workspaces/: every endpoint, for every persona, by session and by bearer token; the
pagination and query counts of the workspace, member and token lists (members and tokens
themselves: test_api_members.py, test_api_tokens.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django_celery_beat.models import PeriodicTask

from crawls import services
from crawls.demo.board import DEMO_RULES
from crawls.models import ApiToken, Membership, Workspace
from tests.clients import error_of, invalid_fields
from tests.factories import absent_pk, join, membership

pytestmark = pytest.mark.django_db

User = get_user_model()


# --- Workspaces -------------------------------------------------------------------------------


def test_workspace_list_shows_each_workspace_with_the_callers_role(
    as_user, workspace_a, workspace_b, teammate
):
    join(workspace=workspace_b, user=teammate, role=Membership.Role.ADMIN)
    response = as_user(teammate).get("/api/v1/workspaces/")
    assert response.status_code == 200
    assert [(w["id"], w["role"]) for w in response.json()["results"]] == [
        (workspace_b.id, "admin"),
        (workspace_a.id, "member"),
    ]


def test_a_token_sees_only_its_own_workspace(bearer, workspace_a, workspace_b, teammate):
    join(workspace=workspace_b, user=teammate, role=Membership.Role.MEMBER)
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
