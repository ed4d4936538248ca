"""Who may change whom in a workspace, enforced once in the services and obeyed by every adapter:
only an owner grants or takes away the owner role, a workspace always keeps an owner (also when
two transactions race), superusers act as owners in the Django admin only."""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse

from crawls import services
from crawls.models import ApiToken, Membership, Workspace
from project import dbscope
from tests.clients import bearer, signed_in
from tests.factories import join

User = get_user_model()
Role = Membership.Role


@pytest.fixture
def ada(workspace_a):
    """An admin of workspace A, and Django staff with every permission on the crawls models."""
    user = User.objects.create_user("ada", password="pw-ada-1", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="crawls"))
    join(workspace=workspace_a, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def sam(db):
    return User.objects.create_superuser("sam", "sam@example.org", "pw-sam-1")


@pytest.fixture
def newcomer(db):
    return User.objects.create_user("nina", password="pw-nina-1")


def row(workspace, user) -> Membership:
    return Membership.objects.get(workspace=workspace, user=user)


def roles(workspace) -> dict[str, str]:
    return dict(workspace.memberships.values_list("user__username", "role"))


def refusal(error: ValidationError) -> tuple[type, dict]:
    return type(error), error.message_dict


OWNERS_ONLY = (services.RoleRefused, {"role": [services.ROLE_OWNERS_ONLY]})
MANAGERS_ONLY = (services.RoleRefused, {"role": [services.ROLE_MANAGERS_ONLY]})
LAST_OWNER = (ValidationError, {"role": [services.ROLE_LAST_OWNER]})


# --- The services ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_membership_services_refuse_an_admin_anything_about_owners(
    workspace_a, owner, teammate, ada, newcomer
):
    before = roles(workspace_a)
    with pytest.raises(ValidationError) as promote:
        services.membership_role_change(
            membership=row(workspace_a, teammate), role=Role.OWNER, actor=ada
        )
    with pytest.raises(ValidationError) as demote:
        services.membership_role_change(
            membership=row(workspace_a, owner), role=Role.ADMIN, actor=ada
        )
    with pytest.raises(ValidationError) as remove:
        services.membership_remove(membership=row(workspace_a, owner), actor=ada)
    with pytest.raises(ValidationError) as add:
        services.membership_add(workspace=workspace_a, user=newcomer, role=Role.OWNER, actor=ada)
    assert [refusal(e.value) for e in (promote, demote, remove, add)] == [OWNERS_ONLY] * 4
    assert roles(workspace_a) == before


@pytest.mark.django_db
def test_membership_services_let_an_admin_manage_members_viewers_and_admins(
    workspace_a, teammate, viewer, ada, newcomer
):
    services.membership_role_change(membership=row(workspace_a, viewer), role=Role.ADMIN, actor=ada)
    services.membership_add(workspace=workspace_a, user=newcomer, role=Role.VIEWER, actor=ada)
    services.membership_remove(membership=row(workspace_a, teammate), actor=ada)
    assert roles(workspace_a) == {
        "olivia": "owner",
        "ada": "admin",
        "vera": "admin",
        "nina": "viewer",
    }


@pytest.mark.django_db
def test_membership_services_refuse_members_and_viewers_but_let_them_leave(
    workspace_a, teammate, viewer
):
    for actor in (teammate, viewer):
        with pytest.raises(ValidationError) as error:
            services.membership_role_change(
                membership=row(workspace_a, viewer), role=Role.ADMIN, actor=actor
            )
        assert refusal(error.value) == MANAGERS_ONLY
    with pytest.raises(ValidationError) as error:
        services.membership_remove(membership=row(workspace_a, viewer), actor=teammate)
    assert refusal(error.value) == MANAGERS_ONLY
    services.membership_remove(membership=row(workspace_a, viewer), actor=viewer)
    assert set(roles(workspace_a)) == {"olivia", "tomas"}


@pytest.mark.django_db
def test_membership_services_let_an_owner_grant_and_take_away_owner(workspace_a, owner, teammate):
    services.membership_role_change(
        membership=row(workspace_a, teammate), role=Role.OWNER, actor=owner
    )
    assert row(workspace_a, teammate).role == Role.OWNER
    services.membership_role_change(
        membership=row(workspace_a, teammate), role=Role.MEMBER, actor=row(workspace_a, owner)
    )
    assert row(workspace_a, teammate).role == Role.MEMBER


