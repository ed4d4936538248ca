"""Outages are survived: `make run` mid-crawl, a WebSocket client attached, while Redis is
killed and PostgreSQL is stopped and started again (tests/outages.py runs the scenario).

No Forest process exits; the API answers 503 with Retry-After meanwhile and /readyz names the
part; within 30 s of the part coming back the crawl moves again, and it ends with the exact bids
of the board and a gapless event log that the WebSocket client saw whole.
"""

import pytest

from tests import outages

pytestmark = [pytest.mark.slow, pytest.mark.late, pytest.mark.timeout(1000)]


def _check(request, timeout: float) -> None:
    phase = request.node.name.removeprefix("test_")
    failure = outages.scenario([phase]).outcome(phase, timeout)
    assert failure is None, failure


def test_redis_killed_for_10_seconds_mid_crawl(request):
    _check(request, timeout=600)


def test_postgres_stopped_for_10_seconds_mid_crawl(request):
    _check(request, timeout=600)


def test_postgres_down_5_minutes_and_redis_2_minutes_mid_crawl(request):
    _check(request, timeout=900)
