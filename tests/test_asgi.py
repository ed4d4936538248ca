"""project.asgi under a real daphne: HTTP with request ids; WebSockets check the origin."""

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.processes import http_get


def test_http_is_served_and_the_request_id_is_echoed(daphne_server):
    status, body = http_get(
        f"{daphne_server.base_url}/healthz", headers={"X-Request-ID": "probe-1234"}
    )
    assert (status, body) == (200, b'{"status": "ok"}')


def test_websocket_from_a_foreign_origin_is_refused(daphne_server):
    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"ws://127.0.0.1:{daphne_server.port}/ws/anything/",
            origin="http://evil.example",
            open_timeout=10,
        )
    assert refused.value.response.status_code == 403
