"""A client process of bench/stream.py: N WebSocket clients of one stream, as asyncio tasks.

Connects every client, prints "ready", then records (seq, receipt epoch) per client until the
final event (with --resume, reconnecting with ?after= when cut off before it); writes them as
JSON to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

import websockets

FINAL = "crawl.succeeded"


async def run(args) -> None:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    records: list[list] = [[] for _ in range(args.clients)]
    opened = resumed = 0
    gate = asyncio.Semaphore(50)  # handshakes in flight

    async def client(record: list) -> None:
        nonlocal opened, resumed
        url = args.url
        while True:
            async with gate:
                socket = await websockets.connect(
                    url, additional_headers=headers, origin=args.origin, max_queue=None,
                    open_timeout=120,
                )  # fmt: skip
            opened += url == args.url
            async with socket:
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for text in socket:
                        received = time.time()
                        message = json.loads(text)
                        record.append((message["seq"], received))
                        if message["event"] == FINAL:
                            return
            if not args.resume:
                return
            # Closed before the final event (daphne drops a slow reader 1 s after its close
            # frame): resume after the last sequence received, as docs/live.md tells clients.
            resumed += 1
            url = f"{args.url}?after={record[-1][0] if record else 0}"

    tasks = [asyncio.create_task(client(record)) for record in records]
    while opened < args.clients and not all(task.done() for task in tasks):
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    done, pending = await asyncio.wait(tasks, timeout=args.deadline)
    for task in pending:
        task.cancel()
    errors = [repr(task.exception()) for task in done if task.exception() is not None]
    with open(args.out, "w") as out:
        result = {"records": records, "errors": errors[:5], "timeouts": len(pending)}
        json.dump({**result, "resumed": resumed}, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--token", default="")
    parser.add_argument("--out", required=True)
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--resume", action="store_true", help="reconnect with ?after= if cut")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
