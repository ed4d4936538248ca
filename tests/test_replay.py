"""`manage.py replay` (docs/replay.md): the shipped demo-board log replayed against a real daphne
on another workspace; the target guard; unsafe methods; bad lines; before/after comparison;
and the access line the log is made of (its fields, no secrets)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.core.management import CommandError, call_command

from crawls import services
from crawls.models import Crawl
from project.logs import REDACTED
from project.replay import logfile, mapping, report
from project.replay.runner import Sample
from project.replay.target import TargetRefused, check_target
from tests import crawling
from tests.clients import session_cookie
from tests.factories import make_bid, make_source, succeeded_crawl
from tests.processes import BASE_DIR, free_port, program_env, python, start_daphne

pytestmark = pytest.mark.django_db(transaction=True)  # daphne reads what the test wrote

SAMPLE = BASE_DIR / "project" / "replay" / "samples" / "access-demo.jsonl"


@pytest.fixture(scope="module")
def forest(django_db_setup, tmp_path_factory):
    """daphne on the test database writing JSON log lines (LOG_FORMAT=json)."""
    server = start_daphne(
        program_env(LOG_FORMAT="json", LOG_LEVEL="INFO"),
        tmp_path_factory.mktemp("replay-daphne") / "daphne.log",
    )
    yield server
    server.stop()


def access_lines(server, since: int = 0, prefix: str = "") -> list[dict]:
    """The access lines the server wrote after offset `since`, of request ids `prefix`*."""
    found = []
    for line in server.output()[since:].splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            if data.get("logger") == "forest.access" and data["request_id"].startswith(prefix):
                found.append(data)
    return found


def call(base, method, path, *, headers, number, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - our own server
        f"{base}{urllib.parse.quote(path, safe='/?&=,:%')}",
        data=data,
        method=method,
        headers={**headers, "X-Request-ID": f"demo-{number}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def demo_session(base: str, *, token: str, cookie: str, workspace_id: int) -> int:
    """A person's session on the dashboard and the API after a crawl of the demo board: the
    traffic the sample log records. Returns the number of requests sent."""
    api = {"Authorization": f"Bearer {token}"}
    page = {"Cookie": cookie}
    sent = 0

    def get(path, headers):
        nonlocal sent
        sent += 1
        return call(base, "GET", path, headers=headers, number=sent)

    source = json.loads(get("/api/v1/sources/", api)[1])["results"][0]["id"]
    crawl = json.loads(get(f"/api/v1/crawls/?source={source}", api)[1])["results"][0]["id"]
    bids = [row["id"] for row in json.loads(get("/api/v1/bids/?page_size=50", api)[1])["results"]]
    for visit in range(4):
        for path in ("/", "/sources/", "/bids/", "/bids/?search=도로", "/analytics/", "/alerts/"):
            get(path, page)
        for path in (
            f"/api/v1/sources/{source}/", f"/api/v1/crawls/{crawl}/",
            f"/api/v1/crawls/{crawl}/events/?page_size=50", f"/crawls/{crawl}/",
            f"/crawls/{crawl}/items/", f"/api/v1/bids/?source={source}&ordering=-views",
            f"/api/v1/bids/?crawl={crawl}&page_size=10", "/api/v1/bids/?search=공사",
            "/api/v1/analytics/bids-per-day/", "/api/v1/analytics/top-departments/",
            "/api/v1/analytics/high-value/?min_views=10", "/api/v1/notifications/unread-count/",
        ):  # fmt: skip
            get(path, api if path.startswith("/api/") else page)
        for bid in bids[visit::2]:
            get(f"/api/v1/bids/{bid}/", api)
            get(f"/bids/{bid}/", page)
    get("/feeds/not-a-real-feed-token-123/atom/", {})  # a capability URL: redacted in the log
    sent += 1
    body = {"workspace": workspace_id, "name": "Road works", "filter": {"search": "도로"}}
    status, answer = call(base, "POST", "/api/v1/alert-rules/", headers=api, number=sent, body=body)
    if status == 201:
        get(f"/api/v1/alert-rules/{json.loads(answer)['id']}/", api)
    return sent


def test_replay_sample_is_recorded_from_a_demo_board_session(
    forest, celery_worker, owner, workspace_a, demo_source, board
):
    """Re-records the sample log: REPLAY_SAMPLE_WRITE=1 writes it over the shipped one."""
    crawl = crawling.wait_for_crawl(services.crawl_start(source=demo_source))
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    _token, raw = services.token_create(user=owner, workspace=workspace_a, name="replay")
    since = len(forest.output())
    sent = demo_session(
        forest.base_url, token=raw, cookie=session_cookie(owner), workspace_id=workspace_a.pk
    )
    lines = access_lines(forest, since, prefix="demo-")
    assert len(lines) == sent
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    assert raw not in text
    assert "not-a-real-feed-token-123" not in text
    assert f"/feeds/{REDACTED}/atom/" in text
    read = logfile.read_stream(io.BytesIO(text.encode()))
    assert (len(read.entries), read.bad_count) == (sent, 0)
    routes = {f"{e.method} {logfile.resolve_path(e.path).route}" for e in read.entries}
    assert {"GET api/v1/bids/<pk>/", "GET bids/<int:bid_id>/", "POST api/v1/alert-rules/"} <= routes
    if os.environ.get("REPLAY_SAMPLE_WRITE"):
        SAMPLE.write_text(text)
    shipped = logfile.read_log(SAMPLE, max_bytes=10**7)
    assert shipped.bad_count == 0
    assert routes == {f"{e.method} {logfile.resolve_path(e.path).route}" for e in shipped.entries}


@pytest.fixture
def target(outsider, workspace_b):
    """Oscar's workspace B with a few sources, crawls and bids; a token and a session of his."""
    sources = [make_source(workspace_b, f"Busan board {n}") for n in range(2)]
    crawls = [succeeded_crawl(source) for source in sources]
    bids = [make_bid(sources[n % 2], title=f"Busan notice {n}") for n in range(6)]
    _, raw = services.token_create(user=outsider, workspace=workspace_b, name="replay")
    return {
        "sources": {s.pk for s in sources},
        "crawls": {c.pk for c in crawls},
        "bids": {b.pk for b in bids},
        "token": raw,
        "cookie": session_cookie(outsider),
    }


