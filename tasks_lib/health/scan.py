"""The backward block scan of a health source (tasks_lib/health/source.py describes the reading).

Plain Python. The file is read in blocks from its end; the complete lines of each block are
parsed and met newest first. The first run older than ``since`` is the boundary; reading stops
with the first block after the boundary's block that holds lines but no run of the window
(``since`` to ``until``). Usually that is the one block after it (it tolerates a few lines out
of order); a run stamped far in the past in the middle of the window (a clock reset to 1970 at
boot, ``0001-01-01``) therefore does not hide the window's older runs, and the cost still
follows the window: every block read past the boundary but the last holds one of its runs (or
lies inside one line, at most MAX_LINE of them). A line is reached with the block holding the
newline before it; the part of a line that starts in a block not read yet is carried. Runs
stamped after ``until`` (``now`` plus a small clock skew, tasks_lib/health/verdict.py) are not counted,
only counted apart. Unreadable lines are counted only until the boundary.

A line whose carried part grows longer than MAX_LINE stops the scan where it is met: finding
its start would mean reading all of it (a file of one 8 GiB line without a newline), so
neither memory nor time would be bounded any more. Met where the window goes on (before the
boundary, or in a later block that still holds runs of the window) it is reported
(:attr:`WindowRead.too_long_at`, the offset where it ends) and the source cannot be judged;
otherwise it only ends the reading. Either way at most MAX_LINE plus two blocks are read for it.

Lines that are not runs (blank, unreadable, a log's chatter) do not move the reading towards the
boundary: a file of gigabytes of them would be read to its start. So before the boundary,
MAX_GAP_LINES lines or MAX_GAP_BYTES bytes in a row without a run (counted by whole blocks) stop
the scan too (:attr:`WindowRead.gap_at`): the source cannot be judged, it is not a file of runs.

The source's reader may also count a whole block at once (:data:`BlockReader`): when every
line of the block is a run inside the window it answers with a :class:`BlockCount` instead of
one ``Run`` per line (for JSON lines, :func:`count_shaped` and :func:`count_objects` below).
Any other block (the boundary's, those past it, one with an odd line) comes back line by line
through the same loop, so the result never depends on which way a block was read:
tests/health/test_health_fast.py holds both to a line-by-line reference.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from itertools import compress, repeat
from operator import not_
from typing import Any, NamedTuple

BLOCK_SIZE = 64 * 1024
MAX_LINE = 1024 * 1024  # a longer line stops the scan (memory and time stay bounded)
MAX_GAP_LINES = 1_000_000  # this many lines in a row without a run stop the scan, or
MAX_GAP_BYTES = 64 * 1024 * 1024  # this many bytes (a second or so of reading either way)
END_OF_TIME = datetime.max.replace(tzinfo=UTC)  # ``until`` when not given


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


class BlockCount(NamedTuple):
    """A block whose every line is a run at or after ``since`` and not of another version."""

    runs: int
    failed: list[str | None]  # the error of each failed run (raw, None: none given), newest first


# Reads the complete lines of one block (file order) given ``since``, the version and ``until``:
# a BlockCount (every line a run from ``since`` to ``until``), or one result per line exactly as
# the source's LinesParser would.
BlockReader = Callable[[list[bytes], datetime, str | None, datetime],
                       BlockCount | list[Run | Line]]


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
    future: int = 0  # runs stamped after ``until`` (a clock ahead, or a zone misread): not counted
    # where a line longer than MAX_LINE met before the boundary ends (byte offset): reading
    # stopped there, so the runs before it were not read and the window cannot be judged
    too_long_at: int | None = None
    # where reading stopped before the boundary because MAX_GAP_LINES lines or MAX_GAP_BYTES
    # bytes in a row held no run (byte offset): the window's start was not found
    gap_at: int | None = None


class SourceShrank(OSError):
    """The file became shorter while it was read (truncated, or rotated in place by copying)."""

    @classmethod
    def now(cls) -> SourceShrank:
        return cls(errno.ESTALE, "it shrank while it was read (truncated or rotated in place?);"
                   " the next check reads it again")


_BLANK, _UNREADABLE = Line.BLANK, Line.UNREADABLE


def scan_backwards(fd: int, size: int, since: datetime, version: str | None, block_size: int,
                   parse: LinesParser, read_block: BlockReader | None = None,
                   until: datetime | None = None) -> WindowRead:
    """Tally the window of the open file ``fd`` of ``size`` bytes (``since``, ``until`` in UTC;
    no ``until``: no upper bound). With ``read_block``, blocks are read through it (it must agree
    with ``parse``). Raises :class:`SourceShrank` when a read comes back short."""
    if until is None:
        until = END_OF_TIME
    errors: dict[str | None, int] = {}
    samples = failures = unreadable = other = future = bytes_read = lines = 0
    too_long_at = gap_at = None
    gap_lines = gap_bytes = 0  # lines and bytes in a row, by whole blocks, without a run
    pos = size
    carry = b""          # the end part of a line whose start lies in a block not read yet
    at_end = True        # the next piece handled is the file's end (maybe an unterminated line)
    boundary = False     # a run older than `since` was seen
    while pos > 0:
        past = boundary  # the boundary was met in an earlier block
        fresh = False    # this block holds a run of the window (from `since` to `until`)
        any_run = False  # this block holds a run (of any time or version)
        start = max(0, pos - block_size)
        chunk = os.pread(fd, pos - start, start)
        if len(chunk) != pos - start:  # the file is shorter than when it was opened
            raise SourceShrank.now()
        bytes_read += len(chunk)
        pos = start
        parts = (chunk + carry).split(b"\n")
        carry = parts.pop(0) if pos > 0 else b""
        over_end = pos + len(carry) if len(carry) > MAX_LINE else None  # too long: stop here
        if over_end is not None:
            carry = b""
        results: list[Run | Line] | None = None
        if not parts:
            pass
        elif read_block is not None and (not at_end or parts[-1] == b""):
            # (the block holding the file's end goes line by line when that is unterminated)
            got = read_block(parts[:-1] if at_end else parts, since, version, until)
            if isinstance(got, BlockCount):
                at_end = False
                fresh = any_run = got.runs > 0
                lines += got.runs
                samples += got.runs
                failures += len(got.failed)
                for err in got.failed:
                    errors[err] = errors.get(err, 0) + 1
            else:
                results = got + [_BLANK] if at_end else got
        else:
            results = parse(parts)
        if results is not None:
            if at_end:
                at_end = False
                if parts[-1] == b"":  # the file ends with a newline
                    results[-1] = Line.BLANK
                elif results[-1] is Line.UNREADABLE and b"\r{" not in parts[-1]:
                    results[-1] = Line.BLANK  # an unterminated last line: a run being written now
                    # (unless it holds "\r{": lines ended by CR alone, a whole file on one line)
            if type(results[-1]) is Line and set(map(type, results)) == {Line}:
                bad = results.count(_UNREADABLE)  # no run at all: counted at C speed
                lines += bad
                if not boundary:
                    unreadable += bad
                results = []
            else:
                any_run = True
            for res in reversed(results):
                if res is _BLANK:
                    continue
                lines += 1
                if res is _UNREADABLE:
                    if not boundary:
                        unreadable += 1
                    continue
                ts = res[0]  # type: ignore[index]  # a Run: (ts, ok, error, version)
                if ts < since:
                    boundary = True
                    continue
                if ts > until:
                    future += 1
                    continue
                fresh = True
                ver = res[3]  # type: ignore[index]
                if version is not None and ver is not None and ver != version:
                    other += 1
                    continue
                samples += 1
                if not res[1]:  # type: ignore[index]
                    failures += 1
                    err = res[2]  # type: ignore[index]
                    errors[err] = errors.get(err, 0) + 1
        if over_end is not None:
            if not boundary or (past and fresh):  # the window goes on beyond it
                too_long_at = over_end
            break
        if past and parts and not fresh:  # lines, but none of the window: it ended
            break
        if any_run:
            gap_lines = gap_bytes = 0
        else:
            gap_lines += len(parts)
            gap_bytes += len(chunk)
            if not boundary and pos > 0 and (gap_lines >= MAX_GAP_LINES or
                                             gap_bytes >= MAX_GAP_BYTES):
                gap_at = pos
                break
    return WindowRead(samples, failures, tuple(errors.items()), unreadable, bytes_read, lines,
                      other, future, too_long_at, gap_at)


# -- counting a block of JSON lines at once (health_source.read_jsonl_block) -------------------
# A BlockCount only when every line is a run that health_source._run reads (a "ts" ending in
# "Z" is parsed by datetime.fromisoformat as it stands, "ok" is a bool, "error" and "version"
# are str() unless strings or null) from `since` to `until` and not of another version; else
# None (and the block goes line by line, where a run past `until` is counted apart).
_decode = json.JSONDecoder().decode
_fromiso = datetime.fromisoformat


# How writers start a line: json.dumps's separators, and compact ones. A block whose lines all
# start so with a plain UTC stamp (``{"ts": "2026-11-29T09:30:00Z"…``) is counted by the shape of
# its lines: the rest after the stamp, of which there are few (ok, error, version).
_HEADS = (b'{"ts": "', b'{"ts":"')
_STAMPS = re.compile(rb"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)*")
_P1, _P2 = "2000-01-01T00:00:00Z", "2000-01-02T00:00:00Z"
_MAX_SHAPES = 64


def shaped_head(text: bytes, n: int) -> int:
    """The length of the head all ``n`` lines of ``text`` start with, or 0."""
    for head in _HEADS:
        if text.startswith(head) and text.count(b"\n" + head) == n - 1:
            return len(head)
    return 0


def count_shaped(lines: list[bytes], head: int, stamps: list[bytes], since: datetime,
                 version: str | None, until: datetime = END_OF_TIME) -> BlockCount | None:
    """Lines ``<head><20-byte stamp><rest>`` counted by decoding each distinct rest once, or None.

    A stamp of digits, ``-``, ``T``, ``:``, ``Z`` holds nothing JSON treats specially, so a line
    is valid JSON and decodes to what its rest decodes to with any such stamp put in: decoding
    the rest with two different stamps shows the stamp is the ``ts`` (no later ``ts`` key
    overrides it). Each line then is the run ``_run`` makes of it, its stamp parsed alike."""
    n = len(lines)
    joined = b"".join(stamps)
    if n == 0 or len(joined) != 20 * n or not _STAMPS.fullmatch(joined):
        return None
    text = joined.decode("ascii")
    try:
        times = list(map(_fromiso, [text[i:i + 20] for i in range(0, 20 * n, 20)]))
    except ValueError:  # not a date (Feb 30 …)
        return None
    if min(times) < since or max(times) > until:
        return None
    rests = [ln[head + 20:] for ln in lines]
    shapes = set(rests)
    if len(shapes) > _MAX_SHAPES:
        return None
    prefix = lines[0][:head].decode("ascii")
    failed: dict[bytes, str | None] = {}
    for rest in shapes:
        if rest[:1] != b'"':  # the stamp is not the whole string
            return None
        try:
            tail = rest.decode("utf-8")
            one, two = _decode(prefix + _P1 + tail), _decode(prefix + _P2 + tail)
        except (ValueError, RecursionError):
            return None
        if type(one) is not dict or type(two) is not dict or one.get("ts") != _P1 or \
                two.get("ts") != _P2:
            return None
        ok, err, ver = one.get("ok"), one.get("error"), one.get("version")
        if type(ok) is not bool or version is not None and ver is not None and (
                ver if type(ver) is str else str(ver)) != version:
            return None
        if not ok:
            failed[rest] = err if err is None or type(err) is str else str(err)
    return BlockCount(n, [failed[r] for r in reversed(rests) if r in failed] if failed else [])


def count_objects(objs: list[Any], since: datetime, version: str | None,
                  until: datetime = END_OF_TIME) -> BlockCount | None:
    """The decoded lines ``objs`` as a BlockCount, or None unless each is a run ``_run`` reads
    from a ``ts`` ending in "Z" (the others go line by line), from ``since`` to ``until``, and
    not of another version."""
    n = len(objs)
    try:
        stamps = list(map(dict.get, objs, repeat("ts")))  # TypeError: not all are objects
        if sum(map(str.endswith, stamps, repeat("Z"))) != n:  # TypeError: not all strings
            return None
        times = list(map(_fromiso, stamps))  # ValueError: not a timestamp (Feb 30 …)
        if min(times) < since or max(times) > until:
            return None
    except (TypeError, ValueError):
        return None
    oks = list(map(dict.get, objs, repeat("ok")))
    if set(map(type, oks)) != {bool}:
        return None
    if version is not None:
        versions = list(map(dict.get, objs, repeat("version")))
        # count() compares with ==, and no JSON value but a string equals a string, nor any
        # but null equals None: anything else (another version, 1.3 as a number) goes line by line
        if versions.count(version) + versions.count(None) != n:
            return None
    failed = [obj.get("error") for obj in compress(objs, map(not_, oks))]
    failed.reverse()  # newest first, as they are met
    return BlockCount(n, [e if e is None or type(e) is str else str(e) for e in failed])
