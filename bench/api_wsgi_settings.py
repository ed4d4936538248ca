"""The WSGI stock peer's settings (bench/api.py): Forest's settings and the peer's URLs, with
Django's own persistent connections (CONN_MAX_AGE) instead of the psycopg pool, as a stock
Django project under gunicorn has them."""

from bench.api_settings import *  # noqa: F403

DATABASES["default"]["OPTIONS"].pop("pool", None)  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False  # noqa: F405
