"""Stable and quarantined versions (docs/design.md, "Health"): the marks live on a task's
``snapshots[]`` records in the registry. ``promote`` marks a version stable; automatic rollback only
ever targets the newest stable, non-quarantined version older than the current one. Also when a
version last became the task's (:func:`version_started_at`), which starts its health window and
names its breaches. Plain Python, no I/O."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tasks_lib.core import ids
from tasks_lib.core.errors import BadInput, Conflict, NotFound
from tasks_lib.core.time import parse as parse_ts


def promoted(entry: dict[str, Any], task_id: str, version: str, *, force: bool = False,
             when: str = "", by: str = "") -> dict[str, Any]:
    """A copy of ``entry`` with ``version``'s snapshot record marked ``"stable": true``.

    NotFound (exit 2) if the task has no snapshot of that version. A quarantined version (one
    rolled back from) is refused (exit 3) unless ``force``, which also lifts the quarantine."""
    version = ids.version(version)
    new = copy.deepcopy(entry)
    records = _records(new)
    mine = [r for r in records if str(r.get("version")) == version]
    if not mine:
        known = ", ".join(str(r.get("version")) for r in records) or "none"
        raise NotFound(f"{task_id} has no snapshot of {version} (snapshots: {known})",
                       f"snapshot it first: clawback snapshot --task {task_id}")
    if any(r.get("quarantined") for r in mine) and not force:
        raise Conflict(f"{task_id} {version} is quarantined (it was rolled back from)",
                       "promote it anyway with --force, which lifts the quarantine")
    for r in mine:
        r.pop("quarantined", None)
    record = mine[-1]
    record["stable"] = True
    if when:
        record["promoted_at"] = when
    if by:
        record["promoted_by"] = by
    return new


def _records(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in entry.get("snapshots") or [] if isinstance(r, dict)]


def quarantined(entry: Mapping[str, Any]) -> set[str]:
    """Versions with a quarantined snapshot record (rolled back from)."""
    return {str(r.get("version")) for r in _records(entry) if r.get("quarantined")}


def is_stable(entry: Mapping[str, Any], version: str) -> bool:
    """Marked stable and not quarantined."""
    return version not in quarantined(entry) and any(
        r.get("stable") and str(r.get("version")) == version for r in _records(entry))


def rollback_target(entry: Mapping[str, Any], current: str) -> str | None:
    """The newest stable, non-quarantined version older than ``current``; None if there is none."""
    now = ids.Version.parse(current)
    bad = quarantined(entry)
    older: list[ids.Version] = []
    for r in _records(entry):
        if not r.get("stable") or str(r.get("version")) in bad:
            continue
        try:
            v = ids.Version.parse(str(r.get("version")))
        except BadInput:  # a malformed record is never a target
            continue
        if v < now:
            older.append(v)
    return str(max(older)) if older else None


def version_started_at(entry: Mapping[str, Any], version: str) -> datetime | None:
    """When ``version`` last became the task's version, from its registry entry: the newest of
    its ``snapshots[]`` ``created_at`` and the ``rolled_back_at`` of every ``rollback_history[]``
    item whose ``to_version`` is it. None when the entry records neither."""
    stamps: list[datetime] = []
    for record in entry.get("snapshots") or []:
        if isinstance(record, Mapping) and str(record.get("version")) == version:
            ts = parse_ts(record.get("created_at"))
            if ts is not None:
                stamps.append(ts)
    for record in entry.get("rollback_history") or []:
        if isinstance(record, Mapping) and str(record.get("to_version")) == version:
            ts = parse_ts(record.get("rolled_back_at"))
            if ts is not None:
                stamps.append(ts)
    return max(stamps, default=None)
