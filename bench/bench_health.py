"""Health checks against their floors (docs/design.md, "Health").

One health run over 200 tasks with 10,000 outcome lines each (JSON lines appended in time order,
~5% failures with a few distinct messages), one `tasks_lib.health.verdict.evaluate` per task's file, in
one process without Prefect:

1. wall time with a realistic window (the last 60 minutes hold ~1/14 of the lines);
2. wall time with every line inside the window;
3. peak RSS of this process;
4. linear growth: time and bytes read for windows of 1,000 / 2,000 / 4,000 / 8,000 lines per
   task, and a 10x bigger file with the same window;
5. hostile input , each one `evaluate`: a sparse 8 GiB file of one line without a
   newline (the floor: ~16-23 s before, reading the whole line backwards; target: < 1 s), 3 MiB
   lines inside the window, 3,000,000 tiny lines without a run, and special files (a FIFO
   without a writer, /dev/zero, a directory): time, bytes read and the verdict.

Files are read from the page cache (they were just written): this measures the reader, not the
disk.

    .venv/bin/python bench/bench_health.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks_lib.core.settings import HealthSettings  # noqa: E402
from tasks_lib.health.verdict import HealthResult, evaluate  # noqa: E402

VERSION = "1.3.0"
SPAN = timedelta(hours=14)  # so the last 60 minutes hold ~1/14 of the lines
NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
ERRORS = ("TimeoutError: tushare did not answer in 30 s", "KeyError: 'close'",
          "ValueError: empty frame for 600519.SH", "ConnectionResetError: [Errno 104] reset by peer")
HEALTH = HealthSettings(min_samples=10, threshold=0.1)


def stamps(n: int) -> list[datetime]:
    """n run times, oldest first, evenly spread over n/10,000 * SPAN, the newest just before NOW."""
    step = SPAN / 10_000
    return [NOW - step * (n - i) for i in range(n)]


def line_starts(times: list[datetime]) -> list[str]:
    return [t.strftime('{"ts": "%Y-%m-%dT%H:%M:%SZ') for t in times]


def write_source(path: Path, starts: list[str], seed: int) -> None:
    """One file, one write: ~5% failures with a few distinct messages."""
    rng = random.Random(seed)
    ok = f'", "ok": true, "error": null, "version": "{VERSION}"}}\n'
    failed = [f'", "ok": false, "error": "{e}", "version": "{VERSION}"}}\n' for e in ERRORS]
    rand, pick = rng.random, rng.choice
    path.write_bytes("".join([s + (pick(failed) if rand() < 0.05 else ok) for s in starts]).encode())


def one_run(files: list[Path], since: datetime) -> tuple[float, list[HealthResult]]:
    t0 = time.perf_counter()
    results = [evaluate(p, task_id=f"T{i:03d}", version=VERSION, health=HEALTH, since=since,
                        now=NOW) for i, p in enumerate(files)]
    return time.perf_counter() - t0, results


def timed(files: list[Path], since: datetime, repeat: int) -> tuple[float, list[HealthResult]]:
    """Median wall time of ``repeat`` runs, and the results of the last."""
    times, results = [], []
    for _ in range(repeat):
        t, results = one_run(files, since)
        times.append(t)
    return statistics.median(times), results


def summary(results: list[HealthResult]) -> str:
    samples = sum(r.samples for r in results)
    failures = sum(r.failures for r in results)
    verdicts = {v: sum(r.verdict == v for r in results) for v in ("healthy", "breach", "inconclusive")}
    mb = sum(r.bytes_read for r in results) / 1e6
    return (f"{samples:,} runs counted, {failures:,} failed, {mb:.1f} MB read; "
            + ", ".join(f"{n} {v}" for v, n in verdicts.items() if n))


def hostile(base: Path) -> None:
    """Section 5: one evaluate per hostile source, best of three (the page cache is warm)."""
    since = NOW - timedelta(minutes=60)
    run = f'{{"ts": "{(NOW - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}", "ok": true}}\n'
    sparse = base / "sparse.jsonl"
    sparse.touch()
    os.truncate(sparse, 8 * 1024 ** 3)
    with sparse.open("ab") as fh:
        fh.write(b'{"ts": "2026-11-29T11:59:00Z", "ok": false')
    huge = base / "huge.jsonl"
    huge.write_bytes((run * 50 + '{"x": "' + "y" * 3 * 1024 ** 2 + '"}\n' + run * 50).encode())
    tiny = base / "tiny.jsonl"
    tiny.write_bytes(run.encode() + b"x\n" * 3_000_000 + run.encode() * 20)
    fifo = base / "fifo.jsonl"
    os.mkfifo(fifo)
    (base / "dir.jsonl").mkdir()
    cases = [("8 GiB sparse line, no newline", sparse, "target: < 1 s (floor: 16-23 s)"),
             ("3 MiB line inside the window", huge, ""), ("3,000,000 tiny lines, no run", tiny, ""),
             ("FIFO without a writer", fifo, ""), ("/dev/zero", Path("/dev/zero"), ""),
             ("a directory", base / "dir.jsonl", "")]
    for name, path, target in cases:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            r = evaluate(path, task_id="T000", version=VERSION, health=HEALTH, since=since, now=NOW)
            times.append(time.perf_counter() - t0)
        print(f"  {name:32s} {min(times) * 1000:8.1f} ms  {r.bytes_read / 1e6:7.2f} MB read"
              f"  {r.verdict:6s} {target}")
    sparse.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="50 tasks, one repeat")
    args = ap.parse_args()
    tasks = 50 if args.quick else 200
    repeat = 1 if args.quick else 3
    base = Path(tempfile.mkdtemp(prefix="clawback-bench-health-"))
    try:
        t0 = time.perf_counter()
        times = stamps(10_000)
        files = [base / f"T{i:03d}.jsonl" for i in range(tasks)]
        starts = line_starts(times)
        for i, p in enumerate(files):
            write_source(p, starts, seed=i)
        big_times = stamps(100_000)
        big = [base / f"big{i:02d}.jsonl" for i in range(tasks // 10)]
        starts = line_starts(big_times)
        for i, p in enumerate(big):
            write_source(p, starts, seed=1000 + i)
        size = sum(p.stat().st_size for p in files) / 1e6
        print(f"{tasks} tasks x 10,000 lines ({size:.0f} MB) and {len(big)} x 100,000 lines "
              f"written in {time.perf_counter() - t0:.1f}s (median of {repeat} runs below)")

        print(f"\n1. one health run over {tasks} tasks, window = last 60 minutes:")
        t, res = timed(files, NOW - timedelta(minutes=60), repeat)
        print(f"  {t:6.2f}s   target: <= 5 s excluding Prefect's start   ({summary(res)})")

        print(f"\n2. one health run over {tasks} tasks, every line inside the window:")
        t, res = timed(files, times[0] - timedelta(seconds=1), repeat)
        print(f"  {t:6.2f}s   target: <= 5 s excluding Prefect's start   ({summary(res)})")

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(f"\n3. peak RSS of this process: {rss:.0f} MB   target: <= 300 MB"
              f"   (Prefect imported: {'prefect' in sys.modules})")

        print(f"\n4. linear growth ({tasks} tasks; the time per 1,000 lines read should stay constant;"
              "\n   lines read = the window + what is left of the block holding its start + one"
              " more block of 64 KiB):")
        line_bytes = size * 1e6 / (tasks * 10_000)
        for k in (1_000, 2_000, 4_000, 8_000):
            t, res = timed(files, times[-k], repeat)
            read = sum(r.bytes_read for r in res)
            per = t / (read / line_bytes / 1000) * 1000
            print(f"  window {k:5,} lines/task: {t:6.2f}s  {read / 1e6:6.1f} MB"
                  f" (~{read / line_bytes / tasks:5,.0f} lines/task) read"
                  f"  {per:5.2f} ms per 1,000 lines read")
        since = NOW - timedelta(minutes=60)
        small_t, small_res = timed(files[:len(big)], since, repeat * 3)
        big_t, big_res = timed(big, since, repeat * 3)
        n = len(big)
        print(f"  same 60-minute window, {n} files each: 10,000 lines/file "
              f"{small_t / n * 1000:6.2f} ms/task, {sum(r.bytes_read for r in small_res) / n / 1e3:5.0f} kB/task;"
              f"  100,000 lines/file {big_t / n * 1000:6.2f} ms/task,"
              f" {sum(r.bytes_read for r in big_res) / n / 1e3:5.0f} kB/task")

        print("\n5. hostile input, one task each (best of 3):")
        hostile(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