@pytest.mark.django_db
def test_membership_role_change_judges_the_stored_role_not_the_callers_copy(
    workspace_a, owner, ada
):
    copy = row(workspace_a, owner)
    copy.role = Role.MEMBER  # what an admin form does before saving
    with pytest.raises(ValidationError) as error:
        services.membership_role_change(membership=copy, role=Role.MEMBER, actor=ada)
    assert refusal(error.value) == OWNERS_ONLY
    assert row(workspace_a, owner).role == Role.OWNER


@pytest.mark.django_db
def test_a_superuser_acts_as_owner_but_a_membership_only_with_its_role(
    workspace_a, teammate, sam, newcomer
):
    services.membership_add(workspace=workspace_a, user=sam, role=Role.ADMIN, actor=sam)
    services.membership_role_change(
        membership=row(workspace_a, teammate), role=Role.OWNER, actor=sam
    )
    assert row(workspace_a, teammate).role == Role.OWNER
    with pytest.raises(ValidationError) as error:  # as a member (the API), sam is an admin
        services.membership_add(
            workspace=workspace_a, user=newcomer, role=Role.OWNER, actor=row(workspace_a, sam)
        )
    assert refusal(error.value) == OWNERS_ONLY


@pytest.mark.django_db
def test_a_membership_of_another_workspace_manages_nothing(workspace_a, workspace_b, outsider):
    with pytest.raises(ValidationError) as error:
        services.membership_role_change(
            membership=workspace_a.memberships.get(role=Role.VIEWER),
            role=Role.MEMBER,
            actor=row(workspace_b, outsider),  # an owner, but of workspace B
        )
    assert refusal(error.value) == MANAGERS_ONLY


@pytest.mark.django_db
def test_the_last_owner_stays_through_the_services(workspace_a, owner, teammate, sam):
    token, _ = services.token_create(user=owner, workspace=workspace_a, name="ci")
    for actor in (owner, sam):
        with pytest.raises(ValidationError) as remove:
            services.membership_remove(membership=row(workspace_a, owner), actor=actor)
        with pytest.raises(ValidationError) as demote:
            services.membership_role_change(
                membership=row(workspace_a, owner), role=Role.ADMIN, actor=actor
            )
        assert [refusal(remove.value), refusal(demote.value)] == [LAST_OWNER, LAST_OWNER]
    assert row(workspace_a, owner).role == Role.OWNER
    token.refresh_from_db()
    assert token.revoked_at is None  # a refused removal revokes nothing
    join(workspace=workspace_a, user=teammate, role=Role.OWNER)
    services.membership_remove(membership=row(workspace_a, owner), actor=owner)  # one of two
    assert roles(workspace_a)["tomas"] == Role.OWNER
    assert "olivia" not in roles(workspace_a)


@pytest.mark.django_db
def test_membership_services_refuse_an_unknown_role(workspace_a, owner, teammate, newcomer):
    with pytest.raises(ValidationError) as change:
        services.membership_role_change(
            membership=row(workspace_a, teammate), role="king", actor=owner
        )
    with pytest.raises(ValidationError) as add:
        services.membership_add(workspace=workspace_a, user=newcomer, role="king", actor=owner)
    assert set(change.value.message_dict) == set(add.value.message_dict) == {"role"}
    assert row(workspace_a, teammate).role == Role.MEMBER


# --- The API: the service's refusals, answered as before ----------------------------------------


def error_of(response) -> dict:
    return response.json()["error"]


@pytest.mark.django_db
def test_api_answers_403_with_the_services_message_to_an_admin_granting_owner(
    workspace_a, teammate, ada, newcomer
):
    client = signed_in(ada)
    response = client.patch(f"/api/v1/members/{row(workspace_a, teammate).id}/", {"role": "owner"})
    assert response.status_code == 403
    assert error_of(response) == {
        "code": "permission_denied",
        "message": services.ROLE_OWNERS_ONLY,
        "details": {},
    }
    response = client.post(
        "/api/v1/members/", {"workspace": workspace_a.id, "username": "nina", "role": "owner"}
    )
    assert (response.status_code, error_of(response)["message"]) == (
        403,
        services.ROLE_OWNERS_ONLY,
    )
    assert roles(workspace_a)["tomas"] == Role.MEMBER
    assert "nina" not in roles(workspace_a)


@pytest.mark.django_db
def test_api_superusers_act_with_their_role_not_as_owners(workspace_a, teammate, sam):
    join(workspace=workspace_a, user=sam, role=Role.ADMIN)
    url = f"/api/v1/members/{row(workspace_a, teammate).id}/"
    assert signed_in(sam).patch(url, {"role": "owner"}).status_code == 403
    assert bearer(sam, workspace_a).patch(url, {"role": "owner"}).status_code == 403
    assert row(workspace_a, teammate).role == Role.MEMBER


