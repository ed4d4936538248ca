"""kombu's Redis transport with one fix we carry: a worker must outlive a lost broker.

celery 5.7.0 with kombu 5.7.0 (the latest releases): when Redis goes away while a task with
acks_late is running, the consumer collects the connection (kombu's Connection.collect detaches
the transport: ``transport.client = None``) and then closes it once more. That second close
reaches the task channel, whose first close failed half-way, and restores the unacknowledged
task; building a fresh Redis pool for it reads ``self.connection.client.hostname`` and raises
``AttributeError: 'NoneType' object has no attribute 'hostname'``. AttributeError is not a
connection error, so the worker logs "Unrecoverable error" and exits 1 (tests/test_celery_outages.py
reproduces it). Here a detached channel raises redis' ConnectionError instead, which every
caller treats as "broker unavailable": the worker reconnects, the running task goes on, and the
task message, still in Redis' unacked set, is redelivered after the visibility timeout if its
acknowledgement was lost (crawl tasks are idempotent).

Drop this module when a kombu release no longer raises AttributeError here (the test
`test_stock_redis_transport_still_needs_our_fix` fails then, and says so).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis import exceptions as redis_exceptions


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis_exceptions.ConnectionError("broker connection closed (transport detached)")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    """Selected by CELERY_BROKER_TRANSPORT for redis:// and rediss:// broker URLs."""

    Channel = Channel
