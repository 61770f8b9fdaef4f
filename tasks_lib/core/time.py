"""UTC time as clawback writes and reads it: the one place for "now", the stamp format and its
parser.

Every timestamp clawback writes to disk (the audit log, the registry's ``created_at`` and
``rolled_back_at``, journals, locks, the verdict history, an environment's marker, a task log's
start line) is :data:`STAMP`, UTC to the second with a ``Z``: ``2026-11-29T09:30:00Z``. Names of
files that must sort by time and never collide (an index backup) use :data:`COMPACT`, with
microseconds. A timestamp read back is parsed by :func:`parse`; what a *task* wrote (its health
source) may be naive, and a naive stamp there is the machine's local time
(``naive_is_local=True``; tasks_lib/health/source.py says why).
"""

from __future__ import annotations

from datetime import UTC, datetime

STAMP = "%Y-%m-%dT%H:%M:%SZ"
COMPACT = "%Y%m%dT%H%M%S%fZ"


def now_utc() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def utc(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive datetime is taken to be UTC already."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format(dt: datetime | None = None, pattern: str = STAMP) -> str:
    """``dt`` (now when None) in UTC as ``pattern`` (:data:`STAMP` unless told). A naive ``dt``
    is local time here, as ``datetime.astimezone`` reads it."""
    return (dt or now_utc()).astimezone(UTC).strftime(pattern)


def parse(value: object, *, naive_is_local: bool = False) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime; None if ``value`` is not one (not a
    string, empty, malformed, or out of range once in UTC). A naive stamp is UTC (clawback's own
    records), or the machine's local time with ``naive_is_local`` (what a task wrote)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
        return dt.astimezone(UTC) if naive_is_local else utc(dt)
    except (ValueError, OverflowError, OSError):  # OSError: the C library's localtime refused
        return None
