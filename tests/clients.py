"""API clients for tests: signed in with a session, or carrying a new bearer token; the session
cookie of a user for WebSocket handshakes."""

from __future__ import annotations

import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from crawls import services

API = "/api/v1"


def error_of(response) -> dict:
    """The error envelope of an API answer (nothing else in its body)."""
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def signed_in(user=None) -> APIClient:
    """An APIClient authenticated as `user` (anonymous without one)."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


class Api(APIClient):
    """An anonymous APIClient (the `api` fixture); api(user) is a new one signed in as `user`."""

    def __call__(self, user=None) -> APIClient:
        return signed_in(user)


def invalid_fields(response) -> set[str]:
    """The fields a 400 "invalid" answer names."""
    assert response.status_code == 400, response.content
    envelope = error_of(response)
    assert envelope["code"] == "invalid"
    return set(envelope["details"])


def result_ids(response) -> list[int]:
    """The ids of a 200 list page's results, in order."""
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def assert_invalid(response, field: str) -> None:
    """A 400 "invalid" answer that names `field` in its details and its message."""
    assert field in invalid_fields(response), error_of(response)
    assert field in error_of(response)["message"]


def bearer(user, workspace) -> APIClient:
    """An APIClient with a new token of `user` in `workspace`; .token and .raw for the test."""
    token, raw = services.token_create(user=user, workspace=workspace, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.token, client.raw = token, raw
    return client


def session_cookie(user) -> str:
    """The Cookie header of a new session of `user` (what a signed-in browser sends)."""
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def group_members(group: str) -> int:
    """How many channels are in channel-layer `group` now (in Redis, as daphne joined them)."""
    layer = get_channel_layer()
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        return client.zcard(layer._group_key(group))
