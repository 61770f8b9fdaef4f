"""The backward block scan of a health source (tasks_lib/health_source.py describes the reading).

Plain Python. The file is read in blocks from its end; the complete lines of each block are
parsed and met newest first, and reading stops one block after the first run older than
``since`` (the boundary). A line is reached with the block holding the newline before it; the
part of a line that starts in a block not read yet is carried, and a line whose carried part
grows longer than MAX_LINE is unreadable without being loaded.

The source's reader may also count a whole block at once (:data:`BlockReader`): when every
line of the block is a run inside the window it answers with a :class:`BlockCount` instead of
one ``Run`` per line (for JSON lines, :func:`count_shaped` and :func:`count_objects` below).
Any other block (the boundary's, the one past it, one with an odd line) comes back line by line
through the same loop, so the result never depends on which way a block was read:
tests/test_health_fast.py holds both to a line-by-line reference.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from itertools import compress, repeat
from operator import not_
from typing import Any, NamedTuple

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


class BlockCount(NamedTuple):
    """A block whose every line is a run at or after ``since`` and not of another version."""

    runs: int
    failed: list[str | None]  # the error of each failed run (raw, None: none given), newest first


# Reads the complete lines of one block (file order) given ``since`` and the version: a
# BlockCount, or one result per line exactly as the source's LinesParser would.
BlockReader = Callable[[list[bytes], datetime, str | None], BlockCount | list[Run | Line]]


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


_BLANK, _UNREADABLE = Line.BLANK, Line.UNREADABLE


def scan_backwards(fd: int, size: int, since: datetime, version: str | None, block_size: int,
                   parse: LinesParser, read_block: BlockReader | None = None) -> WindowRead:
    """Tally the window of the open file ``fd`` of ``size`` bytes (``since`` in UTC). With
    ``read_block``, blocks are read through it (it must agree with ``parse``)."""
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
        if read_block is not None and (not at_end or parts[-1] == b""):
            # (the block holding the file's end goes line by line when that is unterminated)
            got = read_block(parts[:-1] if at_end else parts, since, version)
            if isinstance(got, BlockCount):
                at_end = False
                lines += got.runs
                samples += got.runs
                failures += len(got.failed)
                for err in got.failed:
                    errors[err] = errors.get(err, 0) + 1
                continue
            results: list[Run | Line] = got + [_BLANK] if at_end else got
        else:
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


# -- counting a block of JSON lines at once (health_source.read_jsonl_block) -------------------
# A BlockCount only when every line is a run that health_source._run reads (a "ts" ending in
# "Z" is parsed by datetime.fromisoformat as it stands, "ok" is a bool, "error" and "version"
# are str() unless strings or null) at or after `since` and not of another version; else None.
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
                 version: str | None) -> BlockCount | None:
    """Lines ``<head><20-byte stamp><rest>`` counted by decoding each distinct rest once, or None.

    A stamp of digits, ``-``, ``T``, ``:``, ``Z`` holds nothing JSON treats specially, so a line
    is valid JSON and decodes to what its rest decodes to with any such stamp put in: decoding
    the rest with two different stamps shows the stamp is the ``ts`` (no later ``ts`` key
    overrides it). Each line then is the run ``_run`` makes of it, its stamp parsed alike."""
    n = len(lines)
    joined = b"".join(stamps)
    if len(joined) != 20 * n or not _STAMPS.fullmatch(joined):
        return None
    text = joined.decode("ascii")
    try:
        if min(map(_fromiso, [text[i:i + 20] for i in range(0, 20 * n, 20)])) < since:
            return None
    except ValueError:  # not a date (Feb 30 …)
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


def count_objects(objs: list[Any], since: datetime, version: str | None) -> BlockCount | None:
    """The decoded lines ``objs`` as a BlockCount, or None unless each is a run ``_run`` reads
    from a ``ts`` ending in "Z" (the others go line by line), at or after ``since``, and not of
    another version."""
    n = len(objs)
    try:
        stamps = list(map(dict.get, objs, repeat("ts")))  # TypeError: not all are objects
        if sum(map(str.endswith, stamps, repeat("Z"))) != n:  # TypeError: not all strings
            return None
        if min(map(_fromiso, stamps)) < since:  # ValueError: not a timestamp (Feb 30 …)
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
