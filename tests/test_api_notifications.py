"""/api/v1/notifications/ and /api/v1/alert-rules/: scoping, roles, validation, pagination."""

from __future__ import annotations

import pytest
from django.utils import timezone

from notifications.models import AlertRule, Notification
from tests.clients import bearer
from tests.factories import join
from tests.test_notifications import make_rule

pytestmark = pytest.mark.django_db

API = "/api/v1"


def notify(user, workspace, title="Hello", **values) -> Notification:
    return Notification.objects.create(
        recipient=user, workspace=workspace, kind="crawl_succeeded", title=title, **values
    )


# --- Notifications -------------------------------------------------------------------------------


def test_notifications_list_is_the_callers_own_newest_first_with_cursor(
    api, owner, teammate, workspace_a
):
    mine = [notify(owner, workspace_a, f"n{i}") for i in range(3)]
    notify(teammate, workspace_a, "not mine")
    client = api(owner)
    first = client.get(f"{API}/notifications/?page_size=2")
    assert first.status_code == 200
    assert [n["title"] for n in first.json()["results"]] == ["n2", "n1"]
    second = client.get(first.json()["next"])
    assert [n["id"] for n in second.json()["results"]] == [mine[0].pk]
    assert second.json()["next"] is None


def test_notifications_unread_filter_and_count(api, owner, workspace_a):
    read = notify(owner, workspace_a, "read", read_at=timezone.now())
    unread = notify(owner, workspace_a, "unread")
    client = api(owner)
    only_unread = client.get(f"{API}/notifications/?unread=true").json()["results"]
    assert [n["id"] for n in only_unread] == [unread.pk]
    only_read = client.get(f"{API}/notifications/?unread=false").json()["results"]
    assert [n["id"] for n in only_read] == [read.pk]
    bad = client.get(f"{API}/notifications/?unread=maybe")
    assert bad.status_code == 400
    assert bad.json()["error"]["details"] == {"unread": ["must be true or false"]}
    assert client.get(f"{API}/notifications/unread-count/").json() == {"unread": 1}


def test_notifications_list_query_budget(api, owner, workspace_a, django_assert_num_queries):
    for i in range(5):
        notify(owner, workspace_a, f"n{i}")
    client = api(owner)
    # the page (scoped by a membership subquery): one query, whatever its length
    with django_assert_num_queries(1):
        assert len(client.get(f"{API}/notifications/").json()["results"]) == 5


def test_notification_mark_read_and_read_all(api, owner, workspace_a):
    first, second, _third = (notify(owner, workspace_a, f"n{i}") for i in range(3))
    client = api(owner)
    response = client.post(f"{API}/notifications/{first.pk}/read/")
    assert response.status_code == 200
    assert response.json()["read_at"] is not None
    assert client.get(f"{API}/notifications/unread-count/").json() == {"unread": 2}
    again = client.post(f"{API}/notifications/{first.pk}/read/")
    assert again.json()["read_at"] == response.json()["read_at"]
    everything = client.post(f"{API}/notifications/read-all/")
    assert everything.status_code == 200
    assert everything.json() == {"marked": 2, "unread": 0}
    detail = client.get(f"{API}/notifications/{second.pk}/")
    assert detail.status_code == 200
    assert detail.json()["read_at"] is not None


def test_notifications_of_others_answer_404(api, owner, outsider, workspace_a, workspace_b):
    theirs = notify(outsider, workspace_b)
    colleague = notify(owner, workspace_a)
    client = api(outsider)
    assert client.get(f"{API}/notifications/{colleague.pk}/").status_code == 404
    assert client.post(f"{API}/notifications/{colleague.pk}/read/").status_code == 404
    assert client.post(f"{API}/notifications/read-all/").json() == {"marked": 1, "unread": 0}
    colleague.refresh_from_db()
    assert colleague.read_at is None
    assert [n["id"] for n in client.get(f"{API}/notifications/").json()["results"]] == [theirs.pk]


