"""API clients for tests: signed in with a session, or carrying a new bearer token."""

from __future__ import annotations

from rest_framework.test import APIClient

from crawls import services


def signed_in(user=None) -> APIClient:
    """An APIClient authenticated as `user` (anonymous without one)."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def bearer(user, workspace) -> APIClient:
    """An APIClient with a new token of `user` in `workspace`."""
    _, raw = services.token_create(user=user, workspace=workspace, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client
