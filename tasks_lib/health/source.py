"""Reading a task's health source (docs/design.md, "Health") backwards, only as far as the window
reaches.

Plain Python. The default source is a JSON-lines file of run outcomes, one object per run
(``{"ts": …, "ok": false, "error": "…", "version": "1.3.0"}``); the alternative is a log file with
error/total patterns (:class:`LogPatterns`).

Reading is bounded by the window, not by the file: the file is read backwards in blocks from its
end, newest run first, and reading stops once a run older than ``since`` was seen. Lines are
appended in time order; to tolerate out-of-order lines near the boundary (writers whose clocks
or buffers disagree by a little, or one line stamped in 1970) reading goes on past the boundary
while the blocks still hold runs inside the window, and stops with the first block that holds
none (usually the one after the boundary's): a run out of order by more than a whole block of
older runs is not counted. Cost therefore grows with the lines in the window, never with the
file size. Runs stamped after ``until`` (``now`` plus a small clock skew) are not counted
either, only counted apart (:attr:`WindowRead.future`): a run from the future is a clock or a
zone gone wrong.

**Timestamps.** A stamp with a zone (``Z``, ``+08:00``) means what it says. A stamp without one
(naive) is the *machine's local time*: that is what the writers tasks use actually write
(Python logging's ``asctime``, ``datetime.now().isoformat()``); reading it as UTC would move a
UTC+8 machine's runs 8 hours forward, so a freshly restored version would be judged by the
failures of the version it replaced. In the hour a daylight-saving change repeats, a naive stamp
is the earlier of its two readings. The tool's own records (the registry, the verdict history)
are written in UTC with ``Z``; :func:`parse_ts` reads those, :func:`parse_run_ts` what tasks write.

A line that is not a JSON object with a parseable ``ts`` and a boolean ``ok`` is *unreadable*:
skipped and counted (only those met before the boundary), never fatal. An unterminated last line
that does not parse is a run being written right now and is ignored (unless it holds ``\r{``:
a file whose lines end with CR alone is one unreadable line, not a run being written). A line longer than MAX_LINE
stops the reading where it is met (tasks_lib/health/scan.py): before the boundary the source
cannot be judged (:attr:`WindowRead.too_long_at`).

Only a regular file is opened: a FIFO, a socket, a device or a directory (symbolic links
followed) is refused from its ``stat`` before any ``open``, so nothing blocks and no device is
touched; the open itself never blocks and never takes a terminal. A file that shrinks while it
is read (truncated, rotated in place) is read again, up to twice, then refused
(:class:`SourceShrank`); what is appended meanwhile is left to the next check.

The block scan is tasks_lib/health/scan.py; here are the parsers. A block of the JSON-lines
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
from datetime import datetime
from typing import Any

from tasks_lib.core.settings import HealthSettings
from tasks_lib.core.time import STAMP, utc
from tasks_lib.core.time import format as iso
from tasks_lib.core.time import parse as parse_ts
from tasks_lib.health.scan import (
    BLOCK_SIZE,
    END_OF_TIME,
    MAX_LINE,
    BlockCount,
    BlockReader,
    Line,
    LinesParser,
    Run,
    SourceShrank,
    WindowRead,
    count_objects,
    count_shaped,
    scan_backwards,
    shaped_head,
)

__all__ = ["BLOCK_SIZE", "MAX_LINE", "Line", "LinesParser", "LogPatterns", "Run", "SourceShrank",
           "WindowRead", "iso", "parse_jsonl_line", "parse_jsonl_lines", "parse_run_ts",
           "parse_ts", "parser_for", "read_jsonl_block", "read_window", "utc"]


# -- time (tasks_lib/core/time.py; kept here under the names the health code reads) --------
def parse_run_ts(value: object) -> datetime | None:
    """A timestamp a task wrote in its health source as an aware UTC datetime; a naive one is the
    machine's local time (the module docstring says why). None if it is not one, or if it is
    out of range once in UTC (year 1 or 9999 near the ends). Anything but a string (a number
    of seconds, say) is not a timestamp: seconds or milliseconds cannot be told apart."""
    return parse_ts(value, naive_is_local=True)


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
        ts = parse_run_ts(raw_ts)
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
    text = raw.strip()
    if not text:
        return Line.BLANK
    if text[:1] != b"{" or text[-1:] != b"}":  # not an object: no need to decode (it is slow)
        return Line.UNREADABLE
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
    for i, text in zip(idx, body, strict=True):
        out[i] = _UNREADABLE if text[:1] != b"{" or text[-1:] != b"}" else \
            parse_jsonl_line(lines[i])
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


def read_jsonl_block(lines: list[bytes], since: datetime, version: str | None,
                     until: datetime = END_OF_TIME) -> BlockCount | list[Run | Line]:
    """The lines of one block (a :data:`~tasks_lib.health.scan.BlockReader`): counted at once
    when all are runs from ``since`` to ``until`` and none of another version (no ``Run`` made
    per line), otherwise what :func:`parse_jsonl_lines` makes of them. The counts read each line
    as :func:`_run` does, so the way a block is read changes its cost only."""
    text = b"\n".join(lines)  # every line ``{…}``: every newline sits in ``}\n{``
    if text[:1] != b"{" or text[-1:] != b"}" or text.count(b"\n") != text.count(b"}\n{"):
        return parse_jsonl_lines(lines)
    head = shaped_head(text, len(lines))
    old = False  # a run older than `since` is in the block (the boundary): nothing to count
    if head:
        key = since.strftime(STAMP).encode()  # stamps sort as their times do
        old = lines[0][head:head + 20] < key  # the oldest line, usually
        if not old:
            stamps = [ln[head:head + 20] for ln in lines]
            old = min(stamps) < key
            counted = None if old else count_shaped(lines, head, stamps, since, version, until)
            if counted is not None:
                return counted
    docs = _bulk(lines)
    if docs is None:
        return parse_jsonl_lines(lines)
    objs = [doc[0] for doc in docs]
    counted = None if old else count_objects(objs, since, version, until)
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
    timestamp is unreadable. A timestamp without a zone is the machine's local time, as logging
    writes it by default (``2026-11-29 17:30:00,123`` on a UTC+8 machine is 09:30 UTC); one
    with a zone (``Z``, ``+08:00``, ``+0800``) means what it says. Log lines carry no version:
    only ``since`` selects the current version."""

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
            ts = parse_run_ts(m.group(1)) if m else None
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
                block_size: int = BLOCK_SIZE, parse: LinesParser = parse_jsonl_lines,
                until: datetime | None = None) -> WindowRead:
    """Count the runs from ``since`` to ``until`` (None: no upper bound; later runs are counted
    apart in ``future``), of ``version`` when given (runs naming another version are skipped;
    runs naming none count), reading ``path`` backwards from its end. Naive ``since`` and
    ``until`` are UTC (they are the tool's own times).

    Raises FileNotFoundError if it does not exist (a dangling symbolic link included), and
    OSError (IsADirectoryError included) if it cannot be read or is not a regular file, or if
    it kept shrinking while read (:class:`SourceShrank`). Never blocks on a special file.
    """
    if block_size < 1:
        raise ValueError("block_size must be positive")
    since = utc(since)
    until = None if until is None else utc(until)
    reader = read_jsonl_block if parse is parse_jsonl_lines else None
    retries = SHRINK_RETRIES
    while True:
        try:
            return _read_once(path, since, until, version, block_size, parse, reader)
        except SourceShrank:
            if retries == 0:
                raise
            retries -= 1


SHRINK_RETRIES = 2
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0))
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _regular(st: os.stat_result, path: str | os.PathLike[str]) -> None:
    """Refuse anything but a regular file, naming what it is."""
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "it is a directory", os.fspath(path))
    kind = next((name for test, name in _KINDS if test(st.st_mode)), "something else")
    raise OSError(errno.EINVAL, f"it is {kind}, not a regular file", os.fspath(path))


def _read_once(path: str | os.PathLike[str], since: datetime, until: datetime | None,
               version: str | None, block_size: int, parse: LinesParser,
               reader: BlockReader | None) -> WindowRead:
    _regular(os.stat(path), path)  # before opening: a FIFO or a device is never opened
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        _regular(st, path)  # replaced between the stat and the open
        got = scan_backwards(fd, st.st_size, since, version, block_size, parse, reader, until)
        if os.fstat(fd).st_size < st.st_size:  # shrank (and maybe grew again) meanwhile
            raise SourceShrank.now()
        return got
    finally:
        os.close(fd)
