"""Append-only audit log (docs/design.md, "Audit log entry"): JSON lines under
.clawback/audit.jsonl, hash-chained.

Each entry carries ``prev`` (the previous entry's hash) and ``hash`` (sha256 of its own canonical
JSON without ``hash``), so an edited, removed or reordered line breaks the chain at that point.
Entries hold names and versions, never secret values.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks_lib.core import safefs
from tasks_lib.core import time as clock
from tasks_lib.core.filenames import json_text
from tasks_lib.secrets import masking

GENESIS = "sha256:" + "0" * 64


def actor() -> str:
    """Who is acting: $CLAWBACK_ACTOR, else user@host."""
    if os.environ.get("CLAWBACK_ACTOR"):
        return os.environ["CLAWBACK_ACTOR"]
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"
    import socket  # only for an entry being written

    return f"{user}@{socket.gethostname()}"


def _hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    raw = json_text(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def _masked(value: Any, secrets: list[str]) -> Any:
    """No secret value (tasks_lib/secrets/masking.py) and no credential in a URL or webhook id ever lands
    in the log, whatever a message echoed."""
    return masking.mask_data(value, secrets)


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    broken_at: int | None = None   # 1-based line number of the first bad entry
    reason: str = ""


class AuditLog:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "audit.jsonl"
        self._lock_path = state_dir / "locks" / "audit.lock"

    def append(self, action: str, *, task: str | None = None, result: str = "ok",
               from_version: str | None = None, to_version: str | None = None,
               reason: str | None = None, duration_s: float | None = None,
               **details: Any) -> dict[str, Any]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        (self.path.parent / "locks").mkdir(exist_ok=True)
        from filelock import FileLock  # only to append: ~15 ms (asyncio) a reader never pays

        safefs.own_file(self._lock_path)
        with FileLock(str(self._lock_path)):
            prev = self._last_hash()
            entry: dict[str, Any] = {
                "ts": clock.format(), "actor": actor(), "action": action, "task": task,
                "from": from_version, "to": to_version, "reason": reason, "result": result,
                "duration_s": round(duration_s, 3) if duration_s is not None else None,
                "details": details or {}, "prev": prev,
            }
            entry = _masked(entry, masking.for_workspace(self.path.parent.parent))
            entry["hash"] = _hash(entry)
            line = json_text(json.dumps(entry, ensure_ascii=False)) + "\n"  # a raw-byte name escaped
            fd = safefs.open_append(self.path, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def _last_hash(self) -> str:
        try:
            fh = safefs.open_state(self.path)
        except FileNotFoundError:
            return GENESIS
        with fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return GENESIS
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            back = min(size, 1 << 16)
            while True:
                fh.seek(size - back)
                lines = fh.read(back).rstrip(b"\n").split(b"\n")
                if len(lines) > 1 or back == size:
                    break
                back = min(size, back * 4)
        try:
            return json.loads(lines[-1])["hash"]
        except (ValueError, KeyError):
            return "sha256:broken"

    def lines(self) -> Iterator[str]:
        """The log's lines, as written (none when there is no log): read as tool state, so a
        link or a FIFO planted at the log is a Conflict, never a hang."""
        try:
            raw = safefs.open_state(self.path)
        except FileNotFoundError:
            return
        with io.TextIOWrapper(raw, encoding="utf-8") as fh:
            yield from fh

    def entries(self, task: str | None = None) -> Iterator[dict[str, Any]]:
        for line in self.lines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if task is None or entry.get("task") == task:
                yield entry

    def verify(self) -> ChainCheck:
        prev = GENESIS
        count = 0
        for n, line in enumerate(self.lines(), 1):
            try:
                entry = json.loads(line)
            except ValueError:
                return ChainCheck(False, count, n, "not JSON")
            if entry.get("prev") != prev:
                return ChainCheck(False, count, n, "chain broken (an entry was removed or reordered)")
            if entry.get("hash") != _hash(entry):
                return ChainCheck(False, count, n, "entry was edited")
            prev = entry["hash"]
            count += 1
        return ChainCheck(True, count)


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start
