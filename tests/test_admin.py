"""The Django admin as an operator's tool: every page renders, search and filters, the actions
(through services), source validation, scoping of non-superuser staff, bounded queries and no
COUNT(*) over the big tables."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from django.contrib import admin as django_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from crawls import events, services
from crawls.admin import base
from crawls.demo.board import DEMO_RULES
from crawls.engine.urls import url_hash
from crawls.models import (
    ApiToken,
    Bid,
    BidRevision,
    Crawl,
    CrawlEvent,
    FrontierUrl,
    Membership,
    Source,
    Workspace,
)
from tests.factories import START, make_source

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
BIG_TABLES = [Bid, BidRevision, CrawlEvent, FrontierUrl]
_numbers = itertools.count(1)


def start(source) -> Crawl:
    return services.crawl_start(source=source, workers=0)


def finish(crawl, status=Crawl.Status.SUCCEEDED) -> Crawl:
    Crawl.objects.filter(pk=crawl.pk).update(status=status, finished_at=NOW)
    crawl.refresh_from_db()
    return crawl


def add_bids(source, crawl, n: int, **fields) -> list[Bid]:
    """`n` bids of `source`, first and last seen by `crawl`."""
    bids = []
    for _ in range(n):
        i = next(_numbers)
        url = f"https://bids.example.org/notices/{i}"
        values = {
            "workspace_id": source.workspace_id, "source": source, "url": url,
            "url_hash": url_hash(url), "title": f"Notice {i}", "content_hash": f"{i:032x}",
            "first_seen_at": NOW, "last_seen_at": NOW, "changed_at": NOW, "first_crawl": crawl,
            "last_crawl": crawl, **fields,
        }  # fmt: skip
        bids.append(Bid(**values))
    return Bid.objects.bulk_create(bids)


def add_rows(crawl, n: int) -> None:
    """`n` more rows in each big table, all of `crawl`."""
    source = crawl.source
    for bid in add_bids(source, crawl, n):
        BidRevision.objects.create(
            workspace_id=bid.workspace_id, bid=bid, crawl=crawl, changes={"title": ["a", "b"]}
        )
    for _ in range(n):
        events.event_append(crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.ITEMS)
        url = f"https://bids.example.org/page/{next(_numbers)}"
        FrontierUrl.objects.create(
            workspace_id=crawl.workspace_id, crawl=crawl, url=url, url_hash=url_hash(url)
        )


def changelist(model) -> str:
    return reverse(f"admin:crawls_{model._meta.model_name}_changelist")


def change(model, pk: int) -> str:
    return reverse(f"admin:crawls_{model._meta.model_name}_change", args=[pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def act(client, model, action: str, rows) -> list[str]:
    """Run an admin action on `rows`; the messages it left."""
    data = {"action": action, "index": 0, "_selected_action": [row.pk for row in rows]}
    response = client.post(changelist(model), data)
    assert response.status_code == 302, response.content[:500]
    return messages_of(response)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("sam", "sam@example.org", "pw-sam-1")


@pytest.fixture
def admin(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def crawl_a(source_a):
    """A finished crawl of source A with 5 rows in each big table (and its seed URL)."""
    crawl = finish(start(source_a))
    add_rows(crawl, 5)
    return crawl


@pytest.fixture
def token(owner, workspace_a):
    token, _ = services.token_create(user=owner, workspace=workspace_a, name="ci")
    return token


# --- Pages -------------------------------------------------------------------------------------


MODELS = [Workspace, Membership, Source, Crawl, FrontierUrl, Bid, BidRevision, CrawlEvent, ApiToken]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_admin_changelist_and_change_page_render(admin, crawl_a, token, model):
    response = admin.get(changelist(model))
    assert response.status_code == 200
    row = model.objects.order_by("pk").first()
    assert row.pk in ids_listed(response)
    response = admin.get(change(model, row.pk))
    assert response.status_code == 200
    assert response.context["original"].pk == row.pk


def test_admin_token_page_never_shows_the_hash(admin, token):
    page = admin.get(change(ApiToken, token.pk)).content.decode()
    assert token.prefix in page
    assert token.key_hash not in page
    assert admin.get(reverse("admin:crawls_apitoken_add")).status_code == 403


def test_admin_crawl_page_links_its_source_events_and_bids(admin, crawl_a):
    page = admin.get(change(Crawl, crawl_a.pk)).content.decode()
    assert change(Source, crawl_a.source_id) in page
    assert f"{changelist(CrawlEvent)}?crawl__id__exact={crawl_a.pk}" in page
    assert f"{changelist(Bid)}?crawl={crawl_a.pk}" in page
    source_page = admin.get(change(Source, crawl_a.source_id)).content.decode()
    assert f"{changelist(Crawl)}?source__id__exact={crawl_a.source_id}" in source_page


# --- Search and filters ------------------------------------------------------------------------


def ids_listed(response) -> set[int]:
    return {row.pk for row in response.context["cl"].result_list}


def test_admin_bid_search_finds_titles_and_references(admin, crawl_a):
    [wanted] = add_bids(
        crawl_a.source, crawl_a, 1, title="Bridge repair 다리 보수", reference="R-7"
    )
    assert ids_listed(admin.get(changelist(Bid), {"q": "REPAIR 다리"})) == {wanted.pk}
    assert ids_listed(admin.get(changelist(Bid), {"q": "R-7"})) == {wanted.pk}
    assert ids_listed(admin.get(changelist(Bid), {"q": "no such notice"})) == set()


def test_admin_bids_show_and_filter_the_procurement_columns(admin, crawl_a):
    [road] = add_bids(
        crawl_a.source,
        crawl_a,
        1,
        currency="KRW",
        status=Bid.Status.CANCELLED,
        procurement_method="open",
        classifications=["CPV:45232410", "UNSPSC:72141000"],
        version="2026-03-01T00:00:00Z/r1",
    )
    [lights] = add_bids(crawl_a.source, crawl_a, 1, currency="MNT", status=Bid.Status.ACTIVE)
    assert ids_listed(admin.get(changelist(Bid), {"status__exact": "cancelled"})) == {road.pk}
    assert ids_listed(admin.get(changelist(Bid), {"currency": "KRW"})) == {road.pk}
    by_rare = admin.get(changelist(Bid), {"currency": "mnt"})
    assert ids_listed(by_rare) == {lights.pk}
    assert "?currency=MNT" in by_rare.content.decode()  # offered while chosen
    assert ids_listed(admin.get(changelist(Bid), {"q": "CPV:45232410"})) == {road.pk}
    assert ids_listed(admin.get(changelist(Bid), {"q": "CPV:4523"})) == set()  # exact codes
    listed = admin.get(changelist(Bid), {"status__exact": "cancelled"}).content.decode()
    assert "Cancelled" in listed
    assert ">KRW<" in listed
    page = admin.get(change(Bid, road.pk)).content.decode()
    for text in ("KRW", "Cancelled", "open", "CPV:45232410", "UNSPSC:72141000"):
        assert text in page, text
    assert "2026-03-01T00:00:00Z/r1" not in page  # the publisher's version stays internal
    assert 'name="status"' not in page  # read-only


def test_admin_filters_narrow_the_lists(admin, crawl_a, source_b):
    other = start(source_b)
    add_rows(other, 2)
    by_crawl = admin.get(changelist(Bid), {"crawl": other.pk})
    assert ids_listed(by_crawl) == set(
        Bid.objects.filter(last_crawl=other).values_list("pk", flat=True)
    )
    assert len(ids_listed(by_crawl)) == 2
    by_source = admin.get(changelist(Bid), {"source__id__exact": crawl_a.source_id})
    assert len(ids_listed(by_source)) == 5
    queued = admin.get(changelist(Crawl), {"status__exact": "queued"})
    assert ids_listed(queued) == {other.pk}
    items = admin.get(changelist(CrawlEvent), {"type": events.ITEMS, "crawl__id__exact": other.pk})
    assert len(ids_listed(items)) == 2
    leased = admin.get(changelist(FrontierUrl), {"state__exact": "leased"})
    assert ids_listed(leased) == set()
    assert admin.get(changelist(Source), {"q": "Busan"}).context["cl"].result_count == 1


# --- Actions -----------------------------------------------------------------------------------


def test_admin_start_crawl_queues_one(
    admin, source_a, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        notes = act(admin, Source, "start_crawl", [source_a])
    crawl = Crawl.objects.get(source=source_a)
    assert crawl.status == Crawl.Status.QUEUED
    assert ("crawls.run", [crawl.pk]) in sent_tasks
    queued = CrawlEvent.objects.get(crawl=crawl, type=events.QUEUED)
    assert queued.payload["trigger"] == "admin"
    assert "1 crawl(s) started." in notes


def test_admin_start_crawl_reports_a_conflict(admin, source_a, sent_tasks):
    active = start(source_a)
    notes = act(admin, Source, "start_crawl", [source_a])
    assert Crawl.objects.filter(source=source_a).count() == 1
    assert any(f"crawl {active.pk} of this source is still queued" in n for n in notes)
    assert "0 crawl(s) started." in notes


def test_admin_start_crawl_reports_backpressure(admin, workspace_a, settings, sent_tasks):
    settings.CRAWL_MAX_ACTIVE_PER_WORKSPACE = 1
    first, second = make_source(workspace_a, "One"), make_source(workspace_a, "Two")
    notes = act(admin, Source, "start_crawl", [first, second])
    assert Crawl.objects.count() == 1
    assert any("the most it may have" in n for n in notes)
    assert "1 crawl(s) started." in notes


def test_admin_cancel_cancels_a_queued_crawl(admin, source_a, crawl_a):
    queued = start(source_a)
    notes = act(admin, Crawl, "cancel", [queued, crawl_a])
    queued.refresh_from_db()
    assert queued.status == Crawl.Status.CANCELLED
    assert f"Crawl {queued.pk}: cancelled." in notes
    assert f"Crawl {crawl_a.pk} is succeeded: nothing to cancel." in notes


def test_admin_retry_starts_a_new_crawl_of_a_finished_one(admin, source_a, crawl_a, sent_tasks):
    notes = act(admin, Crawl, "retry", [crawl_a])
    new = Crawl.objects.exclude(pk=crawl_a.pk).get()
    assert (new.source_id, new.status) == (source_a.pk, Crawl.Status.QUEUED)
    assert f"Crawl {crawl_a.pk}: retried as crawl {new.pk}." in notes
    notes = act(admin, Crawl, "retry", [new])
    assert Crawl.objects.count() == 2
    assert any(f"Crawl {new.pk}: not retried" in n for n in notes)


def test_admin_revoke_revokes_tokens(admin, token):
    notes = act(admin, ApiToken, "revoke", [token])
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "1 token(s) revoked." in notes


# --- Saving sources ----------------------------------------------------------------------------


def source_form(workspace, **values) -> dict:
    form = {
        "workspace": workspace.pk, "name": "Daejeon board", "start_urls": f"{START}\n",
        "allowed_hosts": "", "max_depth": 10, "max_pages": 100, "include_patterns": "",
        "exclude_patterns": "", "concurrency_per_host": 8, "delay_seconds": 0, "obey_robots": "on",
        "user_agent": "", "rules": json.dumps(DEMO_RULES), "schedule_cron": "",
        "schedule_timezone": "UTC", "overlap_policy": "skip", "retry_max": 2,
        "retry_backoff_seconds": 60, "time_limit_seconds": 3600,
    }  # fmt: skip
    return {**form, **values}


def test_admin_source_add_validates_through_the_service(admin, workspace_a):
    bad = source_form(
        workspace_a, rules='{"item": {"fields": 3}}', start_urls="http://127.0.0.1/x",
        schedule_cron="every day",
    )  # fmt: skip
    response = admin.post(reverse("admin:crawls_source_add"), bad)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"rules", "start_urls", "schedule_cron"}
    assert not Source.objects.exists()


def test_admin_source_add_and_change_sync_the_schedule(admin, workspace_a):
    form = source_form(workspace_a, schedule_cron="0 6 * * 1-5")
    response = admin.post(reverse("admin:crawls_source_add"), form)
    assert response.status_code == 302
    source = Source.objects.get(name="Daejeon board")
    assert source.start_urls == [START]
    assert source.periodic_task.crontab.hour == "6"
    form = source_form(workspace_a, schedule_cron="")
    response = admin.post(change(Source, source.pk), form)
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.periodic_task is None


def test_admin_source_change_refuses_a_duplicate_name(admin, workspace_a, source_a):
    other = make_source(workspace_a, "Other board")
    response = admin.post(change(Source, other.pk), source_form(workspace_a, name=source_a.name))
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["name"]
    other.refresh_from_db()
    assert other.name == "Other board"


RULES_WITH_SECRET = {**DEMO_RULES, "items": ['a[data-key="{secret.service_key}"]']}
SECRET = "admin-secret-value-77"


def test_admin_source_secrets_are_write_only_and_kind_is_listed(admin, workspace_a):
    form = source_form(
        workspace_a, kind="html", rules=json.dumps(RULES_WITH_SECRET),
        secrets_text=f"service_key={SECRET}\nspare=spare-value-88\n",
    )  # fmt: skip
    response = admin.post(reverse("admin:crawls_source_add"), form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    source = Source.objects.get(name="Daejeon board")
    assert source.secrets == {"service_key": SECRET, "spare": "spare-value-88"}

    page = admin.get(change(Source, source.pk))
    html = page.content.decode()
    assert "Set: service_key, spare." in html
    assert SECRET not in html
    assert "spare-value-88" not in html
    listing = admin.get(reverse("admin:crawls_source_changelist"), {"kind__exact": "html"})
    assert "Daejeon board" in listing.content.decode()
    assert (
        admin.get(reverse("admin:crawls_source_changelist"), {"kind__exact": "ocds"})
        .context["cl"]
        .result_count
        == 0
    )

    # Lines not written keep their values; NAME= removes one.
    response = admin.post(change(Source, source.pk), {**form, "secrets_text": "spare=\n"})
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.secrets == {"service_key": SECRET}


def test_admin_source_form_refuses_a_missing_secret_and_never_echoes_one(admin, workspace_a):
    form = source_form(
        workspace_a, rules=json.dumps(RULES_WITH_SECRET), secrets_text=f"Bad-Name={SECRET}\n"
    )
    response = admin.post(reverse("admin:crawls_source_add"), form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["secrets_text"]
    assert "'Bad-Name': a name is lower case" in errors["secrets_text"][0]
    assert SECRET not in response.content.decode()  # not even what was typed
    form["secrets_text"] = ""
    response = admin.post(reverse("admin:crawls_source_add"), form)
    assert "{secret.service_key}" in response.context["adminform"].form.errors["secrets_text"][0]
    assert not Source.objects.exists()


def test_admin_source_form_validates_rules_of_the_kind(admin, workspace_a):
    # Needs the JSON API rules' parser (crawls.engine.api_rules, another helper of issue 12).
    response = admin.post(reverse("admin:crawls_source_add"), source_form(workspace_a, kind="json"))
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["rules"]


def test_admin_source_with_an_active_crawl_cannot_be_deleted(admin, source_a):
    start(source_a)
    response = admin.post(
        reverse("admin:crawls_source_delete", args=[source_a.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert Source.objects.filter(pk=source_a.pk).exists()


# --- Workspaces and members ------------------------------------------------------------------


def test_admin_membership_changes_go_through_services(admin, workspace_a, owner, teammate):
    services.token_create(user=teammate, workspace=workspace_a, name="laptop")
    member = Membership.objects.get(workspace=workspace_a, user=teammate)
    response = admin.post(change(Membership, member.pk), {"role": "admin"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == Membership.Role.ADMIN
    admin.post(reverse("admin:crawls_membership_delete", args=[member.pk]), {"post": "yes"})
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert ApiToken.objects.get(user=teammate).revoked_at is not None  # membership_remove did


def test_admin_keeps_a_workspaces_last_owner(admin, workspace_a, owner):
    sole = Membership.objects.get(workspace=workspace_a, user=owner)
    response = admin.post(change(Membership, sole.pk), {"role": "viewer"})
    assert "a workspace needs at least one owner" in messages_of(response)
    url = reverse("admin:crawls_membership_delete", args=[sole.pk])
    response = admin.post(url, {"post": "yes"})
    assert "a workspace needs at least one owner" in messages_of(response)
    sole.refresh_from_db()
    assert sole.role == Membership.Role.OWNER


def test_admin_workspace_members_inline_goes_through_services(admin, workspace_a, owner, outsider):
    formset = admin.get(change(Workspace, workspace_a.pk)).context["inline_admin_formsets"][0]
    prefix, rows = formset.formset.prefix, formset.formset.initial_forms
    data = {
        "name": "Seoul & Incheon tenders",
        f"{prefix}-TOTAL_FORMS": len(rows) + 1,
        f"{prefix}-INITIAL_FORMS": len(rows),
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for i, form in enumerate([*rows, None]):
        member = form.instance if form else Membership(user=outsider, role="member")
        row = {
            "id": member.pk or "",
            "user": member.user_id,
            "workspace": workspace_a.pk,
            # The sole owner asks to become a viewer: refused; the newcomer is added.
            "role": "viewer" if member.user_id == owner.pk else member.role,
        }
        data.update({f"{prefix}-{i}-{name}": value for name, value in row.items()})
    response = admin.post(change(Workspace, workspace_a.pk), data)
    assert response.status_code == 302
    assert "a workspace needs at least one owner" in messages_of(response)
    roles = dict(workspace_a.memberships.values_list("user_id", "role"))
    assert (roles[owner.pk], roles[outsider.pk]) == ("owner", "member")
    workspace_a.refresh_from_db()
    assert workspace_a.name == "Seoul & Incheon tenders"


def test_admin_workspace_delete_drops_its_schedules(admin, workspace_b):
    source = make_source(workspace_b, "Nightly", schedule_cron="0 2 * * *")
    task_id = source.periodic_task_id
    url = reverse("admin:crawls_workspace_delete", args=[workspace_b.pk])
    assert admin.post(url, {"post": "yes"}).status_code == 302
    assert not Workspace.objects.filter(pk=workspace_b.pk).exists()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()


# --- Scoping -----------------------------------------------------------------------------------


def staff(user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="crawls"))
    return user


def test_admin_staff_see_only_their_workspaces(client, teammate, source_a, source_b):
    client.force_login(staff(teammate))
    assert ids_listed(client.get(changelist(Source))) == {source_a.pk}
    assert client.get(change(Source, source_a.pk)).status_code == 200
    assert client.get(change(Source, source_b.pk)).status_code == 302  # "does not exist"
    filters = client.get(changelist(Source)).content.decode()
    assert "Seoul tenders" in filters
    assert "Busan notices" not in filters


def test_admin_viewers_cannot_start_crawls(client, viewer, source_a, sent_tasks):
    client.force_login(staff(viewer))
    notes = act(client, Source, "start_crawl", [source_a])
    assert not Crawl.objects.exists()
    assert "0 crawl(s) started." in notes


# --- Queries -----------------------------------------------------------------------------------


def queries_of(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def grow(crawl, n: int) -> None:
    """`n` more rows in every table."""
    add_rows(crawl, n)
    workspace, source = crawl.workspace, crawl.source
    Crawl.objects.bulk_create(
        Crawl(workspace=workspace, source=source, status=Crawl.Status.SUCCEEDED) for _ in range(n)
    )
    names = [f"x{next(_numbers)}" for _ in range(n)]
    Workspace.objects.bulk_create(Workspace(name=name, slug=name) for name in names)
    Source.objects.bulk_create(
        Source(workspace=workspace, name=name, start_urls=[START], rules=DEMO_RULES)
        for name in names
    )
    users = get_user_model().objects.bulk_create(get_user_model()(username=name) for name in names)
    Membership.objects.bulk_create(Membership(workspace=workspace, user=user) for user in users)
    ApiToken.objects.bulk_create(
        ApiToken(workspace=workspace, user=user, name="t", prefix=user.username, key_hash="0")
        for user in users
    )


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_admin_changelist_queries_do_not_grow_with_rows(
    admin, crawl_a, token, model, django_assert_max_num_queries
):
    queries_of(admin, changelist(model))  # caches warmed (content types, ...)
    few = queries_of(admin, changelist(model))
    grow(crawl_a, 55)
    # Session, user, the filters' choices (sources, workspaces; Crawl and Bid only), the count
    # (capped on the big tables) and the page with its related rows joined.
    with django_assert_max_num_queries(6):
        many = queries_of(admin, changelist(model))
    assert len(many) == len(few)


@pytest.mark.parametrize("model", BIG_TABLES, ids=lambda m: m.__name__)
def test_admin_big_tables_never_count_the_whole_table(admin, crawl_a, model, monkeypatch):
    monkeypatch.setattr(base.CappedCountPaginator, "cap", 3)
    monkeypatch.setattr(django_admin.site.get_model_admin(model), "list_per_page", 2)
    sql = queries_of(admin, changelist(model))
    counts = [q for q in sql if "COUNT(" in q.upper()]
    assert counts
    assert all("LIMIT 4" in q for q in counts), counts
    page = admin.get(changelist(model)).content.decode()
    assert f"3+ {model._meta.verbose_name_plural}" in page
