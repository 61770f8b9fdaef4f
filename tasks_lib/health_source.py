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

The block scan is tasks_lib/health_scan.py; here are the parsers. A block of the JSON-lines
source whose lines are all runs inside the window is counted at once (:func:`read_jsonl_block`),
without a ``Run`` per line, each line read as line by line it would be: the same result.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tasks_lib.health_scan import (
    BLOCK_SIZE,
    MAX_LINE,
    BlockCount,
    Line,
    LinesParser,
    Run,
    WindowRead,
    count_objects,
    count_shaped,
    scan_backwards,
    shaped_head,
)
from tasks_lib.settings import HealthSettings

__all__ = ["BLOCK_SIZE", "MAX_LINE", "Line", "LinesParser", "LogPatterns", "Run", "WindowRead",
           "iso", "parse_jsonl_line", "parse_jsonl_lines", "parse_ts", "parser_for",
           "read_jsonl_block", "read_window", "utc"]


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
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, deep nesting
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
    except (ValueError, RecursionError):
        return None
    if type(docs) is list and len(docs) == len(body) and set(map(type, docs)) <= {list} and \
            set(map(len, docs)) <= {1}:
        return docs
    return None


def read_jsonl_block(lines: list[bytes], since: datetime,
                     version: str | None) -> BlockCount | list[Run | Line]:
    """The lines of one block (a :data:`~tasks_lib.health_scan.BlockReader`): counted at once
    when all are runs at or after ``since`` and none of another version (no ``Run`` made per
    line), otherwise what :func:`parse_jsonl_lines` makes of them. The counts read each line as
    :func:`_run` does, so the way a block is read changes its cost only."""
    text = b"\n".join(lines)  # every line ``{…}``: every newline sits in ``}\n{``
    if text[:1] != b"{" or text[-1:] != b"}" or text.count(b"\n") != text.count(b"}\n{"):
        return parse_jsonl_lines(lines)
    head = shaped_head(text, len(lines))
    old = False  # a run older than `since` is in the block (the boundary): nothing to count
    if head:
        key = since.strftime("%Y-%m-%dT%H:%M:%SZ").encode()  # stamps sort as their times do
        old = lines[0][head:head + 20] < key  # the oldest line, usually
        if not old:
            stamps = [ln[head:head + 20] for ln in lines]
            old = min(stamps) < key
            counted = None if old else count_shaped(lines, head, stamps, since, version)
            if counted is not None:
                return counted
    docs = _bulk(lines)
    if docs is None:
        return parse_jsonl_lines(lines)
    objs = [doc[0] for doc in docs]
    counted = None if old else count_objects(objs, since, version)
    return [_run(obj) for obj in objs] if counted is None else counted


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
        return scan_backwards(fd, st.st_size, since, version, block_size, parse,
                              read_jsonl_block if parse is parse_jsonl_lines else None)
    finally:
        os.close(fd)
