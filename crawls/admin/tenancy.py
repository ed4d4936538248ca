"""Workspaces, their members and API tokens: membership changes go through services, as the
acting staff user (a superuser acts as an owner; other staff with their role in the workspace),
so the services' rules hold here too: only an owner grants or takes away the owner role, a
workspace keeps an owner, a removed member's tokens are revoked. Tokens are listed and revoked."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from crawls import services
from crawls.admin.base import WorkspaceScopedAdmin, changelist_link
from crawls.models import ApiToken, Membership, Source, Workspace


class MembershipForm(forms.ModelForm):
    """Asks the services whether the acting staff user may give this role: a refusal is an
    error on `role` and nothing is saved. The service asks again, under its lock, when saving."""

    actor = None  # the staff user, set on the per-request form class by the admin

    def clean(self):
        cleaned = super().clean()
        role = cleaned.get("role")
        existing = self.instance.pk is not None
        workspace = self.instance.workspace if existing else cleaned.get("workspace")
        if role is None or workspace is None or (existing and "role" not in self.changed_data):
            return cleaned
        try:
            services.membership_check(
                actor=self.actor,
                workspace_id=workspace.pk,
                membership=self.instance if existing else None,
                role=role,
            )
        except services.RoleRefused as refused:
            self.add_error(None, refused)
        return cleaned


def _membership_save(membership: Membership, *, adding: bool, actor) -> None:
    if adding:
        services.membership_add(
            workspace=membership.workspace, user=membership.user, role=membership.role, actor=actor
        )
    else:
        services.membership_role_change(membership=membership, role=membership.role, actor=actor)


class RefusalsReported(WorkspaceScopedAdmin):
    """A service's refusal is an error message, and the page then claims no success."""

    def refused(self, request, error: ValidationError) -> None:
        request.forest_refused = True
        self.message_user(request, "; ".join(error.messages), messages.ERROR)

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs) -> None:
        if level == messages.SUCCESS and getattr(request, "forest_refused", False):
            return
        super().message_user(request, message, level, *args, **kwargs)


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipForm
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.actor = request.user  # a class made for this request
        return formset


@admin.register(Workspace)
class WorkspaceAdmin(RefusalsReported):
    list_display = ["name", "slug", "created_at", "sources_link"]
    search_fields = ["name", "slug"]
    ordering = ["name", "id"]
    readonly_fields = ["slug", "created_at", "sources_link"]
    inlines = [MembershipInline]
    workspace_field = "pk"
    write_roles = Membership.MANAGER_ROLES

    @admin.display(description="sources")
    def sources_link(self, workspace: Workspace) -> str:
        return changelist_link(Source, "sources", workspace__id__exact=workspace.pk)

    def has_add_permission(self, request) -> bool:
        # A new workspace is made with its owner (workspace_create): the API and dashboard do.
        return False

    def save_model(self, request, obj, form, change) -> None:
        services.workspace_rename(workspace=obj, name=obj.name)

    def delete_model(self, request, obj) -> None:
        services.workspace_delete(workspace=obj)

    def delete_queryset(self, request, queryset) -> None:
        for workspace in queryset:
            services.workspace_delete(workspace=workspace)

    def save_formset(self, request, form, formset, change) -> None:
        memberships = formset.save(commit=False)
        for membership in formset.deleted_objects:
            try:
                services.membership_remove(membership=membership, actor=request.user)
            except ValidationError as error:
                self.refused(request, error)
        for membership in memberships:
            try:
                _membership_save(membership, adding=membership.pk is None, actor=request.user)
            except ValidationError as error:
                self.refused(request, error)


@admin.register(Membership)
class MembershipAdmin(RefusalsReported):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "workspace"]
    search_fields = ["user__username", "user__email", "workspace__name"]
    ordering = ["workspace__name", "user__username"]
    raw_id_fields = ["user", "workspace"]
    readonly_fields = ["created_at"]
    form = MembershipForm
    write_roles = Membership.MANAGER_ROLES

    def get_readonly_fields(self, request, obj=None):
        # A membership changes role; moving it to another user or workspace is a new one.
        return ["created_at"] if obj is None else ["user", "workspace", "created_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = request.user  # a class made for this request
        return form

    def save_model(self, request, obj, form, change) -> None:
        try:
            _membership_save(obj, adding=not change, actor=request.user)
        except ValidationError as error:
            self.refused(request, error)

    def delete_model(self, request, obj) -> None:
        try:
            services.membership_remove(membership=obj, actor=request.user)
        except ValidationError as error:
            self.refused(request, error)

    def delete_queryset(self, request, queryset) -> None:
        for membership in queryset:
            self.delete_model(request, membership)


@admin.register(ApiToken)
class ApiTokenAdmin(WorkspaceScopedAdmin):
    list_display = ["name", "prefix", "user", "workspace", "created_at", "last_used_at", "active"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    list_select_related = ["user", "workspace"]
    search_fields = ["name", "=prefix", "user__username"]
    ordering = ["-id"]
    # key_hash is never shown: it is the one secret a leaked admin page must not carry.
    fields = ["name", "prefix", "user", "workspace", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]
    write_roles = Membership.MANAGER_ROLES

    @admin.display(boolean=True, description="active")
    def active(self, token: ApiToken) -> bool:
        return token.is_active

    def has_add_permission(self, request) -> bool:
        return False  # tokens are made through the API, which shows the secret once

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked, not deleted: the row says who had access and when

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        revoked = 0
        for token in self.writable(request, queryset).filter(revoked_at=None):
            services.token_revoke(token=token)
            revoked += 1
        self.message_user(request, f"{revoked} token(s) revoked.", messages.SUCCESS)
