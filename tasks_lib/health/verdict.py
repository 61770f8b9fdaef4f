"""Error rate and verdict of one task from its health source (docs/design.md, "Health").

Plain Python, no Prefect. The default source is a JSON-lines file of run outcomes,
``<task dir>/logs/runs.jsonl``, one object per run::

    {"ts": "2026-11-29T09:30:00Z", "ok": false, "error": "…", "version": "1.3.0"}

Only runs of the **current version since it started** count: a run carrying a ``version`` other
than the current one is skipped, and only runs at or after ``since`` (the later of the window
start and the version's start, :func:`window_start`) and at most CLOCK_SKEW after ``now`` are
counted; the detail says how many runs from the future were left out. A timestamp without a
zone is the machine's local time (tasks_lib/health/source.py says why), so on a UTC+8 machine
the failures the replaced version logged just before a restore stay before the restore.

The source is read backwards, only as far as the window reaches (tasks_lib/health/source.py).

Verdicts: ``breach`` (failure rate strictly greater than the threshold with at least
``min_samples`` runs; exactly the threshold is not a breach), ``healthy``, ``inconclusive``
(fewer than ``min_samples`` runs, including a missing source: no action) and ``error`` (the
source exists but cannot be read or judged: permission denied, a directory, a FIFO or a device,
a line longer than MAX_LINE inside the window, a million lines in a row that are not runs, a
file that kept shrinking while read). Errors in measuring are never failures of the task.

The alternative source "a log file with error/total patterns" is ``health_source.LogPatterns``, chosen
by the health settings ``error_pattern`` (and optional ``total_pattern``); it reuses the same
backward reader. Prefect flow-run states (``"source": "prefect"`` with ``flow``) are read over the
Prefect REST API by tasks_lib/health/prefect_source.py and judged the same way (:func:`evaluate_prefect`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tasks_lib.core import time as clock
from tasks_lib.core.errors import BadInput
from tasks_lib.core.settings import PREFECT_SOURCE, HealthSettings
from tasks_lib.core.time import format as iso
from tasks_lib.core.time import utc
from tasks_lib.health import prefect_source as health_prefect
from tasks_lib.health.stable import version_started_at
from tasks_lib.secrets.masking import mask_message

if TYPE_CHECKING:
    from tasks_lib.core.workspace import Task
from tasks_lib.health.scan import MAX_GAP_BYTES, MAX_GAP_LINES
from tasks_lib.health.source import (
    BLOCK_SIZE,
    MAX_LINE,
    LinesParser,
    WindowRead,
    parser_for,
    read_window,
)

Verdict = Literal["healthy", "breach", "inconclusive", "error"]
TOP_ERRORS = 3
NO_MESSAGE = "(no error message)"
# How far after `now` a run may be stamped and still count: writers' clocks disagree by a little
# (NTP keeps them within seconds). A run stamped later is a clock or a zone gone wrong; counting
# it would judge the current version by runs it may never have made.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class ErrorCount:
    message: str  # secrets masked (masking.mask_message), at most ERROR_CHARS characters
    count: int


@dataclass(frozen=True)
class HealthResult:
    task_id: str
    version: str | None
    verdict: Verdict
    samples: int
    failures: int
    rate: float | None  # None without samples
    threshold: float
    min_samples: int
    top_errors: tuple[ErrorCount, ...]
    window_start: datetime
    unreadable: int
    detail: str
    source: str = ""
    bytes_read: int = 0

    @property
    def unhealthy(self) -> bool:
        return self.verdict in ("breach", "error")

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task_id, "version": self.version, "verdict": self.verdict,
            "samples": self.samples, "failures": self.failures, "rate": self.rate,
            "threshold": self.threshold, "min_samples": self.min_samples,
            "top_errors": [{"message": e.message, "count": e.count} for e in self.top_errors],
            "window_start": iso(self.window_start), "unreadable": self.unreadable,
            "detail": self.detail, "source": self.source,
        }


def window_start(now: datetime, window_minutes: int, version_start: datetime | None) -> datetime:
    """The later of ``now - window`` and the version's start."""
    start = utc(now) - timedelta(minutes=window_minutes)
    return max(start, version_start) if version_start is not None else start


