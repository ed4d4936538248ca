"""The default shape of a crawl: how many runs share it when it is started without a count."""

from crawls import services
from crawls.models import Crawl
from project.settings import crawl_runs_default
from tests.factories import make_source


def test_one_run_per_two_cores_at_most_the_pool():
    assert crawl_runs_default(1, 0) == 1
    assert crawl_runs_default(2, 0) == 1  # measured: two runs on 2 cores lost to one
    assert crawl_runs_default(8, 0) == 4
    assert crawl_runs_default(8, 3) == 3  # the crawl workers' pool is smaller
    assert crawl_runs_default(16, 1) == 1


def test_crawl_start_sends_the_default_number_of_tasks(
    db, workspace_a, settings, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        services.crawls.celery_app, "send_task", lambda name, **kw: sent.append((name, kw))
    )
    settings.CRAWL_WORKERS_PER_CRAWL = 3
    source = make_source(workspace_a)
    with django_capture_on_commit_callbacks(execute=True):
        crawl = services.crawl_start(source=source)
    assert crawl.status == Crawl.Status.QUEUED
    assert [name for name, _ in sent] == ["crawls.run"] * 3
    assert {kw["args"][0] for _, kw in sent} == {crawl.pk}
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.crawl_start(source=make_source(workspace_a, name="Other"), workers=1)
    assert len(sent) == 1
