"""A bounded schemathesis run: every operation of /api/schema/, called in-process (WSGI) with a
workspace owner's bearer token, holds to its documented answers (no 5xx; documented status
codes, content types and response schemas).

Deterministic (derandomized Hypothesis, no example database, no shrinking) and bounded:
EXAMPLES cases per operation. Path ids are, half of the time, those of rows made for the run,
so that retrieves, updates, actions and DELETE reach real, disposable objects, not only 404s;
DELETEs run last. Rates and backpressure are raised for the run; the crawls it starts are sent
to a queue of their own, emptied afterwards.
"""

from __future__ import annotations

import re

import pytest
import redis
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.test import Client
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crawls import services
from crawls.demo.board import DEMO_RULES
from crawls.models import Membership
from notifications import services as notification_services
from tests.factories import make_bid

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = 25  # per operation: ~15 s for the whole run on the 2-core machine
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
RUN = hypothesis_settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
QUEUE = "schemathesis-discarded"
START = "https://bids.example.org/notices"


@pytest.fixture
def generous(settings):
    """Rates and backpressure out of the way; started crawls go to a queue nobody reads."""
    rates = dict.fromkeys(("caller", "workspace", "crawl_create"), "1000000/min")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    settings.CRAWL_MAX_ACTIVE_PER_WORKSPACE = 1_000_000
    settings.CRAWL_QUEUE = QUEUE
    yield
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(QUEUE, *client.keys(f"*{QUEUE}*"))
    client.close()


@pytest.fixture
def world(owner, teammate, viewer, outsider, workspace_a):
    """The owner's bearer token; rows of every resource in the owner's workspace, by the path
    segment that names them; and the ids no case may touch (the token, its owner's membership,
    its workspace: changing them would turn the rest of the run into 401s and 403s)."""
    bearer_token, raw = services.token_create(user=owner, workspace=workspace_a, name="run")
    spare, _ = services.token_create(user=owner, workspace=workspace_a, name="disposable")
    sources = [
        services.source_create(
            workspace=workspace_a, name=f"Board {n}", start_urls=[START], rules=DEMO_RULES
        )
        for n in range(3)
    ]
    crawls = [services.crawl_start(source=source, workers=0) for source in sources[:2]]
    bids = [make_bid(sources[0]) for _ in range(3)]
    rule = notification_services.alert_rule_create(
        workspace_id=workspace_a.pk, owner=owner, name="roads", filter={"search": "road"}
    )
    memberships = Membership.objects.filter(workspace=workspace_a)
    ids = {
        "sources": [s.pk for s in sources],
        "crawls": [c.pk for c in crawls],
        "bids": [b.pk for b in bids],
        "members": [m.pk for m in memberships.exclude(user=owner)],
        "tokens": [spare.pk],
        "alert-rules": [rule.pk],
        "workspaces": [workspace_a.pk],
    }
    untouchable = {
        ("members", None): memberships.get(user=owner).pk,
        ("tokens", None): bearer_token.pk,
        ("workspaces", "DELETE"): workspace_a.pk,
    }
    return raw, ids, untouchable


def exercise(operation, real: list[int], spared: set, headers: dict, statuses: dict) -> None:
    """EXAMPLES cases of `operation`; its path id, half of the time, one of `real`."""
    picks = st.one_of(st.none(), st.sampled_from(real)) if real else st.none()

    @RUN
    @given(case=operation.as_strategy(), pick=picks)
    def call(case, pick):
        params = case.path_parameters or {}
        if "id" in params and (pick is not None or params["id"] in spared):
            params["id"] = pick if pick is not None else 0
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        key = f"{operation.method.upper()} {operation.path}"
        statuses.setdefault(key, set()).add(response.status_code)

    call()


def test_every_operation_holds_to_its_schema(generous, world):
    token, ids, untouchable = world
    headers = {"Authorization": f"Bearer {token}"}
    app = get_wsgi_application()
    schema = schemathesis.openapi.from_wsgi("/api/schema/", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")
    assert len(operations) > 40
    statuses: dict[str, set[int]] = {}
    failures = []
    for operation in operations:
        method = operation.method.upper()
        match = re.match(r"/api/v1/([^/]+)/", operation.path)
        resource = match.group(1) if match else ""
        real = [] if (resource, method) in untouchable else ids.get(resource, [])
        spared = {untouchable.get((resource, None)), untouchable.get((resource, method))}
        try:
            exercise(operation, real, spared, headers, statuses)
        except (Exception, BaseExceptionGroup) as failure:
            failures.append(f"{method} {operation.path}:\n{failure}")
    assert not failures, "\n\n".join(failures)
    # The run meant something: the token still works, and real objects were reached.
    assert Client().get("/api/v1/sources/", HTTP_AUTHORIZATION=headers["Authorization"]).json()
    assert 200 in statuses["GET /api/v1/sources/{id}/"]
    assert 204 in statuses["DELETE /api/v1/sources/{id}/"] | statuses["DELETE /api/v1/tokens/{id}/"]
    assert 202 in statuses["POST /api/v1/crawls/"] | statuses["POST /api/v1/sources/{id}/crawl/"]
