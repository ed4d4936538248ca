"""The Celery application. Configuration lives in settings (CELERY_* names).

Workers run with acks_late, reject-on-worker-lost and prefetch 1, so a killed worker's task is
redelivered; JSON only; results in PostgreSQL through django-celery-results.
"""

import os
from typing import Any

from celery import Celery, signals

from project import dbscope, logs, tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("forest")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def _use_django_logging(**_kwargs: Any) -> None:
    """Workers and beat log in the same structured format as the web process."""
    import logging.config  # noqa: PLC0415 - only in Celery processes

    from django.conf import settings  # noqa: PLC0415 - settings are ready once Celery logs

    logging.config.dictConfig(settings.LOGGING)


@signals.task_prerun.connect
def _bind_task_id(task_id: str | None = None, **_kwargs: Any) -> None:
    # Inside a task, the "request id" of every log line is the task id.
    logs.request_id_var.set(task_id or "-")


# --- i15-rls: each task runs in the database scope of its workspace, or the system scope -------
@signals.task_prerun.connect
def _enter_db_scope(sender: Any = None, args: Any = None, **_kwargs: Any) -> None:
    dbscope.set_scope(dbscope.task_scope(getattr(sender, "name", ""), args))


@signals.task_postrun.connect
def _leave_db_scope(**_kwargs: Any) -> None:
    dbscope.set_scope(dbscope.NOTHING)


@signals.task_postrun.connect
def _unbind_task_id(**_kwargs: Any) -> None:
    logs.request_id_var.set("-")
    logs.crawl_id_var.set("-")


# --- Tracing (project/tracing.py): set up after the fork, in each process that runs tasks -------


@signals.worker_process_init.connect
def _trace_pool_child(**_kwargs: Any) -> None:
    tracing.setup("worker")


@signals.worker_init.connect
def _trace_worker(sender: Any = None, **_kwargs: Any) -> None:
    # Pools that do not fork (solo, threads) run tasks in this process.
    if sender is not None and "prefork" not in str(getattr(sender, "pool_cls", "prefork")):
        tracing.setup("worker")


@signals.worker_process_shutdown.connect
def _flush_pool_child(**_kwargs: Any) -> None:
    tracing.flush()


@signals.beat_init.connect
def _trace_beat(**_kwargs: Any) -> None:
    tracing.setup("beat")


@app.task(name="project.ping")
def ping_task() -> dict[str, Any]:
    """Answer from a worker: proves broker → worker → result backend works end to end."""
    return {"pong": True, "hostname": ping_task.request.hostname}
