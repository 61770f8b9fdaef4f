"""read_window against a plain line-by-line reference (tasks_lib/health/source.py).

The reader scans blocks backwards and counts whole blocks of ordinary runs without building a
``Run`` per line (tasks_lib/health/scan.py: by the shape of json.dumps's lines, or from the
decoded block); the reference below reads the whole file at once, line by line, and only
simulates which lines the block scan reaches. Both must agree on everything a ``WindowRead``
holds, for every input, block size, ``since``, ``until``, version filter and local time zone.
More examples locally:
``HEALTH_FAST_EXAMPLES=5000 .venv/bin/python -m pytest tests/health/test_health_fast.py``.

The semantics the reference spells out (they are the reader's, including its quirks):

* the file is read in blocks from its end; a line is *reached* with the block holding the
  newline before it (the last block for the file's first line). Lines are met newest first;
  after the block where the first run older than ``since`` (the boundary) is reached, reading
  stops with the first block where lines are reached but no run of the window (``since`` to
  ``until``, any version);
* unreadable lines count only while the boundary has not been met; every line that is not
  blank counts in ``lines_read`` (old runs, runs of other versions and from the future
  included); a run after ``until`` is counted in ``future`` only (the boundary is checked first,
  then ``until``, then the version);
* a line is over-long when the part of it the reader carries (from a block start inside it to
  its end) grows longer than MAX_LINE: reading stops with the block where that happens (the
  lines after it in that block are still counted); met before the boundary, ``too_long_at`` is
  where the line ends. An over-long line is not counted in ``lines_read``;
* the unterminated last line is ignored when it does not parse (a run being written) unless it
  holds ``\r{`` (lines ended by CR alone), but an over-long one stops the reading like any other;
* after each block, before the boundary and short of the file's start: when the blocks since
  the last one where a run (of any time or version) was reached add up to MAX_GAP_LINES lines
  reached or MAX_GAP_BYTES bytes, reading stops there and ``gap_at`` is where it stands;
* ``ts`` ending in "Z" is parsed as is (surrounding blanks make it unreadable), any other
  string is stripped first; naive means the machine's local time; out of range once in UTC is
  unreadable; whatever datetime.fromisoformat takes is a time (any character between date and
  time, week dates).

Lines with a blank other than space, tab, CR (form feed, vertical tab) next to a JSON object
are left out of the random lines: the reader parses them as runs when the rest of their block
parses in one go and as unreadable otherwise (json takes only those four as blanks, bytes.strip
takes six), which a line-by-line reference cannot follow.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks_lib.health import scan as health_scan
from tasks_lib.health import source as health_source
from tasks_lib.health.source import WindowRead, read_window

SCAN = health_scan  # the module whose MAX_LINE the block scan reads

S = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
BLANK, UNREADABLE = "blank", "unreadable"
END = datetime.max.replace(tzinfo=UTC)
# local zones the reader is run in: +8, -3:30, +14 (naive stamps are local time)
ZONES = ("UTC", "Asia/Shanghai", "America/St_Johns", "Pacific/Kiritimati")


@contextmanager
def local_zone(name: str) -> Iterator[None]:
    """The process's local time zone is ``name`` (TZ and tzset), restored afterwards."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


# -- the reference ----------------------------------------------------------------------------
def reference_parse(raw: bytes) -> Any:
    """One line on its own: BLANK, UNREADABLE or (ts, ok, error, version)."""
    if not raw.strip():
        return BLANK
    try:
        obj = json.loads(raw.decode("utf-8"))
    except ValueError:
        return UNREADABLE
    if not isinstance(obj, dict):
        return UNREADABLE
    raw_ts = obj.get("ts")
    if not isinstance(raw_ts, str) or not raw_ts:
        return UNREADABLE
    try:
        ts = datetime.fromisoformat(raw_ts if raw_ts.endswith("Z") else raw_ts.strip())
        ts = ts.astimezone(UTC)  # naive: local time
    except (ValueError, OverflowError, OSError):
        return UNREADABLE
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        return UNREADABLE
    err, ver = obj.get("error"), obj.get("version")
    err = err if err is None or isinstance(err, str) else str(err)
    ver = ver if ver is None or isinstance(ver, str) else str(ver)
    return ts, ok, err, ver


