"""pytest plugin loaded with `-p tests.bootstrap`, before pytest-django imports settings.

Gives the session real servers: the embedded PostgreSQL and Redis (started, or reused when up,
and stopped at the end if this session started them) unless DATABASE_URL / REDIS_URL are set.
The tests use their own Redis database (TEST_REDIS_URL, or db 15 of REDIS_URL) so that a
`make run` on the same machine never shares a queue with the test worker.
"""

import os
import socket

from project import runtime

TEST_REDIS_DB = 15


def _with_db(url: str, db: int) -> str:
    base, _, last = url.rstrip("/").rpartition("/")
    return f"{base}/{db}" if last.isdigit() else f"{url.rstrip('/')}/{db}"


# The suite connects as the server's superuser (it makes the test database); FOREST_TEST_RLS=1
# holds it to row-level security as the application's role (tests/conftest.py).
os.environ.setdefault("DATABASE_RLS", "off")
runtime.bootstrap(stop_at_exit=True)
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL") or _with_db(
    os.environ["REDIS_URL"], TEST_REDIS_DB
)
os.environ.pop("CELERY_BROKER_URL", None)

# The session's demo board (tests/conftest.py starts it): allowlisted through settings, in this
# process and in every worker the tests start.
with socket.socket() as _sock:
    _sock.bind(("127.0.0.1", 0))
    os.environ["DEMO_BOARD_ADDRESS"] = f"127.0.0.1:{_sock.getsockname()[1]}"

# The notifications tests' webhook receiver (tests/test_notifications.py): allowlisted like the
# board, and webhooks retried fast, in this process and in every worker the tests start.
with socket.socket() as _sock:
    _sock.bind(("127.0.0.1", 0))
    os.environ["TEST_WEBHOOK_RECEIVER"] = f"127.0.0.1:{_sock.getsockname()[1]}"
os.environ["CRAWL_ALLOWLIST"] = ",".join(
    filter(None, [os.environ.get("CRAWL_ALLOWLIST", ""), os.environ["TEST_WEBHOOK_RECEIVER"]])
)
os.environ["WEBHOOK_BACKOFF_SECONDS"] = "0.2"
os.environ["WEBHOOK_MAX_ATTEMPTS"] = "3"

# The notification tests' SMTP server (tests/test_notification_delivery.py): every worker the
# tests start sends alert emails to it, and retries fast. This process keeps pytest-django's
# locmem backend.
with socket.socket() as _sock:
    _sock.bind(("127.0.0.1", 0))
    os.environ["TEST_SMTP_SERVER"] = f"127.0.0.1:{_sock.getsockname()[1]}"
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.smtp.EmailBackend"
os.environ["EMAIL_HOST"], os.environ["EMAIL_PORT"] = os.environ["TEST_SMTP_SERVER"].split(":")
os.environ["EMAIL_BACKOFF_SECONDS"] = "0.2"
os.environ["EMAIL_MAX_ATTEMPTS"] = "3"

# The Apprise channel tests' receiver (tests/test_notification_channels.py): allowlisted like the
# webhook receiver, channel retries fast, in this process and in every worker the tests start.
with socket.socket() as _sock:
    _sock.bind(("127.0.0.1", 0))
    os.environ["TEST_CHANNEL_RECEIVER"] = f"127.0.0.1:{_sock.getsockname()[1]}"
os.environ["CRAWL_ALLOWLIST"] += f",{os.environ['TEST_CHANNEL_RECEIVER']}"
os.environ["CHANNEL_BACKOFF_SECONDS"] = "0.2"
os.environ["CHANNEL_MAX_ATTEMPTS"] = "3"