def replay(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("replay", *args, stdout=out, stderr=err, no_progress=True, **options)
    return out.getvalue(), err.getvalue()


def test_replay_of_the_sample_maps_ids_onto_the_target_workspace(forest, target, tmp_path):
    result_file = tmp_path / "a.json"
    since = len(forest.output())
    out, _ = replay(
        str(SAMPLE), target=forest.base_url, token=target["token"], cookie=target["cookie"],
        speed=50.0, concurrency=4, window=1.0, out=result_file,
    )  # fmt: skip
    result = json.loads(result_file.read_text())
    recorded = logfile.read_log(SAMPLE, max_bytes=10**7).entries
    posts = sum(e.method == "POST" for e in recorded)
    rules = sum(e.path.startswith("/api/v1/alert-rules/") for e in recorded) - posts
    assert result["meta"]["skipped"] == {
        "unsafe method POST (--unsafe)": posts,
        "a redacted token in the path": 1,  # the feed: its token is not in the log
        "no rule in the target": rules,  # workspace B has no alert rule
    }
    assert result["meta"]["bad_line_count"] == 0
    assert result["totals"]["count"] == len(recorded) - posts - 1 - rules
    bid_route = result["routes"]["GET api/v1/bids/<pk>/"]
    assert bid_route["status"] == {"2xx": bid_route["count"]}  # every id exists in workspace B
    assert bid_route["p50"] <= bid_route["p95"] <= bid_route["p99"] <= bid_route["max"]
    for figures in result["routes"].values():
        assert {"count", "errors", "p50", "p95", "p99"} <= set(figures)
    assert result["windows"]
    assert all(w["routes"] for w in result["windows"])
    assert "GET api/v1/bids/<pk>/" in out
    assert sum(w["totals"]["count"] for w in result["windows"]) == result["totals"]["count"]
    assert "Over time" in out
    # What the target was asked for: workspace B's ids only.
    sent = access_lines(forest, since, prefix="replay-")
    assert len(sent) == result["totals"]["count"]
    asked = {
        kind: {int(n) for line in sent for n in re.findall(pattern, line["path"])}
        for kind, pattern in (
            ("bids", r"^/(?:api/v1/)?bids/(\d+)/"),
            ("crawls", r"^/(?:api/v1/)?crawls/(\d+)/"),
            ("sources", r"[?&]source=(\d+)"),
        )
    }  # fmt: skip
    assert asked["bids"] == target["bids"]  # 40 recorded bids onto 6: each of them used
    assert asked["crawls"] <= target["crawls"]
    assert asked["sources"] <= target["sources"]
    assert asked["crawls"]
    assert asked["sources"]


def test_replay_sends_unsafe_methods_only_with_the_flag(forest, target, tmp_path):
    log = tmp_path / "unsafe.jsonl"
    log.write_text(
        _line("GET", "/api/v1/sources/", 0) + _line("POST", "/api/v1/alert-rules/", 1)
        + _line("DELETE", "/api/v1/alert-rules/7/", 2)
    )  # fmt: skip
    auth = {"target": forest.base_url, "token": target["token"], "speed": 100.0}
    replay(str(log), out=tmp_path / "safe.json", **auth)
    safe = json.loads((tmp_path / "safe.json").read_text())
    assert set(safe["routes"]) == {"GET api/v1/sources/"}
    assert safe["meta"]["skipped"] == {
        "unsafe method POST (--unsafe)": 1,
        "unsafe method DELETE (--unsafe)": 1,
    }
    replay(str(log), out=tmp_path / "all.json", unsafe=True, **auth)
    every = json.loads((tmp_path / "all.json").read_text())
    # No rule in workspace B: the DELETE cannot be mapped; the POST (no body logged) is sent.
    assert set(every["routes"]) == {"GET api/v1/sources/", "POST api/v1/alert-rules/"}
    assert every["meta"]["skipped"] == {"no rule in the target": 1}
    assert every["routes"]["POST api/v1/alert-rules/"]["status"] == {"4xx": 1}


def _line(method: str, path: str, second: int, status: int = 200) -> str:
    return (
        json.dumps(
            {
                "time": f"2026-12-05 04:00:{second:02d},000",
                "level": "INFO",
                "logger": "forest.access",
                "message": f"{method} {path} {status} 3.0ms",
                "request_id": f"r{second}",
            }
        )
        + "\n"
    )


def test_replay_reports_bad_lines_by_number_and_replays_the_rest(forest, target, tmp_path):
    log = tmp_path / "bad.jsonl"
    log.write_bytes(
        (_line("GET", "/api/v1/sources/", 0) + "not json\n"
         + '{"logger": "forest.access", "message": "GET nowhere"}\n'
         + json.dumps({"logger": "celery", "message": "other"}) + "\n").encode()
        + b"{" + b"x" * (logfile.MAX_LINE + 10) + b"}\n"
        + _line("GET", "/api/v1/bids/", 1).encode()
    )  # fmt: skip
    _, err = replay(str(log), target=forest.base_url, token=target["token"], out=tmp_path / "r")
    result = json.loads((tmp_path / "r").read_text())
    assert [n for n, _ in result["meta"]["bad_lines"]] == [2, 3, 5]
    assert result["meta"]["bad_line_count"] == 3
    assert result["meta"]["other_lines"] == 1
    assert f"{log}:2: skipped, not JSON" in err
    assert f"{log}:5: skipped, longer than {logfile.MAX_LINE} bytes" in err
    assert set(result["routes"]) == {"GET api/v1/sources/", "GET api/v1/bids/"}


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1:8000", "http://example.org", "http://[::ffff:a00:1]/", "ftp://127.0.0.1"],
)
def test_replay_refuses_a_target_that_is_neither_loopback_nor_allowed(url):
    with pytest.raises(CommandError, match="target"):
        replay(str(SAMPLE), target=url)


