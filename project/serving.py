"""How `manage.py run` serves HTTP: nginx on the one public port routes by path, pages and the
REST API to gunicorn (project.wsgi), WebSockets and the SSE stream to daphne (project.asgi).

proxy_config() writes the same routes for `make run` (a config under var/) and for
docker-compose (deploy/nginx.conf, checked against it by tests/test_serving.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings

WSGI_APP = "project.wsgi:application"
ASGI_APP = "project.asgi:application"
# Paths only the ASGI server answers: WebSockets, and the async views that stream (the SSE
# stream of a crawl's events). Everything else, bid exports included, is plain WSGI.
STREAM_LOCATIONS = ("/ws/", r"~ ^/api/v1/crawls/[0-9]+/events/stream$")
# Every location sets them all (a location's proxy_set_header drops the server's): Host as the
# client sent it (ALLOWED_HOSTS, CSRF and the WebSocket origin check); X-Forwarded-For replaced
# by the address nginx saw (project/forwarded.py).
HEADERS = """\
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $forwarded_proto;
"""
STREAM_READ_TIMEOUT = "1h"  # a quiet stream stays open; the SSE view sends keep-alives


def nginx_find(*, install: bool = True) -> str | None:
    """nginx's path; installed with apt-get when missing and we may (root + apt-get)."""

    def find() -> str | None:
        return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")

    if (found := find()) or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "nginx"]):
        subprocess.run(command, env=env, check=False, stdout=sys.stderr, stderr=sys.stderr)  # noqa: S603
    return find()


def body_limit() -> str:
    """The proxy's body limit: above the app's own, so that the app answers 413 in its words."""
    return f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024 + 1024}k"


def proxy_config(*, listen: str, web: str, stream: str, local_dir: Path | None = None) -> str:
    """nginx.conf: `listen` public; `web` and `stream` the upstreams' host:port. With local_dir
    (make run) nginx stays in the foreground and keeps its pid and temp files there."""
    head = "worker_processes auto;\n"
    temp = ""
    if local_dir is not None:
        head = (
            f"daemon off;\nworker_processes 2;\npid {local_dir / 'nginx.pid'};\n"
            f"error_log stderr warn;\n"
        )
        temp = "".join(
            f"    {module}_temp_path {local_dir / module};\n"
            for module in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
    locations = "".join(
        f"""
        location {location} {{
            proxy_pass http://stream;
            proxy_http_version 1.1;
{HEADERS}            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout {STREAM_READ_TIMEOUT};
            proxy_send_timeout {STREAM_READ_TIMEOUT};
        }}
"""
        for location in STREAM_LOCATIONS
    )
    return f"""# Forest's reverse proxy: written by project/serving.py (tests/test_serving.py).
{head}events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    server_tokens off;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    client_max_body_size {body_limit()};
    client_body_buffer_size {body_limit()};  # in memory: no temp file (nginx's workers are nobody)
    large_client_header_buffers 4 16k;  # the app answers 414 itself past REQUEST_MAX_URL_LENGTH
    # A page of the API (tens of KiB) stays in memory, never in a temp file.
    proxy_buffer_size 16k;
    proxy_buffers 16 32k;
    proxy_busy_buffers_size 64k;
    proxy_max_temp_file_size 0;
{temp}    map $http_upgrade $connection_upgrade {{ default upgrade; "" ""; }}
    map $http_x_forwarded_proto $forwarded_proto {{ default $http_x_forwarded_proto; "" $scheme; }}
    upstream web {{ server {web}; keepalive 32; }}
    upstream stream {{ server {stream}; keepalive 32; }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://web;
            proxy_http_version 1.1;
{HEADERS}            proxy_set_header Connection "";
            proxy_read_timeout 300s;  # a long bid export streams through (X-Accel-Buffering: no)
        }}
{locations}    }}
}}
"""


def serving_processes(
    *,
    host: str,
    port: int,
    web_port: int,
    stream_port: int,
    config_dir: Path | None = None,
    workers: int | None = None,
    threads: int | None = None,
) -> dict[str, str]:
    """Shell commands (honcho's) of the proxy, gunicorn and daphne; writes the proxy's config
    into config_dir (default: var/proxy)."""
    nginx = nginx_find()
    if nginx is None:
        raise RuntimeError(
            "nginx is needed by `make run` (the reverse proxy in front of gunicorn and daphne): "
            "apt-get install nginx (or run make run as root, which installs it)."
        )
    var = Path(os.environ.get("FOREST_VAR_DIR", settings.BASE_DIR / "var"))
    local_dir = config_dir or var / "proxy" / str(port)  # one per port: runs side by side
    local_dir.mkdir(parents=True, exist_ok=True)
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    config = local_dir / "nginx.conf"
    config.write_text(
        proxy_config(
            listen=listen,
            web=f"127.0.0.1:{web_port}",
            stream=f"127.0.0.1:{stream_port}",
            local_dir=local_dir,
        )
    )
    python = shlex.quote(sys.executable)
    workers = workers or settings.WEB_WORKERS
    threads = threads or settings.WEB_THREADS
    kind = f"-k gthread --threads {threads}" if threads > 1 else "-k sync"
    d = shlex.quote(str(local_dir))
    return {
        "proxy": f"exec {shlex.quote(nginx)} -p {d} -c {shlex.quote(str(config))} -e stderr",
        "web": (
            f"exec {python} -m gunicorn {WSGI_APP} -b 127.0.0.1:{web_port} -w {workers} {kind}"
            " --keep-alive 75 --error-logfile - --log-level warning"
        ),
        "stream": f"exec {python} -m daphne -v 0 -b 127.0.0.1 -p {stream_port} {ASGI_APP}",
    }


def compose_proxy_config() -> str:
    """deploy/nginx.conf: the `proxy` service of docker-compose.yml in front of `web` (gunicorn)
    and `stream` (daphne). Regenerate it with
    .venv/bin/python manage.py shell -v 0 -c "from project import serving; \
        print(serving.compose_proxy_config(), end='')" > deploy/nginx.conf"""
    return proxy_config(listen="8080", web="web:8000", stream="stream:8000")
