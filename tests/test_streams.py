"""Live streams under a real daphne, PostgreSQL and Redis: WebSockets and Server-Sent Events.

Sequences are asserted exactly: every stream must deliver each event once, in order, across
replay → live, concurrent writers, and a Redis killed and restarted mid-stream.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import urlsplit

import psutil
import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from crawls import events, realtime, services
from crawls.events import event_message
from crawls.models import Crawl, CrawlEvent
from project import dbscope
from tests.clients import group_members, session_cookie
from tests.factories import make_source
from tests.outages import THREAD_PREFIX
from tests.processes import (
    Program,
    RedisServer,
    program_env,
    python,
    start_daphne,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 30  # generous: only to stop a broken stream from hanging the suite


def make_crawl(workspace) -> Crawl:
    source = make_source(workspace, f"Board {Crawl.objects.count()}")
    return services.crawl_start(source=source, workers=0)


def append(crawl: Crawl, count: int, *, final: bool = False) -> list[int]:
    """Append `count` progress events (the last one final if asked); their sequences."""
    sequences = []
    for i in range(count):
        kind = events.SUCCEEDED if final and i == count - 1 else events.PROGRESS
        event = events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=kind, payload={"n": i}
        )
        sequences.append(event.sequence)
    realtime.flush()
    return sequences


def last_seq(crawl: Crawl) -> int:
    return Crawl.objects.values_list("event_seq", flat=True).get(pk=crawl.pk)


def ws(server, path: str, *, cookie: str | None = None, token: str | None = None, **kwargs):
    headers = {}
    if cookie:
        headers["Cookie"] = cookie
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return connect(
        f"ws://127.0.0.1:{server.port}{path}",
        origin=f"http://127.0.0.1:{server.port}",
        additional_headers=headers,
        open_timeout=TIMEOUT,
        # Read everything as it comes: a paused reader would miss the tail when daphne drops
        # the connection one second after its close frame (the client would resume with after=).
        max_queue=None,
        **kwargs,
    )


def receive_until_closed(socket) -> tuple[list[dict], int | None]:
    """Every message until the server closes the socket, and its close code."""
    received = []
    try:
        while True:
            received.append(json.loads(socket.recv(timeout=TIMEOUT)))
    except ConnectionClosed:
        pass
    return received, socket.close_code


def receive(socket, count: int) -> list[dict]:
    return [json.loads(socket.recv(timeout=TIMEOUT)) for _ in range(count)]


def logged(crawl: Crawl, after: int = 0) -> list[dict]:
    log = CrawlEvent.objects.filter(crawl=crawl, sequence__gt=after).order_by("sequence")
    return [json.loads(json.dumps(event_message(event))) for event in log]


# --- /ws/crawls/<id>/ -------------------------------------------------------------------------


def test_crawl_stream_replays_after_a_sequence_then_streams_live_and_closes_1000(
    daphne_server, owner, workspace_a
):
    crawl = make_crawl(workspace_a)
    append(crawl, 3)
    start = last_seq(crawl)
    with ws(daphne_server, f"/ws/crawls/{crawl.pk}/?after=2", cookie=session_cookie(owner)) as s:
        replayed = receive(s, start - 2)
        append(crawl, 4, final=True)
        live, code = receive_until_closed(s)
    assert [m["seq"] for m in replayed + live] == list(range(3, start + 5))
    assert replayed + live == logged(crawl, after=2)
    assert set(live[0]) == {"type", "crawl", "workspace", "seq", "event", "payload", "at"}
    assert live[-1]["event"] == events.SUCCEEDED
    assert code == 1000


def test_a_finished_crawls_stream_replays_and_closes(daphne_server, teammate, workspace_a):
    crawl = make_crawl(workspace_a)
    append(crawl, 2, final=True)
    with ws(daphne_server, f"/ws/crawls/{crawl.pk}/", cookie=session_cookie(teammate)) as s:
        received, code = receive_until_closed(s)
    assert received == logged(crawl)
    assert (received[-1]["event"], code) == (events.SUCCEEDED, 1000)


def test_a_client_that_has_the_final_event_is_closed_at_once(daphne_server, owner, workspace_a):
    crawl = make_crawl(workspace_a)
    append(crawl, 2, final=True)
    path = f"/ws/crawls/{crawl.pk}/?after={last_seq(crawl)}"
    with ws(daphne_server, path, cookie=session_cookie(owner)) as s:
        assert receive_until_closed(s) == ([], 1000)


def test_a_first_message_after_repositions_the_stream(daphne_server, owner, workspace_a):
    crawl = make_crawl(workspace_a)
    append(crawl, 5)
    end = last_seq(crawl)
    with ws(daphne_server, f"/ws/crawls/{crawl.pk}/", cookie=session_cookie(owner)) as s:
        first = receive(s, end)
        s.send("not json")  # ignored
        s.send(json.dumps({"after": end - 2}))
        again = receive(s, 2)
        append(crawl, 1, final=True)
        rest, code = receive_until_closed(s)
    assert [m["seq"] for m in first] == list(range(1, end + 1))
    assert [m["seq"] for m in again + rest] == [end - 1, end, end + 1]
    assert code == 1000


@pytest.mark.parametrize("where", ["header", "query"])
def test_a_token_opens_its_workspaces_crawl_stream(daphne_server, owner, workspace_a, where):
    crawl = make_crawl(workspace_a)
    append(crawl, 1, final=True)
    _, raw = services.token_create(user=owner, workspace=workspace_a, name="live")
    path = f"/ws/crawls/{crawl.pk}/"
    options = {"token": raw} if where == "header" else {}
    with ws(daphne_server, path + ("" if options else f"?token={raw}"), **options) as s:
        received, code = receive_until_closed(s)
    assert (received, code) == (logged(crawl), 1000)


@pytest.mark.parametrize("token", [None, "fst_not-a-real-token"])
def test_an_unauthenticated_stream_is_closed_4401(daphne_server, workspace_a, token):
    crawl = make_crawl(workspace_a)
    with ws(daphne_server, f"/ws/crawls/{crawl.pk}/", token=token) as s:
        received, code = receive_until_closed(s)
    assert (received, code) == ([], 4401)


def test_a_foreign_or_missing_crawl_is_closed_4404(
    daphne_server, outsider, owner, workspace_a, workspace_b
):
    crawl = make_crawl(workspace_a)
    _, other_token = services.token_create(user=owner, workspace=workspace_a, name="a")
    foreign = make_crawl(workspace_b)
    outcomes = []
    for path, options in [
        (f"/ws/crawls/{crawl.pk}/", {"cookie": session_cookie(outsider)}),
        (f"/ws/crawls/{foreign.pk}/", {"token": other_token}),
        (f"/ws/crawls/{foreign.pk + 1000}/", {"cookie": session_cookie(owner)}),
    ]:
        with ws(daphne_server, path, **options) as s:
            outcomes.append(receive_until_closed(s))
    assert outcomes == [([], 4404)] * 3


def test_a_foreign_origin_is_refused_at_the_handshake(daphne_server, owner, workspace_a):
    crawl = make_crawl(workspace_a)
    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"ws://127.0.0.1:{daphne_server.port}/ws/crawls/{crawl.pk}/",
            origin="http://evil.example",
            additional_headers={"Cookie": session_cookie(owner)},
            open_timeout=TIMEOUT,
        )
    assert refused.value.response.status_code == 403


def test_no_gap_and_no_duplicate_while_events_are_written_during_the_connect(
    daphne_server, owner, workspace_a
):
    crawl = make_crawl(workspace_a)
    total = 300
    some_written = threading.Event()

    def writer():
        try:
            for i in range(total):
                if i == 20:
                    some_written.set()
                kind = events.SUCCEEDED if i == total - 1 else events.PROGRESS
                events.event_append(
                    crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=kind, payload={"n": i}
                )
                time.sleep(0.002)
            realtime.flush()
        finally:
            connection.close()

    thread = threading.Thread(target=dbscope.carried(writer))
    cookie = session_cookie(owner)
    thread.start()
    assert some_written.wait(TIMEOUT)  # some events are in the log before the client connects
    with ws(daphne_server, f"/ws/crawls/{crawl.pk}/", cookie=cookie) as s:
        received, code = receive_until_closed(s)
    thread.join(TIMEOUT)
    end = last_seq(crawl)
    assert [m["seq"] for m in received] == list(range(1, end + 1))
    assert received == logged(crawl)
    assert code == 1000


# --- /ws/workspace/ and /ws/notifications/ ----------------------------------------------------


def test_workspace_stream_sends_a_snapshot_then_every_event(
    daphne_server, owner, workspace_a, workspace_b
):
    running = make_crawl(workspace_a)
    done = make_crawl(workspace_a)
    append(done, 1, final=True)
    Crawl.objects.filter(pk=done.pk).update(status=Crawl.Status.SUCCEEDED)
    foreign = make_crawl(workspace_b)
    with ws(daphne_server, "/ws/workspace/", cookie=session_cookie(owner)) as s:
        (snapshot,) = receive(s, 1)
        append(foreign, 1)
        append(running, 2)
        live = receive(s, 2)
    assert snapshot["type"] == "workspace.snapshot"
    assert [(c["id"], c["status"]) for c in snapshot["crawls"]] == [
        (running.pk, "queued"),
        (done.pk, "succeeded"),
    ]
    assert set(snapshot["crawls"][0]) == {
        "id", "workspace", "source", "source_name", "status", "pages_done", "pages_failed",
        "pages_total", "items_new", "items_changed", "items_unchanged", "errors", "event_seq",
        "percent", "pages_processed", "pages_queued", "pages_per_s", "eta_s", "error_count",
    }  # fmt: skip
    assert live == logged(running)[-2:]


def test_workspace_stream_of_a_workspace_the_caller_is_not_in_is_closed_4404(
    daphne_server, owner, workspace_a, workspace_b
):
    path = f"/ws/workspace/?workspace={workspace_b.pk}"
    with ws(daphne_server, path, cookie=session_cookie(owner)) as s:
        assert receive_until_closed(s) == ([], 4404)


def test_a_notification_sent_to_the_users_group_reaches_the_client(daphne_server, owner):
    message = {"type": "notification.message", "title": "New bids", "count": 3}
    group = realtime.notifications_group(owner.pk)
    before = group_members(group)
    with ws(daphne_server, "/ws/notifications/", cookie=session_cookie(owner)) as s:
        # The consumer joins its group just after the handshake.
        wait_until(lambda: group_members(group) > before, what="the socket in its group")
        async_to_sync(get_channel_layer().group_send)(
            realtime.notifications_group(owner.pk), message
        )
        assert json.loads(s.recv(timeout=TIMEOUT)) == message


# --- Server-Sent Events -----------------------------------------------------------------------


def sse(server, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
    """(status, content type, whole body) of a stream that ends."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, response.getheader("Content-Type"), body