def reference_read_window(data: bytes, since: datetime, version: str | None, block_size: int,
                          max_line: int = health_source.MAX_LINE,
                          until: datetime | None = None,
                          max_gap: tuple[int, int] = (health_scan.MAX_GAP_LINES,
                                                      health_scan.MAX_GAP_BYTES)) -> WindowRead:
    since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    if until is None:
        until = END
    until = until.replace(tzinfo=UTC) if until.tzinfo is None else until.astimezone(UTC)
    size = len(data)
    if size == 0:
        return WindowRead(0, 0, (), 0, 0, 0, 0)
    last_block = (size - 1) // block_size  # blocks are numbered from the file's end

    def block_of(offset: int) -> int:
        return (size - 1 - offset) // block_size

    def over_long_in(start: int, end: int) -> int | None:
        """The block whose reading makes the carried part of the line too long, or None: the
        first block k after which reading stands at ``size - (k + 1) * block_size``, inside the
        line (at or after its start, not at the file's start) and more than max_line before
        its end."""
        k = (size - end + max_line) // block_size
        pos = size - (k + 1) * block_size
        return k if pos > 0 and pos >= start else None

    pieces = []  # (start, end) of every line, the piece after the last newline included
    start = 0
    for raw in data.split(b"\n"):
        pieces.append((start, start + len(raw)))
        start += len(raw) + 1

    samples = failures = unreadable = other = future = lines = 0
    errors: dict[str | None, int] = {}
    boundary: int | None = None  # the block where the first run older than `since` was reached
    reached: dict[int, int] = {}  # how many lines were reached in each block
    fresh: set[int] = set()  # the blocks where a run of the window was reached
    runs: set[int] = set()  # the blocks where any run was reached
    too_long_at: int | None = None
    gap_at: int | None = None
    gap_lines = gap_bytes = 0
    done = 0  # the blocks before this one went through the rules applied after each block

    def stopped_before(block: int) -> int | None:
        """The rules applied after each block before ``block``: the one reading stopped after."""
        nonlocal done, gap_lines, gap_bytes, gap_at
        while done < block:
            j, done = done, done + 1
            if boundary is not None and boundary < j and reached.get(j) and j not in fresh:
                return j  # past the boundary: lines but none of the window
            if j in runs:
                gap_lines = gap_bytes = 0
                continue
            gap_lines += reached.get(j, 0)
            gap_bytes += min(block_size, size - j * block_size)
            pos = size - (j + 1) * block_size
            if (boundary is None or boundary > j) and pos > 0 and (
                    gap_lines >= max_gap[0] or gap_bytes >= max_gap[1]):
                gap_at = pos
                return j
        return None

    read_to = last_block
    for i in range(len(pieces) - 1, -1, -1):
        start, end = pieces[i]
        reached_in = block_of(start - 1) if start > 0 else last_block
        over = over_long_in(start, end)
        stop = stopped_before(reached_in if over is None else over)
        if stop is not None:
            read_to = stop
            break
        if over is not None:
            read_to = over
            if boundary is None or boundary < over and over in fresh:  # the window goes on
                too_long_at = end
            break
        reached[reached_in] = reached.get(reached_in, 0) + 1
        res: Any = reference_parse(data[start:end])
        if i == len(pieces) - 1 and res == UNREADABLE and b"\r{" not in data[start:end]:
            res = BLANK  # an unterminated last line being written (not lines ended by CR)
        if res == BLANK:
            continue
        lines += 1
        if res == UNREADABLE:
            if boundary is None:
                unreadable += 1
            continue
        runs.add(reached_in)
        ts, ok, err, ver = res
        if ts < since:
            if boundary is None:
                boundary = reached_in
            continue
        if ts > until:
            future += 1
            continue
        fresh.add(reached_in)
        if version is not None and ver is not None and ver != version:
            other += 1
            continue
        samples += 1
        if not ok:
            failures += 1
            errors[err] = errors.get(err, 0) + 1
    bytes_read = size - max(0, size - (read_to + 1) * block_size)
    return WindowRead(samples, failures, tuple(errors.items()), unreadable, bytes_read, lines,
                      other, future, too_long_at, gap_at)


