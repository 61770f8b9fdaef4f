"""Health source reading and verdicts (tasks_lib/health/verdict.py): real files in tmp_path, no mocks."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks_lib.core import settings as task_settings
from tasks_lib.core.errors import BadInput
from tasks_lib.core.settings import HealthSettings
from tasks_lib.core.workspace import Task
from tasks_lib.health import source as health_source
from tasks_lib.health import verdict as health
from tasks_lib.secrets import masking
from tests.health.test_health_fast import local_zone

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=1)


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(minutes_ago: float, ok: bool = True, error: str | None = None,
        version: str | None = None) -> dict:
    rec: dict = {"ts": ts(NOW - timedelta(minutes=minutes_ago)), "ok": ok}
    if error is not None:
        rec["error"] = error
    if version is not None:
        rec["version"] = version
    return rec


def write(path: Path, records: list[dict | str | bytes]) -> Path:
    """Oldest first, as a task appends them; strings/bytes are written as raw lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for rec in records:
            if isinstance(rec, bytes):
                fh.write(rec + b"\n")
            elif isinstance(rec, str):
                fh.write(rec.encode() + b"\n")
            else:
                fh.write(json.dumps(rec).encode() + b"\n")
    return path


def evaluate(path: Path, *, version: str | None = "1.0.0", since: datetime = SINCE,
             min_samples: int = 10, threshold: float = 0.1, **kw) -> health.HealthResult:
    hs = HealthSettings(min_samples=min_samples, threshold=threshold)
    kw.setdefault("now", NOW)
    return health.evaluate(path, task_id="T01", version=version, health=hs, since=since, **kw)


def runs_oldest_first(n_ok: int, n_fail: int, error: str = "boom") -> list[dict]:
    """n_ok + n_fail runs inside the last hour, failures interleaved, oldest first."""
    n = n_ok + n_fail
    recs = [run(50 - i * 40 / max(n, 1), ok=i >= n_fail, error=None if i >= n_fail else error)
            for i in range(n)]
    return recs


# -- verdict boundaries -----------------------------------------------------------------------
def test_min_samples_boundary(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    write(p, runs_oldest_first(0, 9))
    r = evaluate(p)
    assert (r.verdict, r.samples, r.failures) == ("inconclusive", 9, 9)
    assert "fewer than 10" in r.detail
    write(p, runs_oldest_first(0, 10))
    r = evaluate(p)
    assert (r.verdict, r.samples, r.failures, r.rate) == ("breach", 10, 10, 1.0)


def test_threshold_boundary_exactly_threshold_is_not_a_breach(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    write(p, runs_oldest_first(9, 1))
    assert evaluate(p).verdict == "healthy"          # 1/10 == 0.1
    write(p, runs_oldest_first(27, 3))
    assert evaluate(p).verdict == "healthy"          # 3/30 == 0.1
    write(p, runs_oldest_first(17, 2))
    assert evaluate(p).verdict == "breach"           # 2/19 > 0.1
    write(p, runs_oldest_first(989, 111))
    assert evaluate(p).verdict == "breach"           # 111/1100 just above 0.1
    write(p, runs_oldest_first(7, 3))
    assert evaluate(p, threshold=0.3).verdict == "healthy"   # 3/10 == 0.3 despite float noise


@settings(max_examples=300, deadline=None)
@given(samples=st.integers(0, 2000), data=st.data(),
       threshold=st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.3, 0.7, 1.0]),
       min_samples=st.integers(1, 50))
def test_judge_is_exact(samples: int, data: st.DataObject, threshold: float, min_samples: int) -> None:
    from fractions import Fraction

    failures = data.draw(st.integers(0, samples))
    verdict = health.judge(samples, failures, threshold, min_samples)
    if samples < min_samples or samples == 0:
        assert verdict == "inconclusive"
    elif Fraction(failures, samples) > Fraction(str(threshold)):
        assert verdict == "breach"
    else:
        assert verdict == "healthy"


