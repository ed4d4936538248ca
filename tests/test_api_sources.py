"""The sources API: create (validation, caps, schedules), read, update, delete, and the
preview of rules on one page."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from django_celery_beat.models import PeriodicTask

from crawls import events, services
from crawls.demo.board import DEMO_RULES, expected_bids
from crawls.models import Crawl, Source, Workspace
from tests import fake_api
from tests.clients import API, bearer, error_of
from tests.factories import START, absent_pk, finish_crawl, make_source, start_crawl

pytestmark = pytest.mark.django_db


# --- Sources: create --------------------------------------------------------------------------


def source_body(**values) -> dict:
    return {"name": "Gangnam board", "start_urls": [START], "rules": DEMO_RULES, **values}


def test_create_a_source_in_the_callers_only_workspace(api, teammate, workspace_a):
    response = api(teammate).post(f"{API}/sources/", source_body(max_pages=50), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    source = Source.objects.get(pk=body["id"])
    assert response["Location"] == f"http://testserver{API}/sources/{source.pk}/"
    assert (source.workspace, source.name, source.max_pages) == (workspace_a, "Gangnam board", 50)
    assert body["workspace"] == workspace_a.pk
    assert body["rules"] == DEMO_RULES
    assert body["overlap_policy"] == "skip"
    assert {"created_at", "updated_at", "schedule_cron", "retry_max"} <= set(body)


def test_a_member_of_several_workspaces_names_one(api, owner, workspace_a):
    own = services.workspace_create(owner=owner, name="Olivia's other")
    client = api(owner)
    response = client.post(f"{API}/sources/", source_body(), format="json")
    assert response.status_code == 400
    assert "several workspaces" in error_of(response)["details"]["workspace"][0]
    response = client.post(f"{API}/sources/", source_body(workspace=own.pk), format="json")
    assert response.status_code == 201
    assert Source.objects.get().workspace == own


def test_a_token_creates_in_its_workspace_and_nowhere_else(owner, workspace_a):
    own = services.workspace_create(owner=owner, name="Olivia's other")
    client = bearer(owner, own)
    response = client.post(f"{API}/sources/", source_body(), format="json")
    assert response.status_code == 201
    assert Source.objects.get().workspace == own
    body = source_body(name="Elsewhere", workspace=workspace_a.pk)
    response = client.post(f"{API}/sources/", body, format="json")
    assert response.status_code == 400
    assert "workspace" in error_of(response)["details"]
    assert Source.objects.count() == 1


def test_a_workspace_the_caller_is_not_in_does_not_exist(api, teammate, workspace_a, workspace_b):
    client = api(teammate)
    foreign = client.post(f"{API}/sources/", source_body(workspace=workspace_b.pk), format="json")
    absent = absent_pk(Workspace)
    missing = client.post(f"{API}/sources/", source_body(workspace=absent), format="json")
    for response, pk in ((foreign, workspace_b.pk), (missing, absent)):
        assert response.status_code == 400
        assert error_of(response)["details"] == {"workspace": [f"no workspace {pk} among yours"]}
    assert not Source.objects.exists()


def test_a_viewer_cannot_create_a_source(api, viewer, workspace_a):
    response = api(viewer).post(f"{API}/sources/", source_body(), format="json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    assert not Source.objects.exists()


@pytest.mark.parametrize(
    ("values", "field", "mentions"),
    [
        ({"rules": {"follow": ["a["]}}, "rules", "follow[0]"),
        ({"rules": {"fields": {"views": {"css": "td", "type": "text"}}}}, "rules", "views"),
        ({"start_urls": ["http://169.254.169.254/latest/"]}, "start_urls", "metadata"),
        ({"start_urls": []}, "start_urls", "empty"),
        ({"schedule_cron": "every day"}, "schedule_cron", "five fields"),
        ({"max_pages": "many"}, "max_pages", "valid integer"),
        ({"overlap_policy": "both"}, "overlap_policy", "valid choice"),
        ({"name": ""}, "name", "blank"),
    ],
)
def test_create_validation_names_the_bad_field(api, owner, workspace_a, values, field, mentions):
    response = api(owner).post(f"{API}/sources/", source_body(**values), format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert mentions in " ".join(error["details"][field])
    assert not Source.objects.exists()


def test_every_service_validation_problem_is_reported_at_once(api, owner, workspace_a):
    body = source_body(rules={"follow": ["a["], "items": [1]}, schedule_cron="61 * * * *")
    details = error_of(api(owner).post(f"{API}/sources/", body, format="json"))["details"]
    assert set(details) == {"rules", "schedule_cron"}
    assert {m.split(":")[0] for m in details["rules"]} == {"follow[0]", "items[0]"}


def test_a_source_name_is_unique_in_its_workspace(api, owner, source_a, workspace_b):
    response = api(owner).post(f"{API}/sources/", source_body(name=source_a.name), format="json")
    assert response.status_code == 400
    assert "exists" in error_of(response)["details"]["name"][0]
    make_source(workspace_b, source_a.name)  # the same name in another workspace is fine


# --- Sources: read, update, delete ------------------------------------------------------------


def test_retrieve_a_source_with_an_etag(api, viewer, source_a):
    client = api(viewer)
    response = client.get(f"{API}/sources/{source_a.pk}/")
    assert response.status_code == 200
    assert response.json()["name"] == "Seoul board"
    again = client.get(f"{API}/sources/{source_a.pk}/", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_patch_a_source_keeps_its_schedule_in_step(api, teammate, source_a):
    client = api(teammate)
    url = f"{API}/sources/{source_a.pk}/"
    response = client.patch(url, {"schedule_cron": "30 6 * * 1-5"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["schedule_cron"] == "30 6 * * 1-5"
    source_a.refresh_from_db()
    assert PeriodicTask.objects.get(pk=source_a.periodic_task_id).crontab.hour == "6"
    response = client.patch(url, {"name": "Renamed", "schedule_cron": ""}, format="json")
    assert response.json()["name"] == "Renamed"
    assert not PeriodicTask.objects.filter(task="crawls.scheduled").exists()


def test_put_replaces_a_source(api, owner, source_a):
    body = source_body(name="Replaced", max_depth=3, include_patterns=[r"/notices"])
    response = api(owner).put(f"{API}/sources/{source_a.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    source_a.refresh_from_db()
    assert (source_a.name, source_a.max_depth, source_a.include_patterns) == (
        "Replaced",
        3,
        ["/notices"],
    )
    response = api(owner).put(f"{API}/sources/{source_a.pk}/", {"name": "x"}, format="json")
    assert response.status_code == 400
    assert {"start_urls", "rules"} <= set(error_of(response)["details"])


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"rules": {"items": [1]}}, "rules"),
        ({"include_patterns": ["("]}, "include_patterns"),
        ({"name": "Other board"}, "name"),  # taken
        ({"workspace": "ABSENT"}, "workspace"),  # sources do not move
        ({"delay_seconds": -1}, "delay_seconds"),
    ],
)
def test_update_validation_names_the_bad_field(api, owner, workspace_a, source_a, values, field):
    make_source(workspace_a, "Other board")
    if values.get("workspace") == "ABSENT":
        values = {"workspace": absent_pk(Workspace)}
    response = api(owner).patch(f"{API}/sources/{source_a.pk}/", values, format="json")
    assert response.status_code == 400
    assert field in error_of(response)["details"]
    source_a.refresh_from_db()
    assert source_a.name == "Seoul board"
    assert source_a.rules == DEMO_RULES


def test_viewers_cannot_change_sources_and_only_managers_delete(
    api, owner, teammate, viewer, source_a
):
    url = f"{API}/sources/{source_a.pk}/"
    for method in ("patch", "put"):
        response = getattr(api(viewer), method)(url, {"name": "Vera's"}, format="json")
        assert response.status_code == 403
        assert error_of(response)["code"] == "permission_denied"
    assert api(viewer).delete(url).status_code == 403
    assert api(teammate).delete(url).status_code == 403  # members write but do not delete
    assert Source.objects.filter(pk=source_a.pk).exists()


def test_delete_a_source_with_its_crawls_and_schedule(api, owner, source_a):
    services.source_update(source=source_a, schedule_cron="0 * * * *")
    crawl = finish_crawl(start_crawl(source_a))
    response = api(owner).delete(f"{API}/sources/{source_a.pk}/")
    assert response.status_code == 204
    assert not Source.objects.filter(pk=source_a.pk).exists()
    assert not Crawl.objects.filter(pk=crawl.pk).exists()
    assert not PeriodicTask.objects.filter(task="crawls.scheduled").exists()


def test_a_source_with_an_active_crawl_is_not_deleted(api, owner, source_a):
    crawl = start_crawl(source_a)
    response = api(owner).delete(f"{API}/sources/{source_a.pk}/")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict"
    assert error["details"] == {"active_crawl": crawl.pk}
    assert Source.objects.filter(pk=source_a.pk).exists()


# --- Sources: preview -------------------------------------------------------------------------


def test_preview_extracts_fields_from_one_page(api, teammate, workspace_a, board):
    url, expected = next(iter(expected_bids(board.config, base_url=board.base_url).items()))
    client = api(teammate)
    response = client.post(
        f"{API}/sources/preview/", {"rules": DEMO_RULES, "url": url}, format="json"
    )
    assert response.status_code == 200, response.json()
    preview = response.json()
    assert (preview["url"], preview["status"], preview["errors"]) == (url, 200, {})
    assert preview["fields"]["title"] == expected["title"]
    assert preview["fields"]["views"] == expected["views"]

    source = make_source(workspace_a, start_urls=[f"{board.base_url}/notices"])
    listing = client.post(f"{API}/sources/{source.pk}/preview/", {}, format="json").json()
    assert listing["url"] == f"{board.base_url}/notices"  # the first start URL by default
    assert len(listing["items"]) >= 15
    detail = client.post(f"{API}/sources/{source.pk}/preview/", {"url": url}, format="json")
    assert detail.json()["fields"]["title"] == expected["title"]


def test_preview_reports_bad_rules_by_path(api, owner, workspace_a, board):
    body = {"rules": {"items": [1], "follow": "nav a"}, "url": f"{board.base_url}/notices"}
    response = api(owner).post(f"{API}/sources/preview/", body, format="json")
    assert response.status_code == 400
    rules_errors = error_of(response)["details"]["rules"]
    assert any(message.startswith("items[0]:") for message in rules_errors)
    response = api(owner).post(f"{API}/sources/preview/", {"rules": DEMO_RULES}, format="json")
    assert error_of(response)["details"] == {"url": ["This field is required."]}


@pytest.fixture
def listener():
    """A local TCP port that tells whether anything connected to it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)

        def connected() -> bool:
            try:
                server.accept()[0].close()
            except TimeoutError:
                return False
            return True

        yield SimpleNamespace(port=server.getsockname()[1], connected=connected)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),  # a literal address: refused before any connection
        ("localhost", "loopback"),  # a name resolving inside: refused at connect time
    ],
)
def test_preview_refuses_internal_urls_without_fetching_them(
    api, owner, workspace_a, listener, host, reason
):
    url = f"http://{host}:{listener.port}/admin"
    source = make_source(workspace_a, "Board")
    for response in (
        api(owner).post(
            f"{API}/sources/preview/", {"rules": DEMO_RULES, "url": url}, format="json"
        ),
        api(owner).post(f"{API}/sources/{source.pk}/preview/", {"url": url}, format="json"),
    ):
        assert response.status_code == 400
        (message,) = error_of(response)["details"]["url"]
        assert message.startswith("refused: ")
        assert reason in message
    assert not listener.connected()