# -- random sources ---------------------------------------------------------------------------
def _stamp(seconds: int) -> str:
    return (S + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


OFFSETS = st.sampled_from([-86400, -3600, -3, -2, -1, 0, 1, 2, 3, 299, 300, 301, 3600, 86400])
ODD_TS = st.sampled_from([
    "2026-02-30T00:00:00Z", "2026-03-01T12:00:00+00:00", "2026-03-01T17:00:01+05:00",
    "2026-03-01T11:59:59", "2026-03-01T12:00:01", "2026-03-01 12:00:01Z",
    "2026-03-01T12:00:00.5Z", "20260301T120002Z", " 2026-03-01T12:00:01Z",
    "2026-03-01T12:00:01Z ", " 2026-03-01T12:00:01", "2026-03-01T12:00:01+00:00 ",
    "2026-13-01T00:00:00Z", "2026-03-01T24:00:00Z", "", "Z", "yesterday",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00", "9999-12-31T23:59:59Z",
    "2026-03-01t12:00:01z", "2026-03-01T12:00:60Z", "2026-04-31T12:00:00Z",
    "2026-03-01x12:00:01Z", "2026-W09-7T12:00:01Z",  # any separator; week dates
    # naive: local time (S is 20:00 in Shanghai, 08:30 in St John's, 02:00 next day at +14)
    "2026-03-01T19:59:59", "2026-03-01T20:00:01", "2026-03-01T08:29:59", "2026-03-01T08:30:01",
    "2026-03-02T02:00:01", "2026-03-01T20:05:01", "0001-01-01T00:00:00", "9999-12-31T23:59:59",
    # odd offsets, and the upper bound S + 5 min
    "2026-03-02T02:00:01+14:00", "2026-03-01T00:00:01-12:00", "2026-03-01T08:30:01-03:30",
    "2026-03-01T12:05:00Z", "2026-03-01T12:05:01Z", "2026-03-01T20:05:00.000001+08:00",
])
ODD_VALUES = st.sampled_from([None, 1, 0, 1.0, "yes", "", [1], {"a": 1}, True, False])
OTHER_LINES = st.sampled_from([
    "", " ", "\t", "\r", "{not json", "[1, 2]", "42", '"str"', "null", "{}", "{}}",
    '{"ts": 1}', '{"ok": true}', "garbage " * 3, "\udcff\udcfe{}", "{\"ts\": \"2026-03-01T12:00:01Z\"",
    '{"ok": true, "ts": "2026-03-01T24:00:00Z"}', '{"ok": false, "ts": "2026-04-31T12:00:00Z"}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": true}\r{"ts": "2026-03-01T12:00:02Z", "ok": false}\r',
])


# lines a block counter reading stamps in place could get wrong (json.dumps's way of writing)
SHAPED_ODD = st.sampled_from([
    '{"ts": "2026-03-01T12:00:01Z", "ok": true, "ts": "2026-03-01T11:00:00Z"}',
    '{"ts": "2026-03-01T11:00:00Z", "ok": true, "ts": "2026-03-01T12:00:01Z"}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": true, "ts": "2000-01-01T00:00:00Z"}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": true, "ts": "2000-01-02T00:00:00Z"}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": false, "error": "caf\\u00e9 \\"q\\""}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": false, "error": "café"}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": true}}', '{"ts": "2026-03-01T12:00:01Z"}',
    '{"ts": "2026-03-01T12:00:01Z" , "ok": false}', '{"ts": "2026-03-01T12:00:01Zx", "ok": true}',
    '{"ts": "2026-03-01T12:00:01.5Z", "ok": true}', '{"ts": "2026-02-30T12:00:01Z", "ok": true}',
    '{"ts": "0000-03-01T12:00:01Z", "ok": true}', '{"ts": "2026-03-01T12:00:01Z", "ok": 1}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": false, "error": {"a": [1, 2]}, "version": 2}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": true, "error": "x", "version": "2.0"}',
    '{"ts": "9999-12-31T23:59:59Z", "ok": false}', '{"ts": "\\u0032026-03-01T12:00:01Z", "ok": true}',
    '{"ts": "2026-03-01 12:00:01Z", "ok": true}', '{"ts": "2026-03-01T12:00:01Z", "ok": true, "x": "\udcff"}',
    '{"ts":"2026-03-01T12:00:01Z","ok":false,"error":"compact"}', '{"ts": "2026-03-01T12:00:01Z", "ok": tru}',
    '{"ts": "2026-03-01"12:00:01Z", "ok": true}', '{"ts": "2026-03-01\\12:00:01Z", "ok": true}',
    '{"ts": "2026-03-01x12:00:01Z", "ok": true}', '{"ts": "2026-04-31T12:00:00Z", "ok": true}',
    '{"ts": "2026-03-01T12:00:60Z", "ok": false}',
])


@st.composite
def run_line(draw: st.DrawFn, seconds: int, noise: int, writer: int) -> str:
    """A run (mostly well formed, sometimes not) written the way some writer might: writer 0
    any key order and spacing, 1 json.dumps's (``{"ts": "…``), 2 compact (``{"ts":"…``)."""
    obj: dict[str, Any] = {}
    odd = noise > 0 and draw(st.integers(0, 8 if noise == 1 else 1)) == 0
    ts: Any = _stamp(seconds)
    if odd and draw(st.booleans()):
        ts = draw(st.one_of(ODD_TS, ODD_VALUES))
    ok: Any = draw(st.integers(0, 3)) != 0  # a quarter fail
    if odd and draw(st.booleans()):
        ok = draw(ODD_VALUES)
    error: Any = draw(st.sampled_from([None, "e1", "e2", "e3", ""])) if not ok else None
    if odd and draw(st.booleans()):
        error = draw(ODD_VALUES)
    version: Any = draw(st.sampled_from(["1.0", "1.0", "1.0", "2.0", None]))
    if odd and draw(st.booleans()):
        version = draw(st.sampled_from([1.0, 2, True, [], "missing"]))
    fields = [("ts", ts), ("ok", ok), ("error", error), ("version", version)]
    if writer == 0 or odd and draw(st.booleans()):
        fields = draw(st.permutations(fields))
    for key, value in fields:
        if value != "missing" and not (key == "error" and value is None and draw(st.booleans())):
            obj[key] = value
    separators = [(", ", ": "), (",", ":")]
    text = json.dumps(obj, separators=separators[writer - 1] if writer else draw(
        st.sampled_from(separators)))
    if odd and draw(st.booleans()):
        text = draw(st.sampled_from(["", " ", "\t"])) + text + draw(
            st.sampled_from(["", " ", "\r", "\t \r"]))
    return text


@st.composite
def times(draw: st.DrawFn, n: int) -> list[int]:
    """Run times in seconds from S: random, sorted, or appended in time order with a few late
    writers (a walk through the window's start)."""
    mode = draw(st.integers(0, 2))
    if mode < 2:
        seconds = draw(st.lists(OFFSETS, min_size=n, max_size=n))
        return sorted(seconds) if mode else seconds
    t = draw(st.integers(-2 * n, 2))
    out = []
    for _ in range(n):
        t += draw(st.sampled_from([0, 1, 1, 1, 2, 3]))
        out.append(t - draw(st.sampled_from([0] * 8 + [1, 3])))  # now and then a late writer
    return out


@st.composite
def sources(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(0, 50))
    # 0: only ordinary runs, 1: a few odd lines, 2: many, 3: json.dumps's runs and a few lines
    # written alike but not quite ordinary
    noise = draw(st.integers(0, 3))
    writer = 1 if noise == 3 else draw(st.integers(0, 2))
    out = []
    for sec in draw(times(n)):
        if noise == 3:
            shaped_odd = draw(st.integers(0, 7)) == 0
            out.append(draw(SHAPED_ODD) if shaped_odd else draw(run_line(sec, 0, writer)))
            continue
        kind = draw(st.integers(0, 19 if noise < 2 else 4)) if noise else 9
        if kind == 0:
            out.append(draw(st.one_of(OTHER_LINES, SHAPED_ODD) if writer else OTHER_LINES))
        elif kind == 1:
            out.append("x" * draw(st.integers(1, 250)))  # long garbage (over-long when MAX_LINE is small)
        else:
            out.append(draw(run_line(sec, noise, writer)))
    data = "\n".join(out).encode("utf-8", "surrogateescape")
    if out and draw(st.integers(0, 3)) != 0:
        data += b"\n"
    return data


def check(tmp: Path, data: bytes, since: datetime, version: str | None, block_size: int,
          max_line: int | None, until: datetime | None = None, zone: str = "UTC",
          max_gap: tuple[int, int] | None = None) -> None:
    p = tmp / "runs.jsonl"
    p.write_bytes(data)
    saved = SCAN.MAX_LINE, SCAN.MAX_GAP_LINES, SCAN.MAX_GAP_BYTES
    if max_line is not None:
        SCAN.MAX_LINE = max_line
    if max_gap is not None:
        SCAN.MAX_GAP_LINES, SCAN.MAX_GAP_BYTES = max_gap
    try:
        with local_zone(zone):
            got = read_window(p, since, version=version, block_size=block_size, until=until)
            want = reference_read_window(data, since, version, block_size, SCAN.MAX_LINE, until,
                                         (SCAN.MAX_GAP_LINES, SCAN.MAX_GAP_BYTES))
    finally:
        SCAN.MAX_LINE, SCAN.MAX_GAP_LINES, SCAN.MAX_GAP_BYTES = saved
    assert got == want


SINCES = st.sampled_from([S, S + timedelta(seconds=1), S - timedelta(seconds=2),
                          S.replace(tzinfo=None), S.astimezone(timezone(timedelta(hours=-3))),
                          S - timedelta(days=400), S + timedelta(days=400),
                          datetime.min.replace(tzinfo=UTC), datetime(999, 1, 1, tzinfo=UTC),
                          datetime.max.replace(tzinfo=UTC)])
UNTILS = st.sampled_from([None, None, S + timedelta(minutes=5), S + timedelta(minutes=5) - timedelta(
    microseconds=1), S + timedelta(seconds=2), S, S - timedelta(seconds=1), S + timedelta(days=2),
    (S + timedelta(minutes=5)).replace(tzinfo=None), S.astimezone(timezone(timedelta(hours=14))),
    END, datetime.min.replace(tzinfo=UTC)])


@settings(max_examples=int(os.environ.get("HEALTH_FAST_EXAMPLES", "500")), derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=sources(), since=SINCES, version=st.sampled_from([None, "1.0", "2.0"]),
       block_size=st.integers(1, 300),
       max_line=st.sampled_from([None, None, 20, 60, 90, 200]), until=UNTILS,
       zone=st.sampled_from(ZONES),
       max_gap=st.sampled_from([None, None, (1, 10**9), (3, 10**9), (10**9, 100), (5, 400)]))
def test_read_window_matches_the_line_by_line_reference(
        tmp_path_factory: pytest.TempPathFactory, data: bytes, since: datetime,
        version: str | None, block_size: int, max_line: int | None, until: datetime | None,
        zone: str, max_gap: tuple[int, int] | None) -> None:
    check(tmp_path_factory.getbasetemp(), data, since, version, block_size, max_line, until,
          zone, max_gap)


# -- the cases that broke a block counter before ----------------------------------------------
def _lines(seconds: list[int], ok: bool = True) -> list[str]:
    return [json.dumps({"ts": _stamp(s), "ok": ok or s % 2 == 0, "error": f"e{s % 3}",
                        "version": "1.0"}) for s in seconds]


ODD_LINES = [
    '{"ts": "2026-02-30T00:00:00Z", "ok": true}',  # not a date: unreadable
    '{"ts": "2026-03-01T12:00:01", "ok": false, "error": "naive"}',  # naive: local time
    '{"ts": "2026-03-01T17:00:01+05:00", "ok": false, "error": "offset"}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": false, "error": 5, "version": "2.0"}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": 1}', "[1, 2]", "", "  ", "{not json",
    '{"ts": "2026-03-01T11:00:00Z", "ok": false, "error": "late writer"}',
    '{"ok": true, "ts": "2026-04-31T12:00:00Z"}',  # not a date, though it sorts after `since`
    '{"ts": "2026-03-01T12:00:60Z", "ok": true}', '{"ts": "2026-03-01"12:00:01Z", "ok": true}',
    '{"ts": "2026-03-01T12:00:01Z", "ok": true, "ts": "2000-01-01T00:00:00Z"}',  # the later ts
    '{"ts": "2026-03-01T12:00:01Z", "ok": true, "ts": "2026-03-01T11:00:00Z"}',
    '{"ts": "2026-03-01T12:00:01Zx", "ok": true}',
    '{"ts": "2026-03-01\\12:00:01Z", "ok": true}',  # not JSON, though a stamp to fromisoformat
]


@pytest.mark.parametrize("odd", ODD_LINES)
def test_one_odd_line_anywhere_around_the_boundary(tmp_path: Path, odd: str) -> None:
    base = _lines(list(range(-6, 8)), ok=False)  # the window starts at the 7th line
    for at in range(len(base) + 1):
        lines = base[:at] + [odd] + base[at:]
        for end in ("\n", ""):
            data = ("\n".join(lines) + end).encode()
            for block_size in (1, 5, 17, 40, 64, 79, 80, 81, 100, 128, 160, 199, 250, 333, 4096):
                check(tmp_path, data, S, "1.0" if block_size % 2 else None, block_size, None)


WRITERS = {  # how a writer might put a run: each is counted a block at a time
    "json.dumps": lambda r: json.dumps(r),
    "compact": lambda r: json.dumps(r, separators=(",", ":")),
    "ok first": lambda r: json.dumps({"ok": r["ok"], **r}),
    "fractions": lambda r: json.dumps({**r, "ts": r["ts"][:-1] + ".250Z"}),
}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("block_size", [1, 64, 100, 1000, 4096, 65536])
def test_a_window_of_ordinary_runs_is_counted_in_blocks(tmp_path: Path, block_size: int,
                                                        writer: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [WRITERS[writer](json.loads(ln)) for ln in _lines(list(range(-50, 2000)), ok=False)]
    data = ("\n".join(lines) + "\n").encode()
    made = []
    real_run = health_source._run
    monkeypatch.setattr(health_source, "_run", lambda obj: made.append(1) or real_run(obj))
    for since in (S - timedelta(days=1), S, S + timedelta(seconds=1500)):
        made.clear()
        check(tmp_path, data, since, "1.0", block_size, None)
        if block_size >= 1000 and since < S:
            assert len(made) == 0  # no Run made at all: every block counted at once


def test_many_different_errors_in_a_block(tmp_path: Path) -> None:
    lines = [json.dumps({"ts": _stamp(s), "ok": s % 3 != 0, "error": f"boom {s % 97}"})
             for s in range(-20, 3000)]
    data = ("\n".join(lines) + "\n").encode()
    for block_size in (500, 4096, 65536):
        check(tmp_path, data, S, None, block_size, None)
        check(tmp_path, data, S - timedelta(days=1), "1.0", block_size, None)


def test_a_deeply_nested_line_is_unreadable_not_a_crash(tmp_path) -> None:
    from datetime import UTC, datetime

    from tasks_lib.health.source import read_window

    path = tmp_path / "runs.jsonl"
    good = '{"ts": "2026-03-01T12:00:01Z", "ok": true}\n'
    path.write_text(good + "[" * 100_000 + "\n" + good)
    got = read_window(path, datetime(2026, 3, 1, tzinfo=UTC))
    assert (got.samples, got.unreadable) == (2, 1)
