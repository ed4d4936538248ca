"""What every Forest admin shares: workspace scoping for non-superuser staff, a paginator that
never counts a whole big table, and links between changelists."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import urlencode

from crawls.models import Membership, Workspace


class CountAtLeast(int):
    """A row count that stopped at its cap: shown as "10000+"."""

    def __str__(self) -> str:
        return f"{int(self)}+"


class CappedCountPaginator(Paginator):
    """Counts at most `cap` rows (`SELECT COUNT(*) FROM (… LIMIT cap + 1)`), so a page of a
    table of millions costs the page, not a scan; beyond the cap, filters narrow the list."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        found = self.object_list.order_by()[: self.cap + 1].count()
        return CountAtLeast(self.cap) if found > self.cap else found


class BigTableAdmin(admin.ModelAdmin):
    """A read-only changelist of a table that grows with every crawl (crawls write its rows)."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts scan the whole table

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Superusers see every row; other staff see the rows of their workspaces and change those
    of the workspaces where their role is one of `write_roles` (Django permissions still apply)."""

    write_roles = Membership.WRITER_ROLES
    workspace_field = "workspace"  # the path from a row to its workspace
    show_full_result_count = False  # one COUNT per changelist, not two

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        return rows.filter(**{f"{self.workspace_field}__in": member_of(request.user)})

    def writable(self, request, rows):
        """`rows` in the workspaces where the user may write (all of them for superusers)."""
        if request.user.is_superuser:
            return rows
        mine = member_of(request.user, roles=self.write_roles)
        return rows.filter(**{f"{self.workspace_field}__in": mine})

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self._may_write(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_write(request, obj)

    def _may_write(self, request, obj) -> bool:
        if obj is None or request.user.is_superuser:
            return True
        return self.writable(request, self.model.objects.filter(pk=obj.pk)).exists()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Workspace and not request.user.is_superuser:
            kwargs["queryset"] = member_of(request.user, roles=self.write_roles)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def member_of(user, *, roles=None):
    """The workspaces where `user` is a member (with one of `roles`, if given)."""
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return Workspace.objects.filter(pk__in=memberships.values("workspace_id"))


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A related-object filter whose choices are limited to the user's workspaces."""

    def field_choices(self, field, request, model_admin):
        if request.user.is_superuser:
            return super().field_choices(field, request, model_admin)
        path = "pk__in" if field.related_model is Workspace else "workspace__in"
        return field.get_choices(
            include_blank=False,
            ordering=self.field_admin_ordering(field, request, model_admin),
            limit_choices_to={path: member_of(request.user)},
        )


def changelist_link(model, text: str, **filters) -> str:
    """A link to `model`'s changelist filtered by `filters`."""
    url = reverse(f"admin:crawls_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), text)


def change_link(model, pk: int | None, text: str | None = None) -> str:
    """A link to one row's change page (empty when there is no row)."""
    if pk is None:
        return "-"
    url = reverse(f"admin:crawls_{model._meta.model_name}_change", args=[pk])
    return format_html('<a href="{}">{}</a>', url, text or pk)
