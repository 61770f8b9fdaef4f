"""Which version a hotfix release gets (docs/design.md, "Hotfix releases"): the checks of
``snapshot --hotfix [--base V]`` before anything changes, and the hotfix id.

A hotfix is a version like any other (``1.2.0-hotfix-20260224``, its version tag the hotfix tag),
so the snapshot steps (tasks_lib/snapshot.py) make it; this module only decides its name and
refuses what would not be "the fixed code on top of a stable version": a base that is not a
tagged, stable, non-quarantined version of the task, or a working tree that is not on that base
(the current version is neither the base nor one of its hotfixes). Plain Python, no Prefect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks_lib.core import ids
from tasks_lib.core import time as clock
from tasks_lib.core.errors import BadInput, Conflict, NotFound
from tasks_lib.gitops.repo import Git
from tasks_lib.health import stable


@dataclass(frozen=True)
class HotfixName:
    version: str   # 1.2.0-hotfix-20260224[-N]
    base: str      # 1.2.0


def stable_versions(entry: Mapping[str, Any]) -> list[str]:
    """The task's stable, non-quarantined plain versions, oldest first: the possible bases."""
    found = set()
    for r in entry.get("snapshots") or []:
        if not isinstance(r, Mapping):
            continue
        v = str(r.get("version"))
        if ids.valid_version(v) and not ids.Version.parse(v).is_hotfix and stable.is_stable(entry, v):
            found.add(v)
    return sorted(found, key=ids.Version.parse)


def choose_base(git: Git, task_id: str, entry: Mapping[str, Any], current: str | None,
                base: str | None) -> str:
    """The base of a new hotfix: ``base`` (validated), else the current version's base. It must
    be a tagged version of the task marked stable and not quarantined, and the current version
    must be it or one of its hotfixes (the working tree is the fix *on top of* it)."""
    if base is not None:
        wanted = ids.Version.parse(base)  # BadInput (exit 2) for a hostile or malformed value
        if wanted.is_hotfix:
            raise BadInput(f"--base {wanted} is a hotfix, not a stable version",
                           f"a hotfix sits on a stable version: pass --base {wanted.base}")
    elif current is None:
        raise BadInput(f"task {task_id} has no valid current version to make a hotfix of",
                       "pass --base X.Y.Z, a stable version of the task")
    else:
        wanted = ids.Version.parse(current).base
    name = str(wanted)
    choices = ", ".join(stable_versions(entry)) or "none"
    if git.tag_info(ids.version_tag(task_id, name)) is None:
        raise NotFound(f"{task_id} has no snapshot {ids.version_tag(task_id, name)} to make a "
                       f"hotfix of", f"stable versions of {task_id}: {choices}")
    if name in stable.quarantined(entry):
        raise Conflict(f"{task_id} {name} is quarantined (it was rolled back from): a hotfix "
                       f"sits on a stable version", f"stable versions of {task_id}: {choices}")
    if not stable.is_stable(entry, name):
        raise Conflict(f"{task_id} {name} is not marked stable: a hotfix sits on a stable version",
                       f"stable versions of {task_id}: {choices}; or mark it stable first: "
                       f"clawback promote --task {task_id} --version {name}")
    if current is None or ids.Version.parse(current).base != wanted:
        raise Conflict(
            f"{task_id} is at {current}, not at {name} or a hotfix of it: its working tree is not "
            f"{name}'s code with a fix on top",
            f"roll back to the base first (clawback rollback --task {task_id} --to {name}), fix "
            f"the code, then run clawback snapshot --task {task_id} --hotfix")
    return name


def next_hotfix(git: Git, task_id: str, base: str, current: str | None,
                date: str | None = None) -> HotfixName:
    """The next free hotfix id of ``base`` on ``date`` (default: today, UTC): one past the
    highest repeat already tagged that day (tags are immutable, never reused). Refused (exit 3)
    when it would sort before the current version (a hotfix dated later exists: a clock behind)."""
    day = date or clock.format(clock.now_utc(), "%Y%m%d")
    first = ids.Version.parse(base).hotfix(day)
    taken = [t.repeat for t in (ids.parse_tag(i.name) for i in
                                git.tags(f"refs/tags/{ids.version_tag(task_id, str(first))}*"))
             if t is not None and t.kind == "hotfix" and t.task == task_id
             and ids.Version.parse(t.version).hotfix_date == first.hotfix_date
             and t.base == base]
    new = ids.Version.parse(base).hotfix(day, max(taken, default=0) + 1)
    if current is not None and new <= ids.Version.parse(current):
        raise Conflict(f"the new hotfix {new} would not be newer than {task_id}'s current "
                       f"version {current}", "check the machine's clock (hotfixes are dated "
                       "in UTC), then retry")
    return HotfixName(str(new), base)