def test_notifications_with_a_token_are_those_of_its_workspace(
    owner, outsider, workspace_a, workspace_b
):
    join(workspace=workspace_b, user=owner, role="member")
    here = notify(owner, workspace_a, "here")
    there = notify(owner, workspace_b, "there")
    client = bearer(owner, workspace_a)
    ids = [n["id"] for n in client.get(f"{API}/notifications/").json()["results"]]
    assert ids == [here.pk]
    assert client.get(f"{API}/notifications/{there.pk}/").status_code == 404
    assert client.get(f"{API}/notifications/unread-count/").json() == {"unread": 1}
    assert client.post(f"{API}/notifications/read-all/").json() == {"marked": 1, "unread": 0}
    there.refresh_from_db()
    assert there.read_at is None


def test_notification_endpoints_need_authentication(api, owner, workspace_a):
    mine = notify(owner, workspace_a)
    anonymous = api()
    for method, path in [
        ("get", "/notifications/"),
        ("get", f"/notifications/{mine.pk}/"),
        ("get", "/notifications/unread-count/"),
        ("post", f"/notifications/{mine.pk}/read/"),
        ("post", "/notifications/read-all/"),
    ]:
        response = getattr(anonymous, method)(f"{API}{path}")
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "not_authenticated"


# --- Alert rules ---------------------------------------------------------------------------------


def rule_body(workspace, **values) -> dict:
    return {"workspace": workspace.pk, "name": "Roads", "filter": {"search": "road"}, **values}


