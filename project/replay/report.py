"""The result of a replay: per route counts, errors and latency percentiles, overall and per
window of time; the comparison of two results (before/after), with regressions flagged."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from project.replay.runner import Sample

RESULT_VERSION = 1


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q`-th percentile of `values` (sorted or not); 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def route_figures(samples: Iterable[Sample]) -> dict[str, Any]:
    samples = list(samples)
    latencies = [s.latency_ms for s in samples if s.status is not None]
    errors = Counter(s.error for s in samples if s.error is not None)
    statuses = Counter(f"{s.status // 100}xx" for s in samples if s.status is not None)
    return {
        "count": len(samples),
        "errors": dict(sorted(errors.items())),
        "error_count": sum(errors.values()),
        "status": dict(sorted(statuses.items())),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": max(latencies, default=0.0),
    }


def _by_route(samples: Iterable[Sample]) -> dict[str, list[Sample]]:
    grouped: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        grouped[sample.route].append(sample)
    return dict(sorted(grouped.items()))


def summarize(samples: list[Sample], *, window: float, meta: dict[str, Any]) -> dict[str, Any]:
    """The result document (--out writes it as JSON; --compare reads two of them)."""
    windows = []
    if samples:
        last = max(s.at for s in samples)
        for index in range(int(last // window) + 1):
            start = index * window
            inside = [s for s in samples if start <= s.at < start + window]
            if inside:
                windows.append(
                    {
                        "start": start,
                        "end": start + window,
                        "totals": route_figures(inside),
                        "routes": {r: route_figures(g) for r, g in _by_route(inside).items()},
                    }
                )
    errors = Counter(s.error for s in samples if s.error is not None)
    return {
        "version": RESULT_VERSION,
        "meta": meta,
        "totals": {**route_figures(samples), "errors": dict(sorted(errors.items()))},
        "routes": {route: route_figures(group) for route, group in _by_route(samples).items()},
        "windows": windows,
    }


def print_result(result: dict[str, Any], console: Console) -> None:
    table = Table(title="Replay: latency per route (ms)")
    for column in ("route", "count", "errors", "p50", "p95", "p99", "max"):
        table.add_column(column, justify="left" if column in ("route", "errors") else "right")
    for route, f in result["routes"].items():
        errors = ", ".join(f"{k}: {v}" for k, v in f["errors"].items()) or "-"
        table.add_row(
            route, str(f["count"]), errors, *(f"{f[k]:.1f}" for k in ("p50", "p95", "p99", "max"))
        )
    console.print(table)
    over_time = Table(title="Over time (ms)")
    for column in ("window (s)", "count", "errors", "p50", "p95", "p99"):
        over_time.add_column(column, justify="right")
    for window in result["windows"]:
        f = window["totals"]
        over_time.add_row(
            f"{window['start']:g}-{window['end']:g}", str(f["count"]), str(f["error_count"]),
            *(f"{f[k]:.1f}" for k in ("p50", "p95", "p99")),
        )  # fmt: skip
    console.print(over_time)
    meta, totals = result["meta"], result["totals"]
    console.print(
        f"sent {totals['count']}, errors {totals['error_count']} {totals['errors'] or ''}; "
        f"p50 {totals['p50']:.1f} ms, p95 {totals['p95']:.1f} ms, p99 {totals['p99']:.1f} ms "
        f"over {meta.get('elapsed_s', 0):.1f} s in {len(result['windows'])} windows of "
        f"{meta.get('window_s')} s"
    )
    for reason, count in sorted(meta.get("skipped", {}).items()):
        console.print(f"skipped {count}: {reason}")
    if meta.get("bad_line_count"):
        numbers = ", ".join(str(n) for n, _ in meta["bad_lines"][:10])
        console.print(f"bad lines {meta['bad_line_count']} (skipped), first at lines {numbers}")


# --- Before/after ---------------------------------------------------------------------------


def _ratio(after: float, before: float) -> float | None:
    return round(after / before, 3) if before > 0 else None


def compare(
    before: dict[str, Any], after: dict[str, Any], *, threshold: float, floor_ms: float
) -> dict[str, Any]:
    """Per route of both results: after/before ratios of p50, p95 and p99, and the error rates.
    A route regressed when its p95 grew by more than `threshold` times and `floor_ms` ms, or its
    error rate grew."""
    rows: dict[str, dict[str, Any]] = {}
    for route in sorted(set(before["routes"]) | set(after["routes"])):
        a, b = before["routes"].get(route), after["routes"].get(route)
        if a is None or b is None:
            rows[route] = {"only_in": "after" if a is None else "before", "regressed": False}
            continue
        rate_a = a["error_count"] / a["count"] if a["count"] else 0.0
        rate_b = b["error_count"] / b["count"] if b["count"] else 0.0
        slower = b["p95"] > a["p95"] * threshold and b["p95"] - a["p95"] > floor_ms
        rows[route] = {
            "before": {k: a[k] for k in ("count", "p50", "p95", "p99", "error_count")},
            "after": {k: b[k] for k in ("count", "p50", "p95", "p99", "error_count")},
            "ratio": {k: _ratio(b[k], a[k]) for k in ("p50", "p95", "p99")},
            "error_rate": {"before": round(rate_a, 4), "after": round(rate_b, 4)},
            "regressed": slower or rate_b > rate_a,
        }
    return {"routes": rows, "regressions": [r for r, row in rows.items() if row["regressed"]]}


def print_comparison(result: dict[str, Any], console: Console) -> None:
    table = Table(title="Replay: after / before")
    for column in ("route", "p50", "p95", "p99", "errors before → after", ""):
        table.add_column(column, justify="left" if column in ("route", "") else "right")
    for route, row in result["routes"].items():
        if "only_in" in row:
            table.add_row(route, "", "", "", "", f"only {row['only_in']}")
            continue
        ratios = [f"{v:.2f}x" if v is not None else "-" for v in row["ratio"].values()]
        errors = f"{row['before']['error_count']} → {row['after']['error_count']}"
        table.add_row(route, *ratios, errors, "REGRESSED" if row["regressed"] else "")
    console.print(table)
    count = len(result["regressions"])
    console.print(f"{count} route(s) regressed" if count else "no regression")