# -- only the current version since it started ------------------------------------------------
def test_only_runs_of_the_current_version_count(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    recs = [run(40 - i * 0.1, ok=False, error="old bug", version="1.3.0") for i in range(30)]
    recs += [run(20 - i * 0.1, ok=True, version="1.4.0") for i in range(10)]
    recs += [run(5, ok=True)]  # no version field: counted
    write(p, recs)
    r = evaluate(p, version="1.4.0")
    assert (r.verdict, r.samples, r.failures, r.top_errors) == ("healthy", 11, 0, ())
    assert "30 run(s) of other versions not counted" in r.detail
    r = evaluate(p, version="1.3.0")
    assert (r.verdict, r.samples, r.failures) == ("breach", 31, 30)


def test_only_runs_since_the_version_started_count(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    recs = [run(50 - i * 0.1, ok=False, error="before") for i in range(30)]  # no version field
    recs += [run(10 - i * 0.1, ok=True) for i in range(12)]
    write(p, recs)
    assert evaluate(p).verdict == "breach"
    r = evaluate(p, since=(NOW - timedelta(minutes=15)).replace(tzinfo=None))  # naive: UTC
    assert (r.verdict, r.samples, r.failures) == ("healthy", 12, 0)
    assert r.window_start == NOW - timedelta(minutes=15)


def test_a_run_exactly_at_since_counts(tmp_path: Path) -> None:
    p = write(tmp_path / "runs.jsonl", [run(61, ok=False), run(60, ok=False), run(1)])
    r = evaluate(p, min_samples=1)
    assert (r.samples, r.failures) == (2, 1)


def test_version_started_at_from_snapshots_and_rollbacks() -> None:
    entry = {
        "snapshots": [
            {"version": "1.2.0", "created_at": "2026-11-01T00:00:00Z"},
            {"version": "1.3.0", "created_at": "2026-11-10T00:00:00Z"},
            {"version": "1.2.0", "created_at": "not a time"},
        ],
        "rollback_history": [
            {"from_version": "1.3.0", "to_version": "1.2.0", "rolled_back_at": "2026-11-20T08:00:00Z"},
            {"from_version": "1.2.0", "to_version": "1.3.0", "rolled_back_at": "2026-11-05T00:00:00Z"},
        ],
    }
    assert health.version_started_at(entry, "1.2.0") == datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert health.version_started_at(entry, "1.3.0") == datetime(2026, 11, 10, tzinfo=UTC)
    assert health.version_started_at(entry, "9.9.9") is None
    assert health.version_started_at({}, "1.2.0") is None


def test_window_start_is_the_later_of_window_and_version_start() -> None:
    assert health.window_start(NOW, 60, None) == SINCE
    assert health.window_start(NOW, 60, NOW - timedelta(hours=3)) == SINCE
    assert health.window_start(NOW, 60, NOW - timedelta(minutes=5)) == NOW - timedelta(minutes=5)


def make_task(entry: dict, clawback: dict | None = None, location: str | None = "tasks/T01") -> Task:
    return Task(id="T01", version=entry.get("version"), status="active", location=location,
                config_file="config.yaml", entry_point="main.py", entry=entry,
                settings=task_settings.parse("T01", clawback))


def test_check_task_uses_settings_and_the_version_start(tmp_path: Path) -> None:
    started = NOW - timedelta(minutes=20)
    entry = {"id": "T01", "version": "1.4.0",
             "snapshots": [{"version": "1.4.0", "created_at": ts(started)}]}
    task = make_task(entry, {"health": {"source": "logs/out.jsonl", "window_minutes": 60,
                                        "min_samples": 5, "threshold": 0.2}})
    recs = [run(40 - i * 0.1, ok=False, error="prev") for i in range(20)]  # before 1.4.0 started
    recs += [run(15 - i, ok=i != 0, error="new") for i in range(5)]
    write(tmp_path / "tasks/T01/logs/out.jsonl", recs)
    r = health.check_task(tmp_path, task, now=NOW)
    assert (r.verdict, r.samples, r.failures) == ("healthy", 5, 1)   # 1/5 == 0.2
    assert (r.threshold, r.min_samples, r.window_start) == (0.2, 5, started)
    assert r.version == "1.4.0" and r.task_id == "T01" and r.source == "logs/out.jsonl"
    assert r.as_dict()["window_start"] == ts(started)
    with pytest.raises(BadInput):
        health.check_task(tmp_path, make_task(entry, location=None), now=NOW)


# -- reading only the window ------------------------------------------------------------------
def test_large_file_reads_only_the_window(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    old = (json.dumps(run(600, ok=False, error="old failure " + "x" * 40)) + "\n").encode()
    window = [run(30 - i * 0.01, ok=i % 4 != 0, error="recent") for i in range(300)]
    window_bytes = b"".join((json.dumps(r) + "\n").encode() for r in window)
    with p.open("wb") as fh:
        block = old * 10_000
        while fh.tell() < 50 * 1024 * 1024:
            fh.write(block)
        fh.write(window_bytes)
    assert p.stat().st_size > 50 * 1024 * 1024
    bs = 64 * 1024
    r = evaluate(p, block_size=bs)
    assert (r.samples, r.failures, r.verdict) == (300, 75, "breach")
    # the window plus at most one partial block before it and the one extra block
    assert r.bytes_read <= len(window_bytes) + 2 * bs
    w = health_source.read_window(p, SINCE, block_size=bs)
    assert w.bytes_read == r.bytes_read and w.lines_read < 300 + 2 * bs // len(old) + 2
    # a smaller block reads less: cost follows the lines read, not the file
    assert evaluate(p, block_size=4096).bytes_read <= len(window_bytes) + 2 * 4096


def test_out_of_order_lines_near_the_boundary_are_tolerated(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    recs: list[dict] = [run(120 + i) for i in range(200)][::-1]
    recs += [run(59), run(61), run(58, ok=False, error="late writer")]  # 61 min: outside window
    recs += [run(50 - i * 0.1) for i in range(20)]
    write(p, recs)
    # with small blocks the run written after an older one is still found (one extra block)
    r = evaluate(p, block_size=256, min_samples=1)
    assert (r.samples, r.failures) == (22, 1)


@settings(max_examples=60, deadline=None)
@given(minutes=st.lists(st.floats(0, 120, allow_nan=False), max_size=60),
       oks=st.lists(st.booleans(), min_size=60, max_size=60),
       garbage=st.lists(st.integers(0, 59), max_size=5),
       block_size=st.integers(1, 700))
def test_block_size_does_not_change_the_result(tmp_path_factory: pytest.TempPathFactory,
                                              minutes: list[float], oks: list[bool],
                                              garbage: list[int], block_size: int) -> None:
    minutes = sorted(minutes, reverse=True)  # oldest first
    lines: list[dict | str] = [run(m, ok=oks[i], error=f"e{i % 3}") for i, m in enumerate(minutes)]
    for g in sorted(set(garbage), reverse=True):
        if g <= len(lines) and (g == len(lines) or health_source.parse_ts(lines[g]["ts"]) >= SINCE):
            lines.insert(g, "{not json")
    p = write(tmp_path_factory.mktemp("h") / "runs.jsonl", lines)
    expected = [m for m in minutes if NOW - timedelta(minutes=m) >= SINCE]
    whole = evaluate(p, block_size=10**9, min_samples=1)
    small = evaluate(p, block_size=block_size, min_samples=1)
    assert whole.samples == small.samples == len(expected)
    assert (whole.failures, whole.unreadable, whole.top_errors) == \
        (small.failures, small.unreadable, small.top_errors)


# -- malformed, missing, unreadable -----------------------------------------------------------
def test_malformed_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    write(p, [
        "garbage before the window is not counted", run(200, ok=False),
        run(50), "{broken json", "[1, 2]", '{"ts": "2026-11-29T11:30:00Z"}',
        '{"ts": "yesterday", "ok": true}', '{"ts": "2026-11-29T11:30:00Z", "ok": "yes"}',
        b"\xff\xfe not utf-8", '{"ts": "0001-01-01T00:00:00+01:00", "ok": true}',
        "", "   ", run(40, ok=False, error="real"), run(30),
    ])
    with p.open("ab") as fh:
        fh.write(b'{"ts": "2026-11-29T11:59:59Z", "o')  # being written right now
    r = evaluate(p, min_samples=1)
    assert (r.samples, r.failures, r.unreadable) == (3, 1, 7)
    assert "7 unreadable line(s)" in r.detail


def test_blank_lines_and_crlf_endings_are_fine(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    p.write_bytes(b"".join((json.dumps(run(50 - i)) + ("\r\n" if i % 2 else "\n")
                            + ("\n  \n" if i % 5 == 0 else "")).encode() for i in range(30)))
    r = evaluate(p)
    assert (r.samples, r.failures, r.unreadable, r.verdict) == (30, 0, 0, "healthy")


def test_a_line_just_over_max_line_in_the_first_block_is_only_unreadable(tmp_path: Path) -> None:
    # reaching the file's start, the reader holds the line whole (at most MAX_LINE + a block)
    p = tmp_path / "runs.jsonl"
    write(p, [run(50), "x" * (health_source.MAX_LINE + 10), run(40, ok=False), run(30)])
    r = evaluate(p, min_samples=1, block_size=4096)
    assert (r.verdict, r.samples, r.failures, r.unreadable) == ("breach", 3, 1, 1)


def test_missing_file_is_inconclusive_not_an_error(tmp_path: Path) -> None:
    r = evaluate(tmp_path / "logs" / "runs.jsonl")
    assert (r.verdict, r.samples, r.rate, r.unreadable) == ("inconclusive", 0, None, 0)
    assert not r.unhealthy


def test_empty_file_is_inconclusive(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    p.write_bytes(b"")
    assert evaluate(p).verdict == "inconclusive"


def test_unreadable_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path / "runs.jsonl", runs_oldest_first(0, 20))
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):  # root reads anything: the kernel's refusal, as it would come
            real_open = os.open

            def refuse(path: Any, *args: Any, **kwargs: Any) -> int:
                if Path(path) == p:
                    raise PermissionError(13, "Permission denied", str(path))
                return real_open(path, *args, **kwargs)

            monkeypatch.setattr(os, "open", refuse)
        result = evaluate(p).as_dict()
    finally:
        monkeypatch.undo()
        p.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert (result["verdict"], result["samples"], result["failures"]) == ("error", 0, 0)
    assert "cannot be read" in result["detail"] and "Permission denied" in result["detail"]


def test_a_path_through_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("a file where the directory should be\n")
    r = evaluate(tmp_path / "logs" / "runs.jsonl")
    assert r.verdict == "error" and r.unhealthy


def test_a_directory_or_fifo_is_an_error(tmp_path: Path) -> None:
    d = tmp_path / "runs.jsonl"
    d.mkdir()
    r = evaluate(d)
    assert r.verdict == "error" and "directory" in r.detail
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    r = evaluate(fifo)  # opened without blocking: never hangs on a FIFO without a writer
    assert r.verdict == "error" and "not a regular file" in r.detail


# -- top errors and secrets -------------------------------------------------------------------
def test_top_errors_most_frequent_first_ties_to_the_most_recent(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    recs = []
    recs += [run(50 - i * 0.1, ok=False, error="timeout") for i in range(5)]
    recs += [run(40 - i * 0.1, ok=False, error="rare older") for i in range(1)]
    recs += [run(35 - i * 0.1, ok=False, error="KeyError: 'close'") for i in range(3)]
    recs += [run(30 - i * 0.1, ok=False, error="rare newer") for i in range(1)]
    recs += [run(25 - i * 0.1, ok=False) for i in range(2)]
    recs += [run(20, ok=False, error="  multi\n  line   error ")]
    recs += [run(10 - i * 0.1, ok=False, error="E" * 500) for i in range(1)]
    write(p, recs)
    r = evaluate(p)
    assert [(e.message, e.count) for e in r.top_errors] == [
        ("timeout", 5), ("KeyError: 'close'", 3), (health.NO_MESSAGE, 2)]
    long = health.top_errors([("E" * 500, 1)])[0].message
    assert len(long) <= masking.ERROR_CHARS and long.endswith("…")
    assert health.top_errors([(" multi\n  line ", 1)])[0].message == "multi line"
    singles = health.top_errors([(m, 1) for m in ("newest", "mid", "oldest", "x")])
    assert [e.message for e in singles] == ["newest", "mid", "oldest"]
    merged = health.top_errors([("a", 1), ("token=9f8e7d6c5b4a39281706f5e4d3c2b1a0", 2),
                                ("token=0a1b2c3d4e5f60718293a4b5c6d7e8f9", 2)])
    assert [(e.message, e.count) for e in merged] == [("token=****", 4), ("a", 1)]


def test_secrets_in_error_messages_are_masked(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    url_err = "cannot connect to postgresql://trader:S3cr3tPassw0rd@db.internal:5432/q"
    tok_err = "auth failed: api_key=9f8e7d6c5b4a39281706f5e4d3c2b1a0 rejected"
    padded = "x" * 185 + " https://bot:Hunter2Hunter2@example.com/feed"  # cut falls in the URL
    write(p, [run(30, ok=False, error=url_err), run(29, ok=False, error=tok_err),
              run(28, ok=False, error=padded)])
    r = evaluate(p, min_samples=1)
    text = json.dumps(r.as_dict())
    for secret in ("S3cr3tPassw0rd", "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "Hunter2", "S3cr", "Hunt"):
        assert secret not in text
    messages = {e.message for e in r.top_errors}
    assert "cannot connect to postgresql://****@db.internal:5432/q" in messages
    assert "auth failed: api_key=**** rejected" in messages
    assert masking.mask_message("window=60 retries: 3") == "window=60 retries: 3"


# -- the log-file source (error/total patterns) -----------------------------------------------
def log_ts(minutes_ago: float, zone: str = "") -> str:
    """How logging stamps a line: local time, no zone (``zone="Z"``: UTC, marked so)."""
    at = NOW - timedelta(minutes=minutes_ago)
    return (at if zone else at.astimezone()).strftime("%Y-%m-%d %H:%M:%S,123") + zone


def test_log_file_with_an_error_pattern(tmp_path: Path) -> None:
    p = write(tmp_path / "tasks/T01/logs/app.log", [
        f"{log_ts(90)} ERROR before the window",
        *[f"{log_ts(50 - i)} INFO tick {i}" for i in range(8)],
        f"{log_ts(30)} ERROR fetch failed: https://bot:Hunter2Hunter2@api.example.com/x",
        "Traceback (most recent call last):",            # continuation lines are not runs
        '  File "main.py", line 3, in <module>',
        f"[{log_ts(20)}] ERROR fetch failed: https://bot:Hunter2Hunter2@api.example.com/x",
    ])
    task = make_task({"id": "T01", "version": "1.0.0"},
                     {"health": {"source": "logs/app.log", "error_pattern": r"\bERROR\b",
                                 "min_samples": 5}})
    r = health.check_task(tmp_path, task, now=NOW)
    assert (r.samples, r.failures, r.unreadable, r.verdict) == (10, 2, 0, "breach")
    assert [(e.message, e.count) for e in r.top_errors] == [
        ("ERROR fetch failed: https://****@api.example.com/x", 2)]
    assert "Hunter2" not in json.dumps(r.as_dict()) and p.exists()


def test_log_file_with_total_and_error_patterns(tmp_path: Path) -> None:
    p = write(tmp_path / "app.log", [
        f"{log_ts(40)} run finished ok",
        f"{log_ts(39)} heartbeat",                       # not a run
        f"{log_ts(38)} run finished FAILED: timeout",
        "run finished ok (no timestamp)",                # a run line without time: unreadable
        f"{log_ts(37, 'Z')} run finished ok",
    ])
    hs = task_settings.parse("T01", {"health": {"source": "app.log", "total_pattern": "run finished",
                                                "error_pattern": "FAILED"}}).health
    r = health.evaluate(p, task_id="T01", version="1.0.0", health=hs, since=SINCE, now=NOW)
    assert (r.samples, r.failures, r.unreadable) == (3, 1, 1)
    assert r.top_errors[0].message == "run finished FAILED: timeout"


@pytest.mark.parametrize("bad", [
    {"error_pattern": "("}, {"error_pattern": ""}, {"error_pattern": 3},
    {"total_pattern": "run"},                           # total without error
])
def test_log_pattern_settings_are_validated(bad: dict) -> None:
    with pytest.raises(BadInput):
        task_settings.parse("T01", {"health": bad})


def test_default_health_settings_render_as_before() -> None:
    assert task_settings.parse("T01", None).as_dict()["health"] == {
        "source": "logs/runs.jsonl", "window_minutes": 60, "min_samples": 10, "threshold": 0.1}


# -- the input is judged honestly -------------------------------------------------------------
def guarded(fn: Callable[[], Any], seconds: float = 20) -> Any:
    """``fn()`` in a forked child, killed after ``seconds``: a check that hangs fails the test
    instead of hanging the suite."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=lambda: send.send(fn()), daemon=True)
    proc.start()
    try:
        if not recv.poll(seconds):
            pytest.fail(f"no verdict within {seconds} s: the check blocks")
        return recv.recv()
    finally:
        proc.kill()
        proc.join()


def test_runs_from_the_future_are_not_counted(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    future = [run(-4.9, ok=False, error="a little ahead"),             # within CLOCK_SKEW: counted
              run(-5.1, ok=False, error="a clock ahead"),
              run(-8 * 60, ok=False, error="local time written as UTC"),
              '{"ts": "9999-12-31T23:59:59Z", "ok": false, "error": "far"}',
              '{"ts": "2026-11-29T20:06:00+08:00", "ok": false}']        # 12:06 UTC
    write(p, [*runs_oldest_first(12, 0), *future])
    r = evaluate(p)
    assert (r.verdict, r.samples, r.failures) == ("healthy", 13, 1)
    assert "4 run(s) stamped more than 5 min after now not counted" in r.detail
    assert [e.message for e in r.top_errors] == ["a little ahead"]
    # the same in blocks counted at once, with the future in the middle of a block
    w = health_source.read_window(p, SINCE, until=NOW + health.CLOCK_SKEW)
    assert (w.samples, w.future) == (13, 4)
    # today's meaning without an upper bound, for callers that ask for it
    assert health_source.read_window(p, SINCE).future == 0


def test_a_whole_block_from_the_future_is_counted_apart(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    write(p, runs_oldest_first(20, 0) + [run(-60 - i * 0.01, ok=False) for i in range(3000)])
    for bs in (64 * 1024, 4096, 333):
        r = evaluate(p, block_size=bs)
        assert (r.verdict, r.samples, r.failures) == ("healthy", 20, 0)
        assert "3000 run(s) stamped more than 5 min after now" in r.detail


def test_a_version_start_after_now_is_said(tmp_path: Path) -> None:
    p = write(tmp_path / "runs.jsonl", runs_oldest_first(20, 0))
    r = evaluate(p, since=NOW + timedelta(hours=1))
    assert r.verdict == "inconclusive" and "is after now (clocks disagree?)" in r.detail


def local_stamp(dt: datetime, sep: str = "T") -> str:
    """How ``datetime.now().isoformat()`` writes ``dt`` on this machine: local, no zone."""
    return dt.astimezone().replace(tzinfo=None).isoformat(sep)


def restored_task(tmp_path: Path, recs: list[dict | str], *, started_min_ago: float = 10) -> Task:
    """T01 rolled back to 1.3.0 ``started_min_ago`` minutes before NOW (the registry in UTC
    with Z, as the tool writes it), its runs file holding ``recs``."""
    entry = {"id": "T01", "version": "1.3.0",
             "snapshots": [{"version": "1.3.0", "created_at": "2026-11-01T00:00:00Z"}],
             "rollback_history": [{"from_version": "1.4.0", "to_version": "1.3.0",
                                   "rolled_back_at": ts(NOW - timedelta(minutes=started_min_ago))}]}
    write(tmp_path / "tasks/T01/logs/runs.jsonl", recs)
    return make_task(entry)


def naive_run(minutes_ago: float, ok: bool, error: str | None = None) -> dict:
    rec: dict = {"ts": local_stamp(NOW - timedelta(minutes=minutes_ago)), "ok": ok}
    if error:
        rec["error"] = error
    return rec


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "UTC"])
def test_naive_stamps_are_local_time_so_the_replaced_version_is_not_blamed(
        tmp_path: Path, zone: str) -> None:
    with local_zone(zone):
        # 1.4.0 failed (and did not write a version) until the rollback 10 minutes ago
        recs: list[dict | str] = [naive_run(50 - i, ok=False, error="1.4.0 bug") for i in range(39)]
        recs += [naive_run(9 - i * 0.5, ok=True) for i in range(4)]     # 1.3.0 since then
        r = health.check_task(tmp_path, restored_task(tmp_path, recs), now=NOW)
        assert (r.verdict, r.samples, r.failures) == ("inconclusive", 4, 0), r.detail
        assert r.window_start == NOW - timedelta(minutes=10)
        recs += [naive_run(4 - i * 0.1, ok=True) for i in range(8)]
        r = health.check_task(tmp_path, restored_task(tmp_path, recs), now=NOW)
        assert (r.verdict, r.samples, r.failures) == ("healthy", 12, 0), r.detail
        assert "after now" not in r.detail


def test_stamps_with_a_zone_mean_what_they_say_whatever_the_local_zone(tmp_path: Path) -> None:
    before, after = NOW - timedelta(minutes=30), NOW - timedelta(minutes=5)
    with local_zone("Asia/Shanghai"):
        recs: list[dict | str] = []
        for when, ok in ((before, False), (after, True)):
            for fmt in (lambda d: ts(d),                                      # Z
                        lambda d: d.astimezone(timezone(timedelta(hours=8))).isoformat(),
                        lambda d: d.astimezone(timezone(timedelta(hours=14))).isoformat(),
                        lambda d: d.astimezone(timezone(timedelta(hours=-12))).isoformat(),
                        lambda d: d.astimezone(timezone(timedelta(hours=5.75))).isoformat(),
                        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")):
                recs.append({"ts": fmt(when), "ok": ok, "error": None if ok else "old"})
        r = health.check_task(tmp_path, restored_task(tmp_path, recs), now=NOW)
        assert (r.samples, r.failures, r.unreadable) == (6, 0, 0), r.detail


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
def test_log_file_stamps_without_a_zone_are_local_time(tmp_path: Path, zone: str) -> None:
    with local_zone(zone):
        def line(minutes_ago: float, text: str) -> str:   # logging's default asctime: local
            return f"{local_stamp(NOW - timedelta(minutes=minutes_ago), ' ')[:19]},123 {text}"

        recs: list[dict | str] = [line(40 - i, "ERROR 1.4.0 bug") for i in range(20)]
        recs += [line(8 - i * 0.5, "INFO tick") for i in range(10)]
        recs += [f"{ts(NOW - timedelta(minutes=1))} ERROR aware", line(-30, "ERROR future")]
        entry = {"id": "T01", "version": "1.3.0",
                 "rollback_history": [{"to_version": "1.3.0",
                                       "rolled_back_at": ts(NOW - timedelta(minutes=10))}]}
        write(tmp_path / "tasks/T01/logs/app.log", recs)
        task = make_task(entry, {"health": {"source": "logs/app.log", "error_pattern": "ERROR"}})
        r = health.check_task(tmp_path, task, now=NOW)
        assert (r.verdict, r.samples, r.failures) == ("healthy", 11, 1), r.detail
        assert "1 run(s) stamped more than 5 min after now" in r.detail


def test_the_tools_own_stamps_stay_utc_whatever_the_local_zone() -> None:
    with local_zone("Asia/Shanghai"):
        utc_930 = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
        assert health_source.parse_ts("2026-11-29T09:30:00") == utc_930
        assert health_source.parse_ts("2026-11-29T09:30:00Z") == utc_930
        assert health_source.parse_run_ts("2026-11-29T09:30:00") == utc_930 - timedelta(hours=8)
        assert health_source.parse_run_ts("2026-11-29T09:30:00Z") == utc_930
        assert health.version_started_at(
            {"snapshots": [{"version": "1", "created_at": "2026-11-29T09:30:00Z"}]}, "1") == \
            datetime(2026, 11, 29, 9, 30, tzinfo=UTC)


def test_a_sparse_8_gib_line_without_a_newline_is_an_error_read_in_bounded_bytes(
        tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    p.touch()
    os.truncate(p, 8 * 1024 ** 3)
    if p.stat().st_blocks * 512 > 64 * 1024 ** 2:
        pytest.skip("this file system does not keep sparse files sparse")
    with p.open("ab") as fh:
        fh.write(b'{"ts": "2026-11-29T11:59:00Z", "ok": false')   # a few bytes, no newline
    r = guarded(lambda: evaluate(p))
    assert r.verdict == "error" and r.unhealthy and r.samples == 0
    bound = health_source.MAX_LINE + 2 * health_source.BLOCK_SIZE
    assert health_source.MAX_LINE < r.bytes_read <= bound
    assert f"the line ending at byte {p.stat().st_size:,} is longer than 1 MiB" in r.detail
    assert "fix the writer" in r.detail


def test_a_huge_line_inside_the_window_is_an_error_and_bounded(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    huge = '{"ts": "2026-11-29T11:30:00Z", "ok": false, "error": "' + "x" * (3 * 1024 ** 2) + '"}'
    after = [run(20 - i * 0.1, ok=i % 4 != 0, error="after") for i in range(40)]
    write(p, [*runs_oldest_first(30, 0), huge, *after])
    for bs in (64 * 1024, 4096):
        r = evaluate(p, block_size=bs)
        assert (r.verdict, r.samples) == ("error", 0), r.detail
        end = p.stat().st_size - sum(len(json.dumps(a)) + 1 for a in after) - 1
        assert f"the line ending at byte {end:,} is longer than 1 MiB" in r.detail
        assert "10/40 failed after it" in r.detail
        assert health_source.MAX_LINE < r.bytes_read <= \
            p.stat().st_size - end + health_source.MAX_LINE + 2 * bs


def test_a_huge_line_before_the_window_does_not_matter(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    huge = "y" * (3 * 1024 ** 2)
    old = [run(90 + i * 0.01, ok=False) for i in range(200)][::-1]   # 90 minutes ago
    write(p, [huge, *old, *runs_oldest_first(17, 3)])
    r = evaluate(p, block_size=1024)
    assert (r.verdict, r.samples, r.failures, r.unreadable) == ("breach", 20, 3, 0)
    assert r.bytes_read < 64 * 1024


def test_a_file_that_shrinks_while_read_is_read_again(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path / "runs.jsonl", runs_oldest_first(30, 0) * 20)
    calls = []
    real = os.pread

    def rotate_once(fd: int, n: int, offset: int) -> bytes:  # copytruncate, then a new run
        if not calls:
            os.truncate(p, 0)
            with p.open("a") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in runs_oldest_first(2, 1))
        calls.append(offset)
        return real(fd, n, offset)

    monkeypatch.setattr(os, "pread", rotate_once)
    r = evaluate(p, block_size=256, min_samples=1)
    assert (r.samples, r.failures) == (3, 1), r.detail        # the file as it is now

    def always_shrinking(fd: int, n: int, offset: int) -> bytes:
        with p.open("r+b") as fh:
            fh.truncate(max(0, p.stat().st_size - 100))
        return real(fd, n, offset)

    write(p, runs_oldest_first(300, 0))
    monkeypatch.setattr(os, "pread", always_shrinking)
    r = evaluate(p, block_size=256)
    assert r.verdict == "error" and "shrank while it was read" in r.detail


def test_a_file_that_grows_while_read_counts_what_was_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path / "runs.jsonl", runs_oldest_first(30, 0))
    real = os.pread

    def append(fd: int, n: int, offset: int) -> bytes:
        with p.open("a") as fh:
            fh.write(json.dumps(run(0.5, ok=False, error="appended")) + "\n")
        return real(fd, n, offset)

    monkeypatch.setattr(os, "pread", append)
    r = evaluate(p, block_size=200)
    assert (r.verdict, r.samples, r.failures) == ("healthy", 30, 0)


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _fifo_with_a_writer(p: Path) -> None:
    os.mkfifo(p)
    fd = os.open(p, os.O_RDWR)  # held open (and never written) until the test ends
    _KEEP.append(lambda: os.close(fd))


def _socket(p: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(p))
    sock.listen()
    _KEEP.append(sock.close)


_KEEP: list[Callable[[], None]] = []  # what a special file needs closed after the test
SPECIAL = {
    "fifo without a writer": (_fifo, "error", "it is a FIFO, not a regular file"),
    "fifo with a silent writer": (_fifo_with_a_writer, "error", "it is a FIFO"),
    "symlink to /dev/zero": (lambda p: p.symlink_to("/dev/zero"), "error", "a character device"),
    "/dev/zero": (None, "error", "it is a character device, not a regular file"),
    "directory": (lambda p: p.mkdir(), "error", "it is a directory"),
    "socket": (_socket, "error", "it is a socket, not a regular file"),
    "symlink loop": (lambda p: p.symlink_to(p), "error", "Too many levels of symbolic links"),
    "dangling symlink": (lambda p: p.symlink_to(p.with_name("gone.jsonl")), "inconclusive",
                         "runs.jsonl is a symbolic link to a missing file"),
}


@pytest.mark.parametrize("kind", SPECIAL)
def test_special_files_never_hang(tmp_path: Path, kind: str) -> None:
    make, verdict, said = SPECIAL[kind]
    p = tmp_path / "runs.jsonl"
    if make is None:
        p = Path("/dev/zero")
    else:
        make(p)
    try:
        r = guarded(lambda: evaluate(p), seconds=10)
    finally:
        while _KEEP:
            _KEEP.pop()()
    assert r.verdict == verdict and said in r.detail, r.detail
    assert r.samples == 0


ODD_INPUT = {  # a line as written -> (counted runs, failures, unreadable) in the window
    "only CR": (b"\r", 0, 0, 0),
    "CR CR CR": (b"\r\r\r", 0, 0, 0),
    "NUL bytes": (b"\x00" * 50, 0, 0, 1),
    "NUL inside a run": (b'{"ts": "2026-11-29T11:30:00Z", "ok": false, "error": "a\x00b"}',
                         0, 0, 1),
    "escaped NUL in a run": (b'{"ts": "2026-11-29T11:30:00Z", "ok": false, "error": "a\\u0000b"}',
                             1, 1, 0),
    "invalid UTF-8": (b'{"ts": "2026-11-29T11:30:00Z", "ok": false, "error": "\xff\xfe"}', 0, 0, 1),
    "lone surrogate escape": (b'{"ts": "2026-11-29T11:30:00Z", "ok": false, "error": "\\udcff"}',
                              1, 1, 0),
    "year 9999": (b'{"ts": "9999-12-31T23:59:59Z", "ok": false}', 0, 0, 0),   # the future
    "year 9999 naive": (b'{"ts": "9999-12-31T23:59:59", "ok": false}', 0, 0, 0),
    "year 1": (b'{"ts": "0001-01-01T00:00:00Z", "ok": false}', 0, 0, 0),      # before since
    "year 1 naive": (b'{"ts": "0001-01-01T00:00:00", "ok": false}', 0, 0, 1),  # out of range
    "year 1 at +01:00": (b'{"ts": "0001-01-01T00:00:00+01:00", "ok": false}', 0, 0, 1),
    "+14:00": (b'{"ts": "2026-11-30T01:30:00+14:00", "ok": false}', 1, 1, 0),
    "-12:00": (b'{"ts": "2026-11-28T23:30:00-12:00", "ok": false}', 1, 1, 0),
    "+05:45": (b'{"ts": "2026-11-29T17:15:00+05:45", "ok": false}', 1, 1, 0),
    "+23:59": (b'{"ts": "2026-11-30T11:29:00+23:59", "ok": false}', 1, 1, 0),
    "+24:00": (b'{"ts": "2026-11-30T11:30:00+24:00", "ok": false}', 0, 0, 1),
    "ts as a number": (b'{"ts": 1796023800, "ok": false}', 0, 0, 1),
    "ts as a float": (b'{"ts": 1796023800.5, "ok": false}', 0, 0, 1),
    "ts as 1e400": (b'{"ts": 1e400, "ok": false}', 0, 0, 1),
    "ts true": (b'{"ts": true, "ok": false}', 0, 0, 1),
    "huge integer": (b'{"ts": "2026-11-29T11:30:00Z", "ok": false, "n": ' + b"9" * 5000 + b"}",
                     0, 0, 1),
    "ok as 0": (b'{"ts": "2026-11-29T11:30:00Z", "ok": 0}', 0, 0, 1),
    "UTF-8 BOM": (b'\xef\xbb\xbf{"ts": "2026-11-29T11:30:00Z", "ok": false}', 0, 0, 1),
    "fractions of 12 digits": (b'{"ts": "2026-11-29T11:30:00.123456789012Z", "ok": false}',
                               1, 1, 0),                               # cut to microseconds
    "lower-case z": (b'{"ts": "2026-11-29t11:30:00z", "ok": false}', 0, 0, 1),
    "leap second": (b'{"ts": "2026-11-29T11:30:60Z", "ok": false}', 0, 0, 1),
}


@pytest.mark.parametrize("case", ODD_INPUT)
def test_odd_input_is_counted_or_unreadable_never_a_crash(tmp_path: Path, case: str) -> None:
    with local_zone("UTC"):  # what a naive year 9999 is depends on the zone
        odd_input(tmp_path, *ODD_INPUT[case], case)


def odd_input(tmp_path: Path, raw: bytes, samples: int, failures: int, unreadable: int,
              case: str) -> None:
    p = tmp_path / "runs.jsonl"
    base = runs_oldest_first(20, 0)
    for at in (0, 10, 20):
        for end in (b"\n", b""):
            body = b"".join((json.dumps(r) + "\n").encode() for r in base[:at]) + raw + b"\n" + \
                b"".join((json.dumps(r) + "\n").encode() for r in base[at:])
            if at == 20:
                body = body[:-1] + end  # the odd line last, maybe unterminated
            p.write_bytes(body)
            for bs in (64 * 1024, 7):
                r = evaluate(p, block_size=bs, min_samples=1)
                want = unreadable if not (at == 20 and end == b"") else 0  # being written
                assert (r.samples, r.failures, r.unreadable) == \
                    (20 + samples, failures, want), (case, at, end, bs, r.detail)


def test_huge_numbers_of_tiny_lines_between_runs_are_counted(tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    with p.open("wb") as fh:
        fh.write((json.dumps(run(70)) + "\n").encode())              # before the window
        for rec in runs_oldest_first(17, 3):
            fh.write(b"\n" * 30_000 + b"\r\n" * 10_000 + b"{}\n" * 5_000 + b"\r\n")
            fh.write((json.dumps(rec) + "\n").encode())
    r = guarded(lambda: evaluate(p), seconds=60)
    assert (r.verdict, r.samples, r.failures, r.unreadable) == ("breach", 20, 3, 100_000)


def test_a_million_lines_in_a_row_without_a_run_is_an_error_not_a_full_read(
        tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    with p.open("wb") as fh:
        fh.write((json.dumps(run(70)) + "\n").encode())              # the boundary, far away
        fh.write(b"x\n" * 3_000_000)
        fh.write(b"".join((json.dumps(r) + "\n").encode() for r in runs_oldest_first(17, 3)))
    r = guarded(lambda: evaluate(p), seconds=60)
    assert (r.verdict, r.samples) == ("error", 0), r.detail
    assert "1,000,000 lines or 64 MiB in a row after byte" in r.detail
    assert "3/20 failed after it, not judged alone" in r.detail
    assert 2 * 1_000_000 <= r.bytes_read <= 2 * 1_000_000 + 3 * health_source.BLOCK_SIZE
    with p.open("wb") as fh:                                          # blank lines alike
        fh.write(b"\n" * 3_000_000)
    r = evaluate(p)
    assert r.verdict == "error" and "hold no run" in r.detail
    assert 1_000_000 <= r.bytes_read < 1_000_000 + 2 * health_source.BLOCK_SIZE


def test_a_clock_reset_to_1970_in_the_window_does_not_hide_the_runs_before_it(
        tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    window = [run(55 - i * 0.005, ok=i % 10 != 0, error="e") for i in range(10_000)]
    glitch = [{"ts": f"1970-01-01T00:00:0{i}Z", "ok": False, "error": "booting"} for i in range(3)]
    old = [run(120 + i * 0.01, ok=False, error="old") for i in range(5_000)][::-1]
    write(p, [*old, *window[:4_000], *glitch, *window[4_000:]])
    for bs in (64 * 1024, 4096):
        r = evaluate(p, block_size=bs)
        assert (r.samples, r.failures, r.verdict) == (10_000, 1_000, "healthy"), r.detail
        assert r.bytes_read <= sum(len(json.dumps(x)) + 1 for x in window + glitch) + 2 * bs


def test_a_file_whose_lines_end_with_cr_alone_is_unreadable_not_being_written(
        tmp_path: Path) -> None:
    p = tmp_path / "runs.jsonl"
    p.write_bytes(b"\r".join(json.dumps(r).encode() for r in runs_oldest_first(20, 0)) + b"\r")
    r = evaluate(p)
    assert (r.verdict, r.samples, r.unreadable) == ("inconclusive", 0, 1)
    assert "1 unreadable line(s) skipped" in r.detail
    write(p, runs_oldest_first(10, 0))  # a plain run being written is still ignored
    with p.open("ab") as fh:
        fh.write(b'{"ts": "2026-11-29T11:59:59Z", "ok": tr')
    assert evaluate(p).unreadable == 0
