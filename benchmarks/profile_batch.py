#!/usr/bin/env python3
"""Where a ``check_many`` batch spends its time: inside ``Batch.run`` (the
GIL-free curl loop) or in Python between two runs (interpret, feed,
bookkeeping), and how often ``run`` hands control back.

    .venv/bin/python benchmarks/profile_batch.py [N] [CONCURRENCY] [--delay d20|none]
        [--counter]

Wraps ``_core.Batch`` in a timing proxy for the duration of one batch
against the private nginx; the package itself is not modified.  With
``--counter`` a pure-Python counter thread runs next to the batch, as in
section (c) of run.py.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(1, str(HERE))

import mobilestatus as ms  # noqa: E402
from mobilestatus import _batch, _core  # noqa: E402
from nginx import Nginx  # noqa: E402

RealBatch = _core.Batch


class Stats:
    def __init__(self) -> None:
        self.gc: list[tuple[int, float]] = []
        self._gc_start = 0.0
        self.runs: list[tuple[float, float, int, int, int, float]] = []
        self.submits: list[tuple[float, int]] = []
        self.last_return: float | None = None
        self.between: list[float] = []


STATS = Stats()


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        STATS._gc_start = time.perf_counter()
    else:
        STATS.gc.append((info["generation"], time.perf_counter() - STATS._gc_start))


class TimedBatch:
    """Delegates to the real Batch; records every run() and submit()."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._batch = RealBatch(*args, **kwargs)

    def run(self, *args: object, **kwargs: object) -> list[tuple[int, object, bool]]:
        start = time.perf_counter()
        if STATS.last_return is not None:
            STATS.between.append(start - STATS.last_return)
        in_flight_before = self._batch.in_flight
        cpu = time.thread_time()
        result = self._batch.run(*args, **kwargs)
        end = time.perf_counter()
        STATS.runs.append((end - start, time.thread_time() - cpu, len(result),
                           in_flight_before, self._batch.in_flight,
                           float(kwargs.get("low_water", 0) or 0)))
        STATS.last_return = end
        return result

    def submit(self, items: list[tuple[int, bytes]], *args: object) -> None:
        start = time.perf_counter()
        self._batch.submit(items, *args)
        STATS.submits.append((time.perf_counter() - start, len(items)))

    def close(self) -> None:
        self._batch.close()

    @property
    def pending(self) -> int:
        return self._batch.pending

    @property
    def in_flight(self) -> int:
        return self._batch.in_flight


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=5000)
    parser.add_argument("concurrency", type=int, nargs="?", default=64)
    parser.add_argument("--delay", choices=["d20", "none"], default="d20")
    parser.add_argument("--counter", action="store_true")
    parser.add_argument("--server-log", action="store_true",
                        help="nginx access log: server-side concurrency and client turnaround")
    args = parser.parse_args()

    _batch._core = type("core", (), {"Batch": TimedBatch})  # type: ignore[assignment]
    with Nginx(access_log=args.server_log) as server:
        url = server.url("/d20" if args.delay == "d20" else "")
        with ms.Client("x", base_url=url) as client:
            client.check_many([f"139{i:08d}" for i in range(500)], concurrency=args.concurrency)
            STATS.__init__()  # type: ignore[misc]
            counter_n = [0]
            running = [True]

            def count() -> None:
                while running[0]:
                    counter_n[0] += 1

            thread = threading.Thread(target=count, daemon=True)
            if args.counter:
                thread.start()
                time.sleep(0.2)
            numbers = [f"138{i:08d}" for i in range(args.n)]
            gc.callbacks.append(_on_gc)
            epoch0 = time.time()
            c0, t0, n0 = time.process_time(), time.perf_counter(), counter_n[0]
            result = client.check_many(numbers, concurrency=args.concurrency)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            counted = counter_n[0] - n0
            epoch1 = time.time()
            gc.callbacks.remove(_on_gc)
            running[0] = False
            if args.counter:
                thread.join()
        log = server.read_access_log() if args.server_log else []

    runs = STATS.runs
    in_run = sum(r[0] for r in runs)
    run_cpu = sum(r[1] for r in runs)
    between = STATS.between
    floor = args.n * (0.02 if args.delay == "d20" else 0) / args.concurrency
    print(f"batch: {args.n} @ {args.concurrency}, wall {wall:.3f} s"
          + (f" = {wall / floor:.2f}x floor" if floor else "")
          + f", CPU {cpu / args.n * 1e6:.1f} us/req, ok {sum(isinstance(o, ms.CheckResult) for o in result)}")
    if args.counter:
        print(f"counter thread: {counted / wall / 1e6:.2f} M increments/s during the batch")
    print(f"run() calls: {len(runs)}, results per call: mean {statistics.mean(r[2] for r in runs):.1f},"
          f" max {max(r[2] for r in runs)}; calls returning nothing: {sum(1 for r in runs if r[2] == 0)}")
    print(f"time inside run() (GIL released): {in_run:.3f} s = {in_run / wall:.0%} of wall;"
          f" its thread CPU {run_cpu / args.n * 1e6:.1f} us/req")
    print(f"time in Python between runs: {sum(between):.3f} s = {sum(between) / wall:.0%} of wall;"
          f" per gap mean {statistics.mean(between) * 1e3:.2f} ms, max {max(between) * 1e3:.2f} ms;"
          f" per result {sum(between) / args.n * 1e6:.1f} us")
    durations = sorted(r[0] for r in runs)
    print(f"run() duration: median {statistics.median(durations) * 1e3:.2f} ms,"
          f" p10 {durations[len(durations) // 10] * 1e3:.2f} ms, max {durations[-1] * 1e3:.2f} ms")
    print(f"in flight when run() returns: mean {statistics.mean(r[4] for r in runs):.1f}"
          f" of {args.concurrency}; when it is entered: mean {statistics.mean(r[3] for r in runs):.1f}")
    if log:
        rows = [r for r in log if epoch0 - 0.01 <= r[0] - r[1] and r[0] <= epoch1 + 0.01]
        busy = sum(r[1] for r in rows)
        print(f"server: {len(rows)} requests in the batch window, nginx-side time mean"
              f" {statistics.mean(r[1] for r in rows) * 1e3:.2f} ms; mean requests held by nginx"
              f" {busy / wall:.1f} of {args.concurrency}")
        by_conn: dict[int, list[tuple[float, float]]] = {}
        for end, took, conn, _n in rows:
            by_conn.setdefault(conn, []).append((end - took, end))
        gaps = []
        for reqs in by_conn.values():
            reqs.sort()
            gaps.extend(b[0] - a[1] for a, b in zip(reqs, reqs[1:]))
        gaps.sort()
        if gaps:
            q = lambda f: gaps[min(len(gaps) - 1, int(f * len(gaps)))] * 1e3  # noqa: E731
            print(f"client turnaround (answer sent by nginx -> next request on that connection"
                  f" read by nginx, ms resolution): median {q(0.5):.1f} ms, p90 {q(0.9):.1f},"
                  f" p99 {q(0.99):.1f}, max {gaps[-1] * 1e3:.1f}; mean {statistics.mean(gaps) * 1e3:.2f} ms")
    for gen in (0, 1, 2):
        pauses = [d for g, d in STATS.gc if g == gen]
        if pauses:
            print(f"gc generation {gen}: {len(pauses)} collections, {sum(pauses) * 1e3:.1f} ms in all,"
                  f" longest {max(pauses) * 1e3:.2f} ms")
    print(f"submit() calls: {len(STATS.submits)}, {sum(s[0] for s in STATS.submits) * 1e3:.1f} ms total")


if __name__ == "__main__":
    main()