def test_alert_rule_create_returns_the_secret_once(api, teammate, workspace_a):
    client = api(teammate)
    response = client.post(
        f"{API}/alert-rules/",
        rule_body(workspace_a, filter={"views_min": 10, "department": ["Roads", "Parks"]}),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    rule = AlertRule.objects.get()
    assert body["webhook_secret"] == rule.webhook_secret
    assert len(rule.webhook_secret) == 64
    assert (body["owner"], rule.owner) == (teammate.pk, teammate)
    assert response["Location"].endswith(f"/api/v1/alert-rules/{rule.pk}/")
    detail = client.get(f"{API}/alert-rules/{rule.pk}/")
    assert detail.status_code == 200
    assert "webhook_secret" not in detail.json()
    assert detail.json()["filter"] == {"views_min": 10, "department": ["Roads", "Parks"]}


def test_alert_rule_validation_names_the_field(api, owner, workspace_a):
    client = api(owner)
    bad_filter = client.post(
        f"{API}/alert-rules/",
        rule_body(workspace_a, filter={"views_min": "lots", "colour": "red", "crawl": 1}),
        format="json",
    )
    assert bad_filter.status_code == 400
    details = bad_filter.json()["error"]["details"]
    assert set(details) == {"filter"}
    assert set(details["filter"]) == {"colour", "crawl"}
    only_value = client.post(
        f"{API}/alert-rules/", rule_body(workspace_a, filter={"views_min": "lots"}), format="json"
    )
    assert list(only_value.json()["error"]["details"]["filter"]) == ["views_min"]
    private = client.post(
        f"{API}/alert-rules/",
        rule_body(workspace_a, webhook_url="http://192.168.1.10/hook"),
        format="json",
    )
    assert private.status_code == 400
    assert private.json()["error"]["details"] == {
        "webhook_url": ["refused: private address 192.168.1.10"]
    }
    assert not AlertRule.objects.exists()


def test_alert_rule_update_and_delete(api, owner, teammate, workspace_a):
    rule = make_rule(workspace_a, owner)
    client = api(teammate)  # a member of the workspace may change its rules
    put = client.put(
        f"{API}/alert-rules/{rule.pk}/",
        rule_body(workspace_a, name="Parks", filter={"search": "park"}, is_active=False),
        format="json",
    )
    assert put.status_code == 200, put.json()
    patch = client.patch(
        f"{API}/alert-rules/{rule.pk}/", {"email": "parks@example.org"}, format="json"
    )
    assert patch.status_code == 200
    rule.refresh_from_db()
    assert (rule.name, rule.filter, rule.is_active, rule.email) == (
        "Parks",
        {"search": "park"},
        False,
        "parks@example.org",
    )
    bad_put = client.put(
        f"{API}/alert-rules/{rule.pk}/", rule_body(workspace_a, filter=[1]), format="json"
    )
    assert bad_put.status_code == 400
    bad_patch = client.patch(
        f"{API}/alert-rules/{rule.pk}/", {"webhook_url": "http://[::1]/x"}, format="json"
    )
    assert bad_patch.status_code == 400
    assert "webhook_url" in bad_patch.json()["error"]["details"]
    assert client.delete(f"{API}/alert-rules/{rule.pk}/").status_code == 204
    assert not AlertRule.objects.exists()


def test_alert_rule_viewer_reads_but_cannot_write(api, owner, viewer, workspace_a):
    rule = make_rule(workspace_a, owner)
    client = api(viewer)
    assert client.get(f"{API}/alert-rules/").json()["results"][0]["id"] == rule.pk
    assert client.get(f"{API}/alert-rules/{rule.pk}/").status_code == 200
    created = client.post(f"{API}/alert-rules/", rule_body(workspace_a), format="json")
    assert created.status_code == 403
    put = client.put(f"{API}/alert-rules/{rule.pk}/", rule_body(workspace_a), format="json")
    assert put.status_code == 403
    patch = client.patch(f"{API}/alert-rules/{rule.pk}/", {"name": "x"}, format="json")
    assert patch.status_code == 403
    assert client.delete(f"{API}/alert-rules/{rule.pk}/").status_code == 403
    rule.refresh_from_db()
    assert rule.name == "Roads"


def test_alert_rules_of_other_workspaces_answer_404(api, owner, outsider, workspace_a, workspace_b):
    rule = make_rule(workspace_a, owner)
    client = api(outsider)
    assert client.get(f"{API}/alert-rules/").json()["results"] == []
    assert client.get(f"{API}/alert-rules/{rule.pk}/").status_code == 404
    body = rule_body(workspace_b)
    assert client.put(f"{API}/alert-rules/{rule.pk}/", body, format="json").status_code == 404
    patch = client.patch(f"{API}/alert-rules/{rule.pk}/", {"name": "x"}, format="json")
    assert patch.status_code == 404
    assert client.delete(f"{API}/alert-rules/{rule.pk}/").status_code == 404
    into_a = client.post(f"{API}/alert-rules/", rule_body(workspace_a), format="json")
    assert into_a.status_code == 400
    assert "workspace" in into_a.json()["error"]["details"]
    assert AlertRule.objects.get().name == "Roads"


def test_alert_rules_with_a_token_stay_in_its_workspace(owner, workspace_a, workspace_b):
    join(workspace=workspace_b, user=owner, role="member")
    here = make_rule(workspace_a, owner)
    there = make_rule(workspace_b, owner, name="Elsewhere")
    client = bearer(owner, workspace_a)
    assert [r["id"] for r in client.get(f"{API}/alert-rules/").json()["results"]] == [here.pk]
    assert client.get(f"{API}/alert-rules/{there.pk}/").status_code == 404
    other = client.post(f"{API}/alert-rules/", rule_body(workspace_b), format="json")
    assert other.status_code == 400


def test_alert_rules_list_paginates_with_a_budget(
    api, owner, workspace_a, django_assert_num_queries
):
    for i in range(3):
        make_rule(workspace_a, owner, name=f"r{i}")
    client = api(owner)
    assert client.get(f"{API}/alert-rules/?page_size=0").status_code == 400
    # the page (scoped by a membership subquery), the page's rules' channels: two queries
    with django_assert_num_queries(2):
        page = client.get(f"{API}/alert-rules/?page_size=2").json()
    assert [r["name"] for r in page["results"]] == ["r2", "r1"]
    assert [r["name"] for r in client.get(page["next"]).json()["results"]] == ["r0"]


def test_alert_rule_endpoints_need_authentication(api, owner, workspace_a):
    rule = make_rule(workspace_a, owner)
    anonymous = api()
    for method, path in [
        ("get", "/alert-rules/"),
        ("post", "/alert-rules/"),
        ("get", f"/alert-rules/{rule.pk}/"),
        ("put", f"/alert-rules/{rule.pk}/"),
        ("patch", f"/alert-rules/{rule.pk}/"),
        ("delete", f"/alert-rules/{rule.pk}/"),
    ]:
        assert getattr(anonymous, method)(f"{API}{path}").status_code == 401, (method, path)
