"""The verdict history of each task (docs/design.md, "Health"): every health check appends its
verdict to ``.clawback/health/<task>.jsonl``, so the automation can act on a *streak* rather than on
one measurement, the way canary analysis counts consecutive successes and failures:

- **promotion**: ``K`` consecutive ``healthy`` verdicts of the current version make it stable.
  ``inconclusive`` (too few runs) neither counts nor breaks the streak; any other verdict, or a
  different version, breaks it.
- **measurement errors**: ``N`` consecutive ``error`` verdicts (the source could not be read)
  escalate once, when the streak reaches ``N``; they never trigger a rollback.
- **the hold**: a breach that was escalated (no target, the hourly limit, a failed rollback) is
  recorded in ``<task>.hold.json`` with its :func:`breach_id`; later checks of the same breach
  hold quietly instead of escalating and alerting again. A healthy verdict ends the episode and
  releases the hold; another version (or the same one started again) is another breach.

The history is machine-local tool state (the state directory is git-ignored): it says what this
machine measured. Lines are short single ``write`` calls in append mode; the file is trimmed to
its newest ``KEEP`` lines once it passes ``TRIM_AT`` bytes. Plain Python.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tasks_lib.core import ids, safefs
from tasks_lib.core.errors import Conflict
from tasks_lib.core.time import format as iso
from tasks_lib.core.time import parse as parse_ts

TAIL_BYTES = 64 * 1024
TRIM_AT = 512 * 1024
KEEP = 1000


@dataclass(frozen=True)
class Record:
    ts: datetime
    version: str | None
    verdict: str      # healthy | breach | inconclusive | error | unhealthy (a live check failed)
    samples: int = 0
    failures: int = 0


@dataclass(frozen=True)
class Escalated:
    """The escalation a task is held at (``<task>.hold.json``), as written by :meth:`VerdictLog.hold`."""
    breach: str | None      # None: the file is there but cannot be read
    at: Any = None          # the fields as stored, shown as they are
    why: Any = None
    target: Any = None


class VerdictLog:
    """``<state dir>/health/<task>.jsonl``, one record per health check of the task."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "health"

    def path(self, task_id: str) -> Path:
        return self.dir / f"{ids.task_id(task_id)}.jsonl"

    def append(self, task_id: str, record: Record) -> None:
        path = self.path(task_id)
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"ts": iso(record.ts), "version": record.version,
                           "verdict": record.verdict, "samples": record.samples,
                           "failures": record.failures}, separators=(",", ":")) + "\n"
        fd = safefs.open_append(path)
        try:
            os.write(fd, line.encode())
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > TRIM_AT:
            self._trim(path)

    def recent(self, task_id: str) -> list[Record]:
        """The newest records first, as far back as the file's last ``TAIL_BYTES`` reach."""
        try:
            with safefs.open_state(self.path(task_id)) as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - TAIL_BYTES))
                data = fh.read()
                whole = size <= TAIL_BYTES
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        if not whole:
            lines = lines[1:]  # the first one may be cut
        return [r for r in (_parse(raw) for raw in reversed(lines)) if r is not None]

    def _trim(self, path: Path) -> None:
        lines = safefs.read_state(path).splitlines(keepends=True)[-KEEP:]
        safefs.replace_file(path, b"".join(lines))


    # -- the hold: one escalation per breach -------------------------------------------------
    def hold_path(self, task_id: str) -> Path:
        return self.dir / f"{ids.task_id(task_id)}.hold.json"

    def held(self, task_id: str) -> Escalated | None:
        """The escalation this task is held at; None if there is no hold file. One that cannot
        be read holds no breach (``breach`` None): a breach escalates (replacing it, never
        writing through it) and a healthy verdict releases it (removes the name)."""
        try:
            doc = json.loads(safefs.read_state(self.hold_path(task_id)).decode("utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, Conflict):  # not JSON; a link, a FIFO: never read through
            return Escalated(None)
        if not isinstance(doc, dict) or not isinstance(doc.get("breach"), str):
            return Escalated(None)
        return Escalated(doc["breach"], doc.get("at"), doc.get("why"), doc.get("target"))

    def hold(self, task_id: str, breach: str, why: str, target: str | None, now: datetime) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.hold_path(task_id)
        safefs.replace_file(path, json.dumps({"breach": breach, "at": iso(now), "why": why,
                                              "target": target}).encode("utf-8"))

    def release(self, task_id: str) -> bool:
        try:
            self.hold_path(task_id).unlink()
        except FileNotFoundError:
            return False
        return True


def breach_id(task_id: str, version: str, started: datetime | None) -> str:
    """What names one breach: the task, its version and when that version last started, so
    the same version released or rolled back to again later is a new breach."""
    return f"{task_id}-{version}-{iso(started) if started else 'unknown'}"


def _parse(raw: bytes) -> Record | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("verdict"), str):
        return None
    ts = parse_ts(obj.get("ts"))
    if ts is None:
        return None
    version = obj.get("version")
    return Record(ts, version if isinstance(version, str) else None, obj["verdict"],
                  int(obj.get("samples") or 0), int(obj.get("failures") or 0))


def healthy_streak(newest_first: Iterable[Record], version: str) -> int:
    """Consecutive ``healthy`` verdicts of ``version``, newest back, skipping ``inconclusive``."""
    count = 0
    for r in newest_first:
        if r.version != version:
            break
        if r.verdict == "inconclusive":
            continue
        if r.verdict != "healthy":
            break
        count += 1
    return count


def error_streak(newest_first: Iterable[Record]) -> int:
    """Consecutive ``error`` verdicts, newest back (whatever the version)."""
    count = 0
    for r in newest_first:
        if r.verdict != "error":
            break
        count += 1
    return count