def frames(body: str) -> list[tuple[int, str, dict]]:
    found = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line[:1] != ":")
        if fields:
            found.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return found


def test_sse_resumes_after_last_event_id_and_ends_after_the_final_event(
    daphne_server, owner, workspace_a
):
    crawl = make_crawl(workspace_a)
    append(crawl, 3)
    start = last_seq(crawl)
    finisher = threading.Timer(
        1.0, dbscope.carried(lambda: (append(crawl, 2, final=True), connection.close()))
    )
    finisher.start()
    path = f"/api/v1/crawls/{crawl.pk}/events/stream"
    status, kind, body = sse(
        daphne_server, path, {"Cookie": session_cookie(owner), "Last-Event-ID": str(start - 1)}
    )
    finisher.join()
    log = logged(crawl, after=start - 1)
    assert (status, kind) == (200, "text/event-stream; charset=utf-8")
    assert frames(body) == [(m["seq"], m["event"], m) for m in log]
    assert [m["seq"] for m in log] == [start, start + 1, start + 2]


def test_sse_with_a_token_and_after(daphne_server, owner, workspace_a):
    crawl = make_crawl(workspace_a)
    append(crawl, 2, final=True)
    _, raw = services.token_create(user=owner, workspace=workspace_a, name="sse")
    path = f"/api/v1/crawls/{crawl.pk}/events/stream?after=1"
    status, _, body = sse(daphne_server, path, {"Authorization": f"Bearer {raw}"})
    assert status == 200
    assert [seq for seq, _, _ in frames(body)] == list(range(2, last_seq(crawl) + 1))


def test_sse_refuses_anonymous_401_and_foreign_404_in_the_envelope(
    daphne_server, outsider, workspace_a
):
    crawl = make_crawl(workspace_a)
    path = f"/api/v1/crawls/{crawl.pk}/events/stream"
    anonymous = sse(daphne_server, path, {})
    bad_token = sse(daphne_server, path, {"Authorization": "Bearer fst_nope"})
    foreign = sse(daphne_server, path, {"Cookie": session_cookie(outsider)})
    assert [(r[0], json.loads(r[2])["error"]["code"]) for r in (anonymous, bad_token, foreign)] == [
        (401, "not_authenticated"),
        (401, "not_authenticated"),
        (404, "not_found"),
    ]


# --- Publishing from sync code ----------------------------------------------------------------


def test_publishing_many_messages_from_sync_code_keeps_threads_and_connections_flat(settings):
    port = urlsplit(settings.REDIS_URL).port
    server = redis.Redis.from_url(settings.REDIS_URL)
    server.ping()  # its own connection is open before the first count
    process = psutil.Process()

    def ours() -> int:
        """This process's connections to Redis, seen from both ends (CLIENT LIST and the OS)."""
        local = {
            c.laddr.port for c in process.net_connections("tcp") if c.raddr and c.raddr.port == port
        }
        listed = {int(c["addr"].rsplit(":", 1)[1]) for c in server.client_list()}
        return len(local & listed)

    def threads() -> int:
        """This process's threads, less the outage scenario's (they come and go beside us)."""
        return sum(1 for t in threading.enumerate() if not t.name.startswith(THREAD_PREFIX))

    message = {"type": "probe.message", "n": 0}
    realtime.publish(["probe-flat"], message)
    assert realtime.flush()
    before = (threads(), ours())
    for n in range(500):
        realtime.publish(["probe-flat", "probe-flat-2"], {**message, "n": n})
    assert realtime.flush(TIMEOUT)
    assert (threads(), ours()) == before
    assert before[1] >= 1  # the publisher's connection is counted


# --- Redis killed and restarted mid-stream ----------------------------------------------------


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture
def isolated(tmp_path):
    """A Redis of its own and a daphne on it, with short heartbeat and check intervals."""
    server = RedisServer(tmp_path, appendonly=False)
    server.start()
    env = program_env(
        REDIS_URL=server.url,
        STREAM_CHECK_SECONDS="3600",  # recovery must not come from the safety net
        STREAM_HEARTBEAT_SECONDS="0.5",
        STREAM_RETRY_SECONDS="0.2",
    )
    daphne = start_daphne(env, tmp_path / "daphne.log")
    daphne.redis = server
    daphne.env = env
    yield daphne
    daphne.stop()
    server.stop()


def write(isolated, crawl: Crawl, count: int, *, final: bool = False) -> None:
    """Append events from a worker-like process that publishes to the isolated Redis."""
    args = ["-m", "bench.stream_writer", "--crawl", str(crawl.pk), "--count", str(count)]
    writer = Program(
        python(*args, "--rate", "200", *(["--final"] if final else [])),
        env=isolated.env,
        log=isolated.redis.directory / f"writer-{time.monotonic_ns()}.log",
    )
    assert writer.proc.wait(TIMEOUT * 2) == 0, writer.output()


def test_a_redis_restart_mid_stream_loses_nothing(isolated, owner, workspace_a):
    crawl = make_crawl(workspace_a)
    with ws(isolated, f"/ws/crawls/{crawl.pk}/", cookie=session_cookie(owner)) as s:
        first = last_seq(crawl)
        write(isolated, crawl, 20)
        before = receive(s, first + 20)
        isolated.redis.kill()
        write(isolated, crawl, 20)  # committed while the layer is down
        isolated.redis.start()
        write(isolated, crawl, 20, final=True)
        after, code = receive_until_closed(s)
    received = before + after
    assert [m["seq"] for m in received] == list(range(1, first + 61))
    assert received == logged(crawl)
    assert code == 1000


def test_sse_sends_keep_alive_comments_and_survives_a_redis_restart(isolated, owner, workspace_a):
    crawl = make_crawl(workspace_a)
    conn = http.client.HTTPConnection("127.0.0.1", isolated.port, timeout=TIMEOUT)
    path = f"/api/v1/crawls/{crawl.pk}/events/stream"
    conn.request("GET", path, headers={"Cookie": session_cookie(owner)})
    response = conn.getresponse()
    lines = []
    while ": keep-alive" not in lines:
        lines.append(response.readline().decode().rstrip("\n"))
    isolated.redis.kill()
    write(isolated, crawl, 5)
    isolated.redis.start()
    write(isolated, crawl, 5, final=True)
    body = "\n".join(lines) + "\n" + response.read().decode()
    conn.close()
    assert [seq for seq, _, _ in frames(body)] == list(range(1, last_seq(crawl) + 1))