def test_replay_refusal_exits_non_zero_from_the_command_line():
    done = subprocess.run(
        python("manage.py", "replay", str(SAMPLE), "--target", "http://192.0.2.7:8000"),
        cwd=BASE_DIR, env=program_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "is not loopback" in done.stderr


def test_check_target_takes_loopback_in_every_spelling_and_allowlisted_hosts_only():
    for url in ("http://127.0.0.1:8000/", "http://127.1:9", "http://localhost", "http://[::1]:80"):
        assert check_target(url) == url.rstrip("/")
    assert check_target("http://stage.example.org:8000", allow=["stage.example.org"])
    assert check_target("http://10.1.2.3:8000", allow=["10.1.2.3:8000"])
    for url, allow in (
        ("http://10.1.2.3:8001", ["10.1.2.3:8000"]),
        ("http://user:pw@127.0.0.1/", []),
        ("http://stage.example.org.evil.test/", ["stage.example.org"]),
    ):
        with pytest.raises(TargetRefused):
            check_target(url, allow=allow)


def test_id_map_is_deterministic_and_wraps_around_the_targets_ids():
    recorded = {"bid": {30, 10, 20}, "source": {5}, "rule": {9}}
    ids = mapping.IdMap.build(recorded, {"bid": [102, 101], "source": [7]})
    assert ids.table == {"bid": {10: 101, 20: 102, 30: 101}, "source": {5: 7}}
    entry = logfile.Entry(1, 0.0, "GET", "/api/v1/bids/20/?source=5,5&cursor=abc&x=1", 200, 1.0)
    assert ids.path(entry, logfile.resolve_path(entry.path)) == "/api/v1/bids/102/?source=7,7&x=1"
    rule = logfile.Entry(2, 0.0, "GET", "/api/v1/alert-rules/9/", 200, 1.0)
    with pytest.raises(mapping.Unmappable, match="no rule in the target"):
        ids.path(rule, logfile.resolve_path(rule.path))


def _result(latencies: dict[str, list[float]], errors: int = 0) -> dict:
    samples = [
        Sample(route, float(i), ms, 200, None)
        for route, values in latencies.items()
        for i, ms in enumerate(values)
    ] + [Sample("GET api/v1/bids/", 0.0, 1.0, 500, "5xx")] * errors
    return report.summarize(samples, window=10.0, meta={"window_s": 10.0})


def test_replay_compare_flags_a_slower_route_and_more_errors(tmp_path):
    before = _result({"GET api/v1/bids/": [10.0] * 20, "GET api/v1/sources/": [5.0] * 20})
    after = _result({"GET api/v1/bids/": [10.0] * 20, "GET api/v1/sources/": [50.0] * 20}, errors=1)
    for name, doc in (("a.json", before), ("b.json", after)):
        (tmp_path / name).write_text(json.dumps(doc))
    out, _ = replay(compare=[tmp_path / "a.json", tmp_path / "b.json"], out=tmp_path / "c.json")
    comparison = json.loads((tmp_path / "c.json").read_text())
    sources = comparison["routes"]["GET api/v1/sources/"]
    assert sources["ratio"] == {"p50": 10.0, "p95": 10.0, "p99": 10.0}
    assert sources["regressed"]
    assert comparison["routes"]["GET api/v1/bids/"]["error_rate"]["after"] > 0
    assert sorted(comparison["regressions"]) == ["GET api/v1/bids/", "GET api/v1/sources/"]
    assert "REGRESSED" in out
    assert "2 route(s) regressed" in out
    same = report.compare(before, before, threshold=1.2, floor_ms=5.0)
    assert same["regressions"] == []


def test_replay_compare_refuses_a_file_that_is_not_a_result(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(CommandError, match="not a replay result"):
        replay(compare=[tmp_path / "a.json", tmp_path / "a.json"])


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert (report.percentile(values, 50), report.percentile(values, 99)) == (50.0, 99.0)
    assert report.percentile([], 95) == 0.0


def test_log_too_large_is_refused(tmp_path):
    with pytest.raises(CommandError, match="--max-bytes"):
        replay(str(SAMPLE), max_bytes=10)


def test_replay_counts_requests_nobody_answers_by_exception(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(_line("GET", "/api/v1/sources/", 0) + _line("GET", "/healthz", 1))
    out, _ = replay(str(log), target=f"http://127.0.0.1:{free_port()}", out=tmp_path / "r.json")
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["totals"]["errors"] == {"ClientConnectorError": 2}
    assert result["routes"]["GET healthz"]["status"] == {}
    assert "ClientConnectorError: 1" in out


def test_access_line_redacts_a_token_in_the_query(client, caplog):
    caplog.set_level("INFO", logger="forest.access")
    secret = "fst_abcdef0123456789"
    client.get(f"/api/v1/crawls/1/events/stream?after=2&token={secret}&x=1")
    (record,) = [r for r in caplog.records if r.name == "forest.access"]
    assert record.path == f"/api/v1/crawls/1/events/stream?after=2&token={REDACTED}&x=1"
    assert record.route == "api/v1/crawls/<int:pk>/events/stream"
    assert secret not in record.getMessage()
    assert (record.method, record.status) == ("GET", 401)


def test_replay_stops_when_the_target_refuses_the_token(forest, target):
    with pytest.raises(CommandError, match="answered 401: give a token of the target workspace"):
        replay(str(SAMPLE), target=forest.base_url, token="fst_not-a-token")


def test_replay_stops_when_the_target_does_not_answer():
    with pytest.raises(CommandError, match="did not answer the listing of its ids"):
        replay(str(SAMPLE), target=f"http://127.0.0.1:{free_port()}", token="fst_x")
