"""Reading a task's health source (SPEC §5) backwards, only as far as the window reaches.

Plain Python. The default source is a JSON-lines file of run outcomes, one object per run
(``{"ts": …, "ok": false, "error": "…", "version": "1.3.0"}``); the alternative is a log file with
error/total patterns (:class:`LogPatterns`).

Reading is bounded by the window, not by the file: the file is read backwards in blocks from its
end, newest run first, and reading stops once a run older than ``since`` was seen. Lines are
appended in time order; to tolerate a few out-of-order lines near the boundary (writers whose
clocks or buffers disagree by a little) one more block is read after the boundary and the runs
in it that are still inside the window are counted. A run out of order by more than one block is
not counted. Cost therefore grows with the lines in the window, never with the file size.

A line that is not a JSON object with a parseable ``ts`` and a boolean ``ok`` is *unreadable*:
skipped and counted (only those met before the boundary), never fatal. An unterminated last line
that does not parse is a run being written right now and is ignored.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from tasks_lib.settings import HealthSettings

if TYPE_CHECKING:
    pass

BLOCK_SIZE = 64 * 1024
MAX_LINE = 1024 * 1024  # a longer line is unreadable (memory stays bounded)


class Run(NamedTuple):
    """One run outcome from the health source (a tuple: thousands are made per check)."""

    ts: datetime
    ok: bool
    error: str | None = None
    version: str | None = None


class Line(Enum):
    """What a line of the health source is when it is not a run."""

    BLANK = "blank"
    UNREADABLE = "unreadable"


# Parses the complete lines of one block (file order) into one result per line.
LinesParser = Callable[[list[bytes]], list[Run | Line]]


@dataclass(frozen=True)
class WindowRead:
    """What the runs of a window add up to, and what it cost to read them."""

    samples: int
    failures: int
    # the raw error message of each failed run (None: none given) and how often, in the order
    # first met reading backwards: the most recent message first
    errors: tuple[tuple[str | None, int], ...]
    unreadable: int
    bytes_read: int
    lines_read: int
    skipped_other_version: int = 0


# -- time -----------------------------------------------------------------------------------
def parse_ts(value: object) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime (naive means UTC); None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):  # not a timestamp, or out of range once in UTC
        return None


def utc(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive datetime is taken to be UTC already."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- reading --------------------------------------------------------------------------------
_decode = json.JSONDecoder().decode
_fromiso = datetime.fromisoformat
_new_run = tuple.__new__  # Run(...) without NamedTuple's Python-level __new__: the hot path
_BLANK, _UNREADABLE = Line.BLANK, Line.UNREADABLE


def _run(obj: object) -> Run | Line:
    if type(obj) is not dict:
        return _UNREADABLE
    raw_ts = obj.get("ts")
    ts: datetime | None
    if type(raw_ts) is str and raw_ts[-1:] == "Z":  # the usual form: already UTC
        try:
            ts = _fromiso(raw_ts)
        except ValueError:
            return _UNREADABLE
    else:
        ts = parse_ts(raw_ts)
    ok = obj.get("ok")
    if ts is None or type(ok) is not bool:
        return _UNREADABLE
    err = obj.get("error")
    ver = obj.get("version")
    if err is not None and type(err) is not str:
        err = str(err)
    if ver is not None and type(ver) is not str:
        ver = str(ver)
    return _new_run(Run, (ts, ok, err, ver))  # type: ignore[no-any-return]


def parse_jsonl_line(raw: bytes) -> Run | Line:
    """One line of the JSON-lines source."""
    if not raw.strip():
        return Line.BLANK
    try:
        return _run(_decode(raw.decode("utf-8")))
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError
        return Line.UNREADABLE


def parse_jsonl_lines(lines: list[bytes]) -> list[Run | Line]:
    """The lines of one block. Fast path: one JSON document for the whole block, each line
    wrapped in its own array (``[[l1],[l2],…]``), used only when it decodes to exactly one
    one-element array per line whose lines all look like objects (``{…}``); otherwise (a
    malformed line in the block) line by line. Only lines crafted to balance each other's
    brackets could be split differently by the fast path, and they still have to be runs."""
    if lines and all(ln[:1] == b"{" and ln[-1:] == b"}" for ln in lines):  # the usual block
        docs = _bulk(lines)
        if docs is not None:
            return [_run(doc[0]) for doc in docs]
    out: list[Run | Line] = [Line.BLANK] * len(lines)
    idx = [i for i, ln in enumerate(lines) if ln.strip()]
    body = [lines[i].strip() for i in idx]
    if body and all(ln[:1] == b"{" and ln[-1:] == b"}" for ln in body):
        docs = _bulk(body)
        if docs is not None:
            for i, doc in zip(idx, docs, strict=True):
                out[i] = _run(doc[0])
            return out
    for i in idx:
        out[i] = parse_jsonl_line(lines[i])
    return out


def _bulk(body: list[bytes]) -> list[list[Any]] | None:
    """``[[l1],[l2],…]`` decoded, or None unless it is exactly one one-element array per line."""
    try:
        docs = _decode("[[" + b"],[".join(body).decode("utf-8") + "]]")
    except ValueError:
        return None
    if type(docs) is list and len(docs) == len(body) and all(
            type(d) is list and len(d) == 1 for d in docs):
        return docs
    return None


_LOG_TS = re.compile(
    r"\[?(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d(?::?\d\d)?)?)\]?\s*")


@dataclass(frozen=True)
class LogPatterns:
    """A log file as the health source (settings ``error_pattern`` / ``total_pattern``).

    A line is a run when it matches ``total`` (when not given: any line starting with an
    ISO-8601 timestamp, optionally in brackets, such as logging's ``2026-11-29 09:30:00,123``);
    it failed when it also matches ``error``, and its message is the text after the timestamp.
    Other lines (traceback continuations, chatter) are not runs. A run line without a leading
    timestamp is unreadable. Timestamps without a zone are read as UTC (configure logging with
    ``time.gmtime``). Log lines carry no version: only ``since`` selects the current version."""

    error: re.Pattern[str]
    total: re.Pattern[str] | None = None

    def __call__(self, lines: list[bytes]) -> list[Run | Line]:
        out: list[Run | Line] = []
        for raw in lines:
            text = raw.decode("utf-8", "replace").strip()
            if not text or (self.total is not None and not self.total.search(text)):
                out.append(_BLANK)
                continue
            m = _LOG_TS.match(text)
            ts = parse_ts(m.group(1)) if m else None
            if ts is None:
                out.append(_BLANK if self.total is None else _UNREADABLE)
                continue
            failed = self.error.search(text) is not None
            out.append(Run(ts, not failed, text[m.end():] if failed and m else None, None))
        return out


def parser_for(health: HealthSettings) -> LinesParser:
    """The line parser of a task's health source: JSON lines, or a log file with patterns."""
    if health.error_pattern is None:
        return parse_jsonl_lines
    total = re.compile(health.total_pattern) if health.total_pattern else None
    return LogPatterns(re.compile(health.error_pattern), total)


def read_window(path: str | os.PathLike[str], since: datetime, *, version: str | None = None,
                block_size: int = BLOCK_SIZE,
                parse: LinesParser = parse_jsonl_lines) -> WindowRead:
    """Count the runs at or after ``since`` (of ``version`` when given: runs naming another
    version are skipped; runs naming none count), reading ``path`` backwards from its end.

    Raises FileNotFoundError if it does not exist, and OSError (IsADirectoryError included) if it
    cannot be read or is not a regular file. Opens without blocking, so a FIFO never hangs.
    """
    if block_size < 1:
        raise ValueError("block_size must be positive")
    since = utc(since)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "it is a directory", os.fspath(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "it is not a regular file", os.fspath(path))
        return _scan_backwards(fd, st.st_size, since, version, block_size, parse)
    finally:
        os.close(fd)


def _scan_backwards(fd: int, size: int, since: datetime, version: str | None, block_size: int,
                    parse: LinesParser) -> WindowRead:
    errors: dict[str | None, int] = {}
    samples = failures = unreadable = other = bytes_read = lines = 0
    pos = size
    carry = b""          # the end part of a line whose start lies in a block not read yet
    at_end = True        # the next piece handled is the file's end (maybe an unterminated line)
    skipping = False     # inside a line longer than MAX_LINE: drop bytes up to its start
    boundary = False     # a run older than `since` was seen
    extra = False        # the block being read is the one past the boundary
    while pos > 0 and not extra:
        extra = boundary
        start = max(0, pos - block_size)
        chunk = os.pread(fd, pos - start, start)
        if not chunk:  # the file shrank under us
            break
        bytes_read += len(chunk)
        pos = start
        if skipping:
            cut = chunk.rfind(b"\n")
            if cut < 0 and pos > 0:
                continue
            skipping = at_end = False
            lines += 1
            if not boundary:
                unreadable += 1
            chunk = chunk[:cut] if cut >= 0 else b""  # up to the end of the line before it
        parts = (chunk + carry).split(b"\n")
        carry = parts.pop(0) if pos > 0 else b""
        if len(carry) > MAX_LINE:
            carry, skipping = b"", True
        if not parts:
            continue
        results = parse(parts)
        if at_end:
            at_end = False
            if parts[-1] == b"":  # the file ends with a newline
                results[-1] = Line.BLANK
            elif results[-1] is Line.UNREADABLE:
                results[-1] = Line.BLANK  # an unterminated last line: a run being written now
        for res in reversed(results):
            if res is _BLANK:
                continue
            lines += 1
            if res is _UNREADABLE:
                if not boundary:
                    unreadable += 1
                continue
            if res[0] < since:  # type: ignore[index]  # a Run: (ts, ok, error, version)
                boundary = True
                continue
            ver = res[3]  # type: ignore[index]
            if version is not None and ver is not None and ver != version:
                other += 1
                continue
            samples += 1
            if not res[1]:  # type: ignore[index]
                failures += 1
                err = res[2]  # type: ignore[index]
                errors[err] = errors.get(err, 0) + 1
    return WindowRead(samples, failures, tuple(errors.items()), unreadable, bytes_read, lines,
                      other)
