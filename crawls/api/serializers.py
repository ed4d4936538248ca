"""Workspaces, members and API tokens: what the API reads and writes.

Write serializers only parse: who may do what is the services' rule (asked by the views, and by
MembershipCreateSerializer before it looks a user up), and the writes are services. Token
serializers never carry the token's hash; the plain token appears once, in the answer to its
creation (TokenCreatedSerializer).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crawls import selectors, services
from crawls.api.auth import acting_member, refusals_as_403, workspaces_of
from crawls.models import ApiToken, Membership, Workspace


@extend_schema_field(OpenApiTypes.INT)
class CallersWorkspaceField(serializers.PrimaryKeyRelatedField):
    """A workspace id; any workspace but the caller's answers "does not exist"."""

    default_error_messages = {"does_not_exist": "No such workspace."}

    def get_queryset(self):
        return workspaces_of(self.context.get("request"))


# --- Errors (documentation of the envelope in crawls/api/errors.py) -------------------------------


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text='What went wrong: "invalid", "not_found"...')
    message = serializers.CharField()
    details = serializers.DictField(
        help_text="For invalid input: the messages of each bad field (lists of messages, or "
        "objects of them for nested fields); other codes may add facts (e.g. `active_crawl`).",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


# --- Workspaces -------------------------------------------------------------------------------


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(
        choices=Membership.Role.choices,
        read_only=True,
        help_text="The caller's role in this workspace.",
    )

    class Meta:
        model = Workspace
        fields = ["id", "name", "slug", "role", "created_at"]
        read_only_fields = ["id", "slug", "role", "created_at"]


# --- Members ----------------------------------------------------------------------------------


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(
        source="user.email", read_only=True, help_text="Empty when the user gave none."
    )

    class Meta:
        model = Membership
        fields = ["id", "workspace", "user", "username", "email", "role", "created_at"]
        read_only_fields = fields


class MembershipCreateSerializer(serializers.Serializer):
    """Who to add: a username or an e-mail address (exactly one of them).

    The caller's right to add (403) is checked before the user is looked up, so that only
    managers learn whether a username exists.
    """

    workspace = CallersWorkspaceField()
    username = serializers.CharField(required=False, max_length=150)
    email = serializers.EmailField(required=False)
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.MEMBER)

    def validate(self, attrs):
        workspace_id = attrs["workspace"].pk
        attrs["actor"] = acting_member(self.context["request"], workspace_id)
        with refusals_as_403():
            services.membership_check(
                actor=attrs["actor"], workspace_id=workspace_id, role=attrs["role"]
            )
        given = [name for name in ("username", "email") if name in attrs]
        if not given:
            raise serializers.ValidationError({"username": ["Give a username or an email."]})
        if len(given) == 2:
            raise serializers.ValidationError({"email": ["Give a username or an email, not both."]})
        field = given[0]
        users = selectors.users_matching(**{field: attrs[field]})
        if not users:
            raise serializers.ValidationError({field: ["No such user."]})
        if len(users) > 1:
            raise serializers.ValidationError(
                {field: ["More than one user has this email: give the username."]}
            )
        attrs["user"], attrs["named_by"] = users[0], field  # already a member: the service says
        return attrs


class MembershipRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


# --- API tokens -------------------------------------------------------------------------------


class TokenSerializer(serializers.ModelSerializer):
    """A token as listed: never its hash, never the token itself."""

    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id", "workspace", "name", "prefix", "active",
            "created_at", "last_used_at", "revoked_at",
        ]  # fmt: skip
        read_only_fields = fields


class TokenCreateSerializer(serializers.Serializer):
    workspace = CallersWorkspaceField()
    name = serializers.CharField(max_length=100)


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(
        read_only=True,
        help_text="The token, shown this once: only its hash is kept. "
        "Send it as `Authorization: Bearer <token>`.",
    )

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields
