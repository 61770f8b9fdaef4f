"""Task ids, versions and tags (docs/design.md, "Tags"): validated before they reach git, a path or
a process.

Grammar (ASCII only, anchored with ``\\Z`` so a trailing newline never slips through):

- task id:      ``[A-Za-z0-9_]{1,64}``  e.g. ``T01``
- version:      ``MAJOR.MINOR.PATCH``, no leading zeros; a leading ``v`` is accepted on input
- version tag:  ``T01-v1.2.0``
- rollback tag: ``T01-v1.2.0-rollback-from-v1.3.0`` then ``…-2``, ``…-3`` on repeats
- hotfix tag:   ``T01-v1.2.0-hotfix-20260224`` then ``…-2`` on repeats
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from tasks_lib.core.errors import BadInput

_TASK_ID = re.compile(r"[A-Za-z0-9_]{1,64}\Z", re.ASCII)
_NUM = r"(?:0|[1-9][0-9]{0,8})"
_VERSION = re.compile(rf"({_NUM})\.({_NUM})\.({_NUM})\Z", re.ASCII)
_TAG = re.compile(
    rf"(?P<task>[A-Za-z0-9_]{{1,64}})-v(?P<version>{_NUM}\.{_NUM}\.{_NUM})"
    rf"(?:-rollback-from-v(?P<from>{_NUM}\.{_NUM}\.{_NUM})"
    r"|-hotfix-(?P<date>[0-9]{8}))?"
    r"(?:-(?P<suffix>[2-9]|[1-9][0-9]{1,3}))?\Z",
    re.ASCII,
)

# the same rules as JSON-schema patterns (Prefect's parameter forms validate with them)
TASK_ID_PATTERN = r"^[A-Za-z0-9_]{1,64}$"
VERSION_PATTERN = r"^v?(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$"

Bump = Literal["patch", "minor", "major"]
BUMPS: tuple[str, ...] = ("patch", "minor", "major")


def shown(value: object) -> str:
    """A hostile value, quoted and cut, safe to print."""
    text = repr(str(value))
    return text if len(text) <= 60 else text[:57] + "...'"


def valid_task_id(value: object) -> bool:
    return isinstance(value, str) and bool(_TASK_ID.match(value))


def task_id(value: str) -> str:
    """Validate a task id (letters, digits, underscore)."""
    if not isinstance(value, str) or not _TASK_ID.match(value):
        raise BadInput(
            f"invalid task id {shown(value)}",
            "task ids are letters, digits and '_' only (e.g. T01); run `clawback status` to list tasks",
        )
    return value


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, value: str) -> Version:
        text = value[1:] if isinstance(value, str) and value[:1] in ("v", "V") else value
        m = _VERSION.match(text) if isinstance(text, str) else None
        if not m:
            raise BadInput(
                f"invalid version {shown(value)}",
                "versions are MAJOR.MINOR.PATCH, e.g. 1.2.0",
            )
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))

    def bump(self, part: str) -> Version:
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise BadInput(f"invalid bump {shown(part)}", "use --bump patch, minor or major")

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def version(value: str) -> str:
    """Validate and normalise a version string ('v1.2.0' -> '1.2.0')."""
    return str(Version.parse(value))


def version_tag(task: str, ver: str) -> str:
    return f"{task_id(task)}-v{version(ver)}"


def rollback_tag(task: str, to_ver: str, from_ver: str, repeat: int = 1) -> str:
    base = f"{task_id(task)}-v{version(to_ver)}-rollback-from-v{version(from_ver)}"
    return base if repeat <= 1 else f"{base}-{repeat}"


def hotfix_tag(task: str, ver: str, date: str, repeat: int = 1) -> str:
    """``T01-v1.2.0-hotfix-20260224`` (``-2``, ``-3``… for a repeat the same day): the tag of a
    hotfix release on top of a stable version (``snapshot --hotfix``, not built yet;
    :func:`parse_tag` already reads these tags). Kept for those releases: the task id, version
    and YYYYMMDD date are validated (BadInput) before the name reaches git."""
    if not re.fullmatch(r"[0-9]{8}", date, re.ASCII):
        raise BadInput(f"invalid hotfix date {shown(date)}", "use YYYYMMDD, e.g. 20260224")
    base = f"{task_id(task)}-v{version(ver)}-hotfix-{date}"
    return base if repeat <= 1 else f"{base}-{repeat}"


TagKind = Literal["version", "rollback", "hotfix"]


@dataclass(frozen=True)
class Tag:
    name: str
    task: str
    version: str
    kind: TagKind
    from_version: str | None = None
    date: str | None = None
    repeat: int = 1


def parse_tag(name: str) -> Tag | None:
    """Parse a clawback tag name; None for anything else (foreign tags are ignored, not errors)."""
    m = _TAG.match(name) if isinstance(name, str) else None
    if not m:
        return None
    kind: TagKind = "rollback" if m.group("from") else "hotfix" if m.group("date") else "version"
    if kind == "version" and m.group("suffix"):
        return None  # plain version tags never carry a repeat suffix
    return Tag(
        name=name,
        task=m.group("task"),
        version=m.group("version"),
        kind=kind,
        from_version=m.group("from"),
        date=m.group("date"),
        repeat=int(m.group("suffix") or 1),
    )


def safe_relative_path(path: object) -> bool:
    """A registry-supplied path that stays inside its base: relative, no ``..``, no leading ``-``
    (never mistaken for an option), no NUL or backslash, not inside ``.git``."""
    if not isinstance(path, str) or not path or "\0" in path or "\\" in path or path.startswith("-"):
        return False
    p = PurePosixPath(path)
    return not p.is_absolute() and ".." not in p.parts and p.parts[:1] != (".git",)