@pytest.mark.django_db
def test_api_members_get_the_services_manager_message(workspace_a, teammate, viewer):
    response = signed_in(teammate).delete(f"/api/v1/members/{row(workspace_a, viewer).id}/")
    assert (response.status_code, error_of(response)["message"]) == (
        403,
        services.ROLE_MANAGERS_ONLY,
    )
    assert "vera" in roles(workspace_a)


@pytest.mark.django_db
def test_api_keeps_the_last_owner(workspace_a, owner, teammate):
    url = f"/api/v1/members/{row(workspace_a, owner).id}/"
    for response in (
        signed_in(owner).delete(url),
        bearer(owner, workspace_a).patch(url, {"role": "viewer"}),
    ):
        assert response.status_code == 400
        assert error_of(response)["details"] == {"role": [services.ROLE_LAST_OWNER]}
    assert row(workspace_a, owner).role == Role.OWNER
    assert not ApiToken.objects.filter(user=owner, revoked_at__isnull=False).exists()


@pytest.mark.django_db
def test_api_adding_a_member_again_names_the_field_with_the_services_message(
    workspace_a, owner, teammate
):
    teammate.email = "tomas@example.org"
    teammate.save(update_fields=["email"])
    for field, value in (("username", "tomas"), ("email", "TOMAS@example.org")):
        response = signed_in(owner).post(
            "/api/v1/members/", {"workspace": workspace_a.id, field: value, "role": "viewer"}
        )
        assert response.status_code == 400
        assert error_of(response)["details"] == {field: [services.MEMBER_ALREADY]}
    assert row(workspace_a, teammate).role == Role.MEMBER


# --- The Django admin ----------------------------------------------------------------------------