# -- verdict --------------------------------------------------------------------------------
def top_errors(errors: Iterable[tuple[str | None, int]],
               limit: int = TOP_ERRORS) -> tuple[ErrorCount, ...]:
    """The most frequent messages (masked, cut), most frequent first; ties go to the message
    listed first (:attr:`WindowRead.errors` lists the most recent first). Messages that are
    equal once masked are counted together."""
    counts: dict[str, int] = {}
    for message, n in errors:
        key = mask_message(message or "") or NO_MESSAGE
        counts[key] = counts.get(key, 0) + n
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: ties keep their order
    return tuple(ErrorCount(msg, n) for msg, n in ranked[:limit])


def judge(samples: int, failures: int, threshold: float, min_samples: int) -> Verdict:
    """``breach`` only with at least ``min_samples`` runs and a rate strictly above the
    threshold, compared exactly as fractions against the threshold as written (0.1 is 1/10),
    so 1 failure in 10 at 0.1 is not a breach and 2 in 19 is."""
    if samples == 0 or samples < min_samples:
        return "inconclusive"
    over = Fraction(failures, samples) > Fraction(repr(float(threshold)))
    return "breach" if over else "healthy"


def evaluate(path: str | os.PathLike[str], *, task_id: str, version: str | None,
             health: HealthSettings, since: datetime, block_size: int = BLOCK_SIZE,
             parse: LinesParser | None = None, now: datetime | None = None) -> HealthResult:
    """Read the window of one health source and judge it: the runs from ``since`` to ``now``
    plus CLOCK_SKEW (``now`` defaults to the clock; :func:`check_task` passes its own). Never
    raises for the source itself: a missing file is ``inconclusive`` with 0 samples, one that
    cannot be read or judged is ``error``."""
    since = utc(since)
    now = utc(now) if now is not None else clock.now_utc()
    base = dict(task_id=task_id, version=version, threshold=health.threshold,
                min_samples=health.min_samples, window_start=since, source=health.source)
    try:
        window = read_window(path, since, version=version, block_size=block_size,
                             parse=parse or parser_for(health), until=now + CLOCK_SKEW)
    except FileNotFoundError:
        what = "is a symbolic link to a missing file" if os.path.islink(path) else \
            "does not exist"
        return _unmeasured(base, "inconclusive", f"no health source yet ({health.source} {what})")
    except OSError as exc:
        why = exc.strerror or str(exc)
        return _unmeasured(base, "error",
                           f"health source {health.source} cannot be read: {mask_message(why)}"
                           " (point health.source at the task's runs file, readable by this user)")
    if window.too_long_at is not None or window.gap_at is not None:
        return _cut_short(window, base, health)
    return _judge_window(window, base, health, now)


def evaluate_prefect(*, task_id: str, version: str | None, health: HealthSettings,
                     since: datetime, page_size: int = health_prefect.PAGE_SIZE) -> HealthResult:
    """Judge the Prefect flow runs of ``health.flow`` (source "prefect",
    tasks_lib/health/prefect_source.py) like a file's runs. Never raises for the source: no flow of
    that name yet is ``inconclusive``, an API that cannot be read (or no PREFECT_API_URL) is
    ``error`` with a detail saying what to do."""
    since = utc(since)
    base = dict(task_id=task_id, version=version, threshold=health.threshold,
                min_samples=health.min_samples, window_start=since,
                source=health_prefect.describe(health.flow, health.tags))
    try:
        window = health_prefect.read_window(health.flow or "", since, tags=health.tags,
                                            version=version, page_size=page_size)
    except health_prefect.NoSuchFlow as exc:
        return _unmeasured(base, "inconclusive", f"no health source yet ({exc})")
    except health_prefect.SourceError as exc:
        return _unmeasured(base, "error", str(exc))  # masked, says what to do
    return _judge_window(window, base, health)


def unusable(task_id: str, version: str | None, why: str, now: datetime) -> HealthResult:
    """The ``error`` verdict of a task whose registry entry cannot be used as it stands."""
    dh = HealthSettings()
    return HealthResult(task_id=task_id, version=version, verdict="error", samples=0, failures=0,
                        rate=None, threshold=dh.threshold, min_samples=dh.min_samples,
                        top_errors=(), window_start=utc(now), unreadable=0,
                        detail=f"the task's registry entry cannot be used: {mask_message(why)}")


def _unmeasured(base: dict[str, Any], verdict: Verdict, detail: str,
                bytes_read: int = 0) -> HealthResult:
    return HealthResult(**base, verdict=verdict, samples=0, failures=0, rate=None,
                        top_errors=(), unreadable=0, detail=detail, bytes_read=bytes_read)


def _cut_short(window: WindowRead, base: dict[str, Any], health: HealthSettings) -> HealthResult:
    """The error verdict of a window whose reading had to stop before its start: at a line
    longer than MAX_LINE (the runs before it could only be reached by reading all of it), or
    after MAX_GAP_LINES / MAX_GAP_BYTES without a run. The runs read after that point are not
    the window, so they are not judged alone."""
    after = f"{window.failures}/{window.samples} failed after it, not judged alone"
    if window.too_long_at is not None:
        why = (f"the line ending at byte {window.too_long_at:,} is longer than "
               f"{MAX_LINE // 1024 ** 2} MiB, so the runs before it cannot be read ({after}); "
               "the task must write one run per line, each ending with a newline: fix the "
               "writer, then move the file aside or cut it before that line")
    else:
        why = (f"{MAX_GAP_LINES:,} lines or {MAX_GAP_BYTES // 1024 ** 2} MiB in a row after "
               f"byte {window.gap_at:,} hold no run, so the window's start was not found "
               f"({after}); it is not a file of runs"
               + (" (or error_pattern/total_pattern match no line)" if health.error_pattern else
                  ": point health.source at the task's JSON-lines runs file"))
    return _unmeasured(base, "error", f"health source {health.source} cannot be judged: {why}",
                       window.bytes_read)


def _judge_window(window: WindowRead, base: dict[str, Any], health: HealthSettings,
                  now: datetime | None = None) -> HealthResult:
    since: datetime = base["window_start"]
    samples, failures = window.samples, window.failures
    rate = failures / samples if samples else None
    verdict = judge(samples, failures, health.threshold, health.min_samples)
    shown = f"{failures}/{samples} failed" + (f" ({rate:.1%})" if rate is not None else "")
    since_s = f"since {iso(since)}"
    if verdict == "inconclusive":
        detail = f"{shown} {since_s}: fewer than {health.min_samples} runs, no verdict"
    elif verdict == "breach":
        detail = f"{shown} {since_s}: above the threshold {health.threshold:g}"
    else:
        detail = f"{shown} {since_s}: within the threshold {health.threshold:g}"
    if window.unreadable:
        detail += f"; {window.unreadable} unreadable line(s) skipped"
    if window.skipped_other_version:
        detail += f"; {window.skipped_other_version} run(s) of other versions not counted"
    if window.future:
        detail += (f"; {window.future} run(s) stamped more than {_minutes(CLOCK_SKEW)} after now"
                   " not counted (a clock ahead, or a zone written wrong)")
    if now is not None and since > now + CLOCK_SKEW:
        detail += f"; the version's start {iso(since)} is after now (clocks disagree?)"
    return HealthResult(**base, verdict=verdict, samples=samples, failures=failures, rate=rate,
                        top_errors=top_errors(window.errors), unreadable=window.unreadable,
                        detail=detail, bytes_read=window.bytes_read)


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g} min"


def check_task(ws_root: str | os.PathLike[str], task: Task, *, now: datetime | None = None,
               block_size: int = BLOCK_SIZE) -> HealthResult:
    """The verdict of a task: its current version's runs since the later of the window start
    and the version's start (:func:`version_started_at` on its registry entry)."""
    if not task.location:
        raise BadInput(f"task {task.id} has no location; it has no health source",
                       "pick an active task (`clawback status` lists them)")
    health: HealthSettings = task.settings.health
    now = now or clock.now_utc()
    started = version_started_at(task.entry, task.version) if task.version else None
    since = window_start(now, health.window_minutes, started)
    if health.source == PREFECT_SOURCE:
        return evaluate_prefect(task_id=task.id, version=task.version, health=health, since=since)
    path = Path(ws_root) / task.location / health.source
    return evaluate(path, task_id=task.id, version=task.version, health=health, since=since,
                    block_size=block_size, now=now)