def test_preview_is_for_writers(api, viewer, workspace_a, source_a):
    client = api(viewer)
    body = {"rules": DEMO_RULES, "url": START}
    response = client.post(f"{API}/sources/preview/", body, format="json")
    assert response.status_code == 403
    response = client.post(f"{API}/sources/{source_a.pk}/preview/", {}, format="json")
    assert response.status_code == 403


# --- Kinds and secrets ------------------------------------------------------------------------

SECRET = "s3cret-service-key+/="
RULES_WITH_SECRET = {**DEMO_RULES, "items": ['a[data-key="{secret.service_key}"]']}


def test_a_source_has_a_kind_and_write_only_secrets(api, owner, workspace_a):
    client = api(owner)
    body = source_body(rules=RULES_WITH_SECRET, secrets={"service_key": SECRET, "other": "xyz1"})
    created = client.post(f"{API}/sources/", body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert (data["kind"], data["secret_names"]) == ("html", ["other", "service_key"])
    assert "secrets" not in data
    source = Source.objects.get(pk=data["id"])
    assert source.secrets == {"service_key": SECRET, "other": "xyz1"}

    # PATCH replaces the set: null keeps a stored value, a name left out is removed.
    patched = client.patch(
        f"{API}/sources/{source.pk}/", {"secrets": {"service_key": None}}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["secret_names"] == ["service_key"]
    source.refresh_from_db()
    assert source.secrets == {"service_key": SECRET}
    # A PATCH without secrets keeps them.
    client.patch(f"{API}/sources/{source.pk}/", {"max_pages": 7}, format="json")
    source.refresh_from_db()
    assert source.secrets == {"service_key": SECRET}


@pytest.mark.parametrize(
    ("values", "field", "mentions"),
    [
        ({"kind": "csv"}, "kind", '"csv" is not a valid choice.'),
        ({"secrets": {"Bad": "value"}}, "secrets", "'Bad': a name is lower case"),
        ({"secrets": {"empty": ""}}, "secrets", "empty: a non-empty string"),
        ({"secrets": "key"}, "secrets", 'Expected a dictionary of items but got type "str".'),
        ({"rules": RULES_WITH_SECRET}, "secrets", "{secret.service_key}"),
    ],
)
def test_kind_and_secrets_errors_name_the_field(api, owner, workspace_a, values, field, mentions):
    response = api(owner).post(f"{API}/sources/", source_body(**values), format="json")
    assert response.status_code == 400
    messages = error_of(response)["details"][field]
    assert any(mentions in message for message in messages), messages


def test_changing_the_kind_validates_the_rules_again(api, owner, source_a):
    # Needs the JSON API rules' parser (crawls.engine.api_rules, another helper of issue 12).
    response = api(owner).patch(f"{API}/sources/{source_a.pk}/", {"kind": "json"}, format="json")
    assert response.status_code == 400
    assert error_of(response)["details"]["rules"]
    source_a.refresh_from_db()
    assert source_a.kind == "html"


def test_a_secret_never_appears_in_an_api_response(api, owner, workspace_a, board):
    url, expected = next(iter(expected_bids(board.config, base_url=board.base_url).items()))
    title = expected["title"]  # a "secret" the page shows: the preview must hide it
    client = api(owner)
    answers = []
    body = source_body(
        rules=RULES_WITH_SECRET, start_urls=[url], secrets={"service_key": SECRET, "title": title}
    )
    created = client.post(f"{API}/sources/", body, format="json")
    assert created.status_code == 201, created.json()
    source_id = created.json()["id"]
    answers.append(created)
    answers.append(client.get(f"{API}/sources/"))
    answers.append(client.get(f"{API}/sources/{source_id}/"))
    answers.append(
        client.patch(
            f"{API}/sources/{source_id}/",
            {"secrets": {"service_key": None, "title": None}, "max_pages": 9},
            format="json",
        )
    )
    answers.append(
        client.put(
            f"{API}/sources/{source_id}/",
            {**body, "secrets": {"service_key": SECRET, "title": title}},
            format="json",
        )
    )
    preview = client.post(f"{API}/sources/{source_id}/preview/", {}, format="json")
    assert preview.status_code == 200, preview.json()
    assert preview.json()["fields"]["title"] == "{secret.title}"  # redacted
    answers.append(preview)
    rules_preview = client.post(
        f"{API}/sources/preview/",
        {"rules": DEMO_RULES, "url": url, "secrets": {"title": title}},
        format="json",
    )
    assert rules_preview.json()["fields"]["title"] == "{secret.title}"
    answers.append(rules_preview)
    bad = client.patch(f"{API}/sources/{source_id}/", {"secrets": {"BAD": SECRET}}, format="json")
    assert bad.status_code == 400
    answers.append(bad)
    # A crawl of the source with an event as the engine writes it (URLs redacted).
    crawl = start_crawl(Source.objects.get(pk=source_id))
    events.event_append(
        crawl_id=crawl.pk,
        workspace_id=crawl.workspace_id,
        type=events.PAGE_ERROR,
        payload={"url": "https://bids.example.org/api?serviceKey={secret.service_key}"},
    )
    answers.append(client.get(f"{API}/crawls/{crawl.pk}/"))
    answers.append(client.get(f"{API}/crawls/{crawl.pk}/events/"))
    answers.append(client.get(f"{API}/crawls/{crawl.pk}/frontier/"))
    assert answers[-2].json()["results"], "the event is listed"
    for answer in answers:
        text = answer.content.decode()
        assert SECRET not in text, answer.request["PATH_INFO"]
        assert "s3cret-service-key%2B" not in text
        assert title not in text, answer.request["PATH_INFO"]


def test_preview_of_a_json_api_through_the_api(api, owner, workspace_a, settings):
    # Needs the JSON API parser and reader and Fetcher.fetch (other helpers of issue 12).
    open_api = fake_api.start()
    settings.CRAWL_ALLOWLIST = [*settings.CRAWL_ALLOWLIST, open_api.address]
    try:
        body = {
            "kind": "json",
            "rules": fake_api.JSON_RULES,
            "url": f"{open_api.base_url}/bids",
            "secrets": {"service_key": fake_api.SERVICE_KEY},
        }
        response = api(owner).post(f"{API}/sources/preview/", body, format="json")
        assert response.status_code == 200, response.json()
        assert response.json()["records_total"] == fake_api.PAGE_SIZE
        assert fake_api.SERVICE_KEY not in response.content.decode()
        body["secrets"] = {"service_key": "wrong-key-123"}
        response = api(owner).post(f"{API}/sources/preview/", body, format="json")
        assert response.json()["error"]["message"] == "SERVICE KEY IS NOT REGISTERED ERROR."
    finally:
        open_api.stop()