def change_url(model, pk: int) -> str:
    return reverse(f"admin:crawls_{model._meta.model_name}_change", args=[pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def inline_data(client, workspace, **new_roles) -> dict:
    """The workspace admin page's form as shown, with the members' roles in `new_roles`."""
    page = client.get(change_url(Workspace, workspace.pk))
    formset = page.context["inline_admin_formsets"][0].formset
    prefix, forms = formset.prefix, formset.initial_forms
    data = {
        "name": workspace.name,
        f"{prefix}-TOTAL_FORMS": len(forms),
        f"{prefix}-INITIAL_FORMS": len(forms),
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for i, form in enumerate(forms):
        member = form.instance
        data[f"{prefix}-{i}-id"] = member.pk
        data[f"{prefix}-{i}-user"] = member.user_id
        data[f"{prefix}-{i}-workspace"] = workspace.pk
        data[f"{prefix}-{i}-role"] = new_roles.get(member.user.username, member.role)
    return data


@pytest.mark.django_db
def test_admin_refuses_an_admin_granting_owner_with_a_form_error(
    client, workspace_a, teammate, ada
):
    client.force_login(ada)
    before = roles(workspace_a)
    response = client.post(change_url(Membership, row(workspace_a, teammate).pk), {"role": "owner"})
    assert response.status_code == 200  # the form again, not a redirect
    assert response.context["adminform"].form.errors == {"role": [services.ROLE_OWNERS_ONLY]}
    response = client.post(
        reverse("admin:crawls_membership_add"),
        {"user": User.objects.create_user("nina").pk, "workspace": workspace_a.pk, "role": "owner"},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"role": [services.ROLE_OWNERS_ONLY]}
    response = client.post(
        change_url(Workspace, workspace_a.pk), inline_data(client, workspace_a, tomas="owner")
    )
    assert response.status_code == 200
    inline = response.context["inline_admin_formsets"][0].formset
    assert [services.ROLE_OWNERS_ONLY] in [form.errors.get("role") for form in inline.forms]
    assert roles(workspace_a) == before


@pytest.mark.django_db
def test_admin_refuses_an_admin_demoting_or_removing_an_owner(client, workspace_a, owner, ada):
    client.force_login(ada)
    sole = row(workspace_a, owner)
    response = client.post(change_url(Membership, sole.pk), {"role": "member"})
    assert response.context["adminform"].form.errors == {"role": [services.ROLE_OWNERS_ONLY]}
    url = reverse("admin:crawls_membership_delete", args=[sole.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert messages_of(response) == [services.ROLE_OWNERS_ONLY]  # and no "deleted successfully"
    assert row(workspace_a, owner).role == Role.OWNER


@pytest.mark.django_db
def test_admin_lets_an_admin_change_a_members_role(client, workspace_a, teammate, ada):
    client.force_login(ada)
    response = client.post(change_url(Membership, row(workspace_a, teammate).pk), {"role": "admin"})
    assert response.status_code == 302
    assert row(workspace_a, teammate).role == Role.ADMIN


@pytest.mark.django_db
def test_admin_lets_an_owner_and_a_superuser_grant_owner(
    client, workspace_a, owner, teammate, viewer, sam
):
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    owner.user_permissions.add(*Permission.objects.filter(content_type__app_label="crawls"))
    client.force_login(owner)
    response = client.post(change_url(Membership, row(workspace_a, teammate).pk), {"role": "owner"})
    assert response.status_code == 302
    client.force_login(sam)  # not a member of workspace A: acts as its owner
    response = client.post(
        change_url(Workspace, workspace_a.pk), inline_data(client, workspace_a, vera="owner")
    )
    assert response.status_code == 302
    assert roles(workspace_a) == {"olivia": "owner", "tomas": "owner", "vera": "owner"}


@pytest.mark.django_db
def test_admin_keeps_the_last_owner_and_claims_no_success(client, workspace_a, owner, sam):
    client.force_login(sam)
    sole = row(workspace_a, owner)
    response = client.post(change_url(Membership, sole.pk), {"role": "viewer"}, follow=True)
    assert messages_of(response) == [services.ROLE_LAST_OWNER]
    response = client.post(
        change_url(Workspace, workspace_a.pk),
        inline_data(client, workspace_a, olivia="admin"),
        follow=True,
    )
    assert messages_of(response) == [services.ROLE_LAST_OWNER]
    url = reverse("admin:crawls_membership_delete", args=[sole.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert messages_of(response) == [services.ROLE_LAST_OWNER]
    assert row(workspace_a, owner).role == Role.OWNER


# --- Two transactions at once --------------------------------------------------------------------


def leave(membership: Membership) -> None:
    services.membership_remove(membership=membership, actor=membership.user)


def step_down(membership: Membership) -> None:
    services.membership_role_change(membership=membership, role=Role.ADMIN, actor=membership.user)


def waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        # Activity is read once per transaction unless the snapshot is dropped.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        found = cursor.fetchone()
    return found is not None and found[0] == "Lock"


class Race:
    """Two threads, each with its own connection and transaction: both read the owners, meet at
    a barrier, make their change, and each commits only once the other is done or waiting for a
    lock, so that without a lock both changes would see two owners and both commit."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.barrier = threading.Barrier(2, timeout=60)
        self.done = [threading.Event(), threading.Event()]
        self.pids: list[int | None] = [None, None]
        self.owners_seen: list[int | None] = [None, None]
        self.results: list[object] = [None, None]
        self.stalled = False

    def run(self, changes) -> None:
        threads = [
            threading.Thread(target=dbscope.carried(self._attempt), args=(i, change))
            for i, change in enumerate(changes)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)

    def _attempt(self, i: int, change) -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self.pids[i] = cursor.fetchone()[0]
                owners = Membership.objects.filter(workspace=self.workspace, role=Role.OWNER)
                self.owners_seen[i] = owners.count()
                self.barrier.wait()
                try:
                    change()
                finally:
                    self.done[i].set()
                    self._hold_until_the_other_is_done_or_waits(1 - i)
            self.results[i] = "committed"
        except Exception as error:  # a refusal, or a failure the test reports: not lost
            self.results[i] = error
        finally:
            connection.close()

    def _hold_until_the_other_is_done_or_waits(self, other: int) -> None:
        deadline = time.monotonic() + 60
        while not self.done[other].is_set() and not waiting_for_a_lock(self.pids[other]):
            if time.monotonic() > deadline:
                self.stalled = True
                return
            time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("first", "second"),
    [(leave, leave), (leave, step_down), (step_down, step_down)],
    ids=["remove+remove", "remove+demote", "demote+demote"],
)
def test_two_transactions_cannot_take_away_both_last_owners(
    workspace_a, owner, teammate, first, second
):
    join(workspace=workspace_a, user=teammate, role=Role.OWNER)
    race = Race(workspace_a)
    race.run([lambda: first(row(workspace_a, owner)), lambda: second(row(workspace_a, teammate))])
    assert not race.stalled
    assert race.owners_seen == [2, 2]  # both were inside their transactions before any change
    committed = [result for result in race.results if result == "committed"]
    refused = [result for result in race.results if isinstance(result, ValidationError)]
    assert (len(committed), len(refused)) == (1, 1), race.results
    assert refused[0].message_dict == {"role": [services.ROLE_LAST_OWNER]}
    assert Membership.objects.filter(workspace=workspace_a, role=Role.OWNER).count() == 1
