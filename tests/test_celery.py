"""A Celery round trip through the real broker, a real worker process and the result database."""

import json
import uuid

import pytest
from django_celery_results.models import TaskResult

from project.celery import app, ping_task


def test_celery_is_configured_for_redelivery_and_json():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.result_backend == "django-db"


@pytest.mark.django_db(transaction=True)
def test_ping_task_round_trip_through_a_worker(celery_worker):
    result = ping_task.delay()
    answer = result.get(timeout=30)
    assert answer["pong"] is True
    assert answer["hostname"].startswith("test@")
    stored = TaskResult.objects.get(task_id=result.id)
    assert stored.status == "SUCCESS"
    assert stored.task_name == "project.ping"


@pytest.mark.django_db(transaction=True)
def test_worker_log_lines_carry_the_task_id_as_request_id(celery_worker):
    task_id = uuid.uuid4().hex
    ping_task.apply_async(task_id=task_id).get(timeout=30)
    lines = [
        json.loads(line) for line in celery_worker.output().splitlines() if line.startswith("{")
    ]
    mine = [line for line in lines if line.get("request_id") == task_id]
    assert mine, "no worker log line carries the task id"
    assert all({"time", "level", "logger", "message", "crawl_id"} <= set(line) for line in mine)
