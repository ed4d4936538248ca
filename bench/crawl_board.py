"""bench-crawl's board server: the demo board exported as static files and served by nginx (or
the aiohttp demo board), its raw rate, and the CPU a process tree used (bench/crawl.py)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

from bench import crawl_text
from bench.common import (
    apt_binary,
    free_port,
    log,
    wait_port,
)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    name: str
    base_url: str
    start_url: str
    proc: subprocess.Popen
    # The text board (bench/crawl_text.py), nginx only: its items by URL, its page count.
    text: dict[str, crawl_text.TextItem] | None = None
    text_pages: int = 0


def nginx_find(*, install: bool) -> str | None:
    return apt_binary("nginx", "nginx-light", install=install)


def nginx_config(nginx: str, root: Path, tmp: Path, port: int) -> Path:
    built = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False).stderr
    # Temp paths of the modules compiled in, so that nothing outside tmp is needed.
    temp_paths = "".join(
        f"    {module}_temp_path {tmp / module};\n"
        for module in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        if f"--http-{module.replace('_', '-')}-temp-path" in built
    )
    config = tmp / "nginx.conf"
    config.write_text(
        f"""daemon off;
worker_processes 1;
pid {tmp / "nginx.pid"};
error_log {tmp / "nginx-error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    types {{ text/plain txt; application/xml xml; }}
    default_type text/html;
    charset utf-8;
    charset_types text/plain application/xml;  # and text/html
{temp_paths}    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ try_files $uri =404; }}
    }}
}}
"""
    )
    return config


def nginx_start(nginx: str, board, pages: int, tmp: Path, text_pages: int) -> Server:
    root = tmp / "board"
    previous = os.umask(0o022)  # nginx's workers run as nobody when started by root
    try:
        tmp.chmod(0o755)
        count = board.export_static(board.BoardConfig.bench(pages), root)
        text, text_count = crawl_text.export(root, text_pages) if text_pages else ({}, 0)
    finally:
        os.umask(previous)
    port = free_port()
    config = nginx_config(nginx, root, tmp, port)
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(config), "-e", str(tmp / "nginx-error.log")],
        stdin=subprocess.DEVNULL,
    )
    wait_port(port, proc, what="nginx")
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr
    name = version.strip().rpartition(" ")[2] or "nginx"
    base = f"http://127.0.0.1:{port}"
    log(f"board: {count} static files served by {name} at {base}")
    log(f"text board: {text_count} pages at {base}{crawl_text.start_path()}")
    # The static export has listing page 1 only at /notices/page/1.
    text_items = {f"{base}{path}": item for path, item in text.items()}
    return Server(name, base, f"{base}/notices/page/1", proc, text_items or None, text_count)


def aiohttp_board_start(pages: int, tmp: Path) -> Server:
    port = free_port()
    with (tmp / "board.log").open("wb") as output:
        proc = subprocess.Popen(
            [
                sys.executable, "manage.py", "demo_board", "--bench", str(pages), "--no-hostile",
                "--host", "127.0.0.1", "--port", str(port),
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    wait_port(port, proc, what="the aiohttp demo board")
    base = f"http://127.0.0.1:{port}"
    log(f"board: NO nginx; the aiohttp demo board (manage.py demo_board --bench) at {base}")
    return Server("aiohttp demo board", base, f"{base}/notices", proc)


def server_rate(base_url: str, paths: list[str], *, concurrency: int, requests: int) -> float:
    """Requests per second the server answers to one aiohttp client at `concurrency`."""

    async def measure() -> float:
        todo = iter(paths[: concurrency * 4])  # first, open the connections
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(base_url, connector=connector) as session:

            async def client() -> None:
                for path in todo:
                    async with session.get(path) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"{path}: HTTP {response.status}")

            await asyncio.gather(*(client() for _ in range(concurrency)))
            todo = itertools.islice(itertools.cycle(paths), requests)
            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            return requests / (time.perf_counter() - started)

    return asyncio.run(measure())


def process_cpu(proc: psutil.Process) -> float:
    total = 0.0
    for p in (proc, *proc.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total
