"""tasks_lib/core/time.py: the one stamp format clawback writes and the parser that reads it."""

from __future__ import annotations

import time as systime
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tasks_lib.core import time as clock


def test_the_stamp_written_to_disk_is_utc_to_the_second_with_z():
    dt = datetime(2026, 11, 29, 17, 30, 5, 123456, tzinfo=timezone(timedelta(hours=8)))
    assert clock.format(dt) == "2026-11-29T09:30:05Z"
    assert clock.format(dt, clock.COMPACT) == "20261129T093005123456Z"


def test_now_is_aware_utc_and_format_defaults_to_now():
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = clock.format()
    assert clock.now_utc().tzinfo is UTC
    assert before <= clock.parse(stamp) <= datetime.now(UTC)


def test_parse_reads_back_what_format_wrote():
    dt = datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
    assert clock.parse(clock.format(dt)) == dt
    assert clock.parse(" 2026-11-29T17:30:00+08:00 ") == dt


@pytest.mark.parametrize("bad", [None, "", 5, "yesterday", "2026-13-01T00:00:00Z",
                                 "0001-01-01T00:00:00+01:00"])
def test_parse_refuses_what_is_no_timestamp(bad: object):
    assert clock.parse(bad) is None


def test_a_naive_stamp_is_utc_unless_told_it_is_local(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    systime.tzset()
    try:
        assert clock.parse("2026-11-29T09:30:00") == datetime(2026, 11, 29, 9, 30, tzinfo=UTC)
        assert clock.parse("2026-11-29T09:30:00", naive_is_local=True) == datetime(
            2026, 11, 29, 1, 30, tzinfo=UTC)
    finally:
        monkeypatch.delenv("TZ")
        systime.tzset()
