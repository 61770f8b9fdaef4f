"""Task ids, versions and tags (docs/design.md, "Tags"): validated before they reach git, a path or
a process.

Grammar (ASCII only, anchored with ``\\Z`` so a trailing newline never slips through):

- task id:      ``[A-Za-z0-9_]{1,64}``  e.g. ``T01``
- version:      ``MAJOR.MINOR.PATCH``, no leading zeros; a leading ``v`` is accepted on input;
                or a hotfix version ``1.2.0-hotfix-20260224`` (``-2``, ``-3``… for a repeat the
                same day), ordered after its base and before the base's next patch
                (docs/design.md, "Hotfix releases"; not semver pre-release order)
- version tag:  ``T01-v1.2.0``; a hotfix's version tag is its hotfix tag ``T01-v1.2.0-hotfix-20260224``
- rollback tag: ``T01-v1.2.0-rollback-from-v1.3.0`` then ``…-2``, ``…-3`` on repeats; a hotfix
                left from is written with its repeat always (``…-from-v1.2.0-hotfix-20260224-1``),
                so a trailing ``-N`` after it is always the rollback's own repeat
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Literal

from tasks_lib.core.errors import BadInput

_TASK_ID = re.compile(r"[A-Za-z0-9_]{1,64}\Z", re.ASCII)
_NUM = r"(?:0|[1-9][0-9]{0,8})"
_BASE = rf"{_NUM}\.{_NUM}\.{_NUM}"
_DATE = r"[0-9]{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_REPEAT = r"(?:[2-9]|[1-9][0-9]{1,3})"     # 2..9999: a first release carries no suffix
_VERSION = re.compile(
    rf"({_NUM})\.({_NUM})\.({_NUM})(?:-hotfix-({_DATE})(?:-({_REPEAT}))?)?\Z", re.ASCII)
_TAG = re.compile(
    rf"(?P<task>[A-Za-z0-9_]{{1,64}})-v(?P<version>{_BASE}(?:-hotfix-{_DATE}(?:-{_REPEAT})?)?)"
    rf"(?:-rollback-from-v(?P<from>{_BASE})"
    rf"(?:-hotfix-(?P<from_date>{_DATE})-(?P<from_repeat>[1-9][0-9]{{0,3}}))?"
    rf"(?:-(?P<suffix>{_REPEAT}))?)?\Z",
    re.ASCII,
)

# the same rules as JSON-schema patterns (Prefect's parameter forms validate with them)
TASK_ID_PATTERN = r"^[A-Za-z0-9_]{1,64}$"
VERSION_PATTERN = (r"^v?(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})"
                   r"(-hotfix-[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])"
                   r"(-([2-9]|[1-9][0-9]{1,3}))?)?$")

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
    """A version; a hotfix carries its date (YYYYMMDD as a number) and repeat (1, 2, …), a plain
    version 0 and 0, so the field order is the release order: 1.2.0 < 1.2.0-hotfix-20260224 <
    …-20260224-2 < 1.2.0-hotfix-20260301 < 1.2.1 (docs/design.md, "Hotfix releases")."""

    major: int
    minor: int
    patch: int
    hotfix_date: int = 0
    hotfix_repeat: int = 0

    @classmethod
    def parse(cls, value: str) -> Version:
        text = value[1:] if isinstance(value, str) and value[:1] in ("v", "V") else value
        m = _VERSION.match(text) if isinstance(text, str) else None
        if not m or (m.group(4) and not _real_date(m.group(4))):
            raise BadInput(
                f"invalid version {shown(value)}",
                "versions are MAJOR.MINOR.PATCH, e.g. 1.2.0, or a hotfix such as "
                "1.2.0-hotfix-20260224 (made by `clawback snapshot --hotfix`)",
            )
        date = int(m.group(4) or 0)
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), date,
                   int(m.group(5) or 1) if date else 0)

    @property
    def is_hotfix(self) -> bool:
        return self.hotfix_date != 0

    @property
    def base(self) -> Version:
        """The stable version a hotfix sits on (a plain version is its own base)."""
        return Version(self.major, self.minor, self.patch)

    def hotfix(self, date: str, repeat: int = 1) -> Version:
        """The ``repeat``-th hotfix of this version's base on ``date`` (YYYYMMDD)."""
        if not isinstance(date, str) or not re.fullmatch(_DATE, date, re.ASCII) \
                or not _real_date(date):
            raise BadInput(f"invalid hotfix date {shown(date)}", "use YYYYMMDD, e.g. 20260224")
        if not isinstance(repeat, int) or not 1 <= repeat <= 9999:
            raise BadInput(f"invalid hotfix repeat {shown(repeat)}", "a repeat is 1 to 9999")
        return Version(self.major, self.minor, self.patch, int(date), repeat)

    def bump(self, part: str) -> Version:
        """The next version; a hotfix bumps its base (1.2.0-hotfix-20260224 -> 1.2.1)."""
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise BadInput(f"invalid bump {shown(part)}", "use --bump patch, minor or major")

    def explicit(self) -> str:
        """As written inside a rollback tag: a hotfix always with its repeat (``-1`` too)."""
        return f"{self}-1" if self.is_hotfix and self.hotfix_repeat == 1 else str(self)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.is_hotfix:
            text += f"-hotfix-{self.hotfix_date:08d}"
            if self.hotfix_repeat > 1:
                text += f"-{self.hotfix_repeat}"
        return text


def _real_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


def version(value: str) -> str:
    """Validate and normalise a version string ('v1.2.0' -> '1.2.0')."""
    return str(Version.parse(value))


def valid_version(value: object) -> bool:
    try:
        Version.parse(value)  # type: ignore[arg-type]
    except BadInput:
        return False
    return True


def is_hotfix(value: str) -> bool:
    """Is ``value`` a valid hotfix version id (``1.2.0-hotfix-20260224``)?"""
    try:
        return Version.parse(value).is_hotfix
    except BadInput:
        return False


def version_tag(task: str, ver: str) -> str:
    """``T01-v1.2.0``; for a hotfix version its hotfix tag ``T01-v1.2.0-hotfix-20260224``."""
    return f"{task_id(task)}-v{version(ver)}"


def rollback_tag(task: str, to_ver: str, from_ver: str, repeat: int = 1) -> str:
    """A hotfix left from is written with its repeat (:meth:`Version.explicit`): otherwise
    ``…-from-v1.2.0-hotfix-20260224-2`` could be hotfix 2 or this pair's second rollback."""
    base = (f"{task_id(task)}-v{version(to_ver)}"
            f"-rollback-from-v{Version.parse(from_ver).explicit()}")
    return base if repeat <= 1 else f"{base}-{repeat}"


def hotfix_tag(task: str, ver: str, date: str, repeat: int = 1) -> str:
    """``T01-v1.2.0-hotfix-20260224`` (``-2``, ``-3``… for a repeat the same day): the version
    tag of the hotfix of ``ver``'s base on ``date`` (``snapshot --hotfix``). Every part is
    validated (BadInput) before the name reaches git."""
    return version_tag(task, str(Version.parse(ver).hotfix(date, repeat)))


TagKind = Literal["version", "rollback", "hotfix"]


@dataclass(frozen=True)
class Tag:
    name: str
    task: str
    version: str                    # the version (a hotfix's full id); a rollback's target
    kind: TagKind
    from_version: str | None = None  # a rollback's version left, canonical (no ``-1``)
    date: str | None = None          # a hotfix's date
    repeat: int = 1                  # a hotfix's repeat that day; a rollback's repeat of the pair
    base: str = ""                   # the version a hotfix sits on (the version itself otherwise)

    @property
    def carries_manifest(self) -> bool:
        """A version tag (plain or hotfix): annotated with its snapshot manifest."""
        return self.kind != "rollback"


def parse_tag(name: str) -> Tag | None:
    """Parse a clawback tag name; None for anything else (foreign tags are ignored, not errors)."""
    m = _TAG.match(name) if isinstance(name, str) else None
    if not m:
        return None
    try:
        ver = Version.parse(m.group("version"))
        left = (Version.parse(m.group("from")) if m.group("from") else None)
        if left is not None and m.group("from_date"):
            left = left.hotfix(m.group("from_date"), int(m.group("from_repeat")))
    except BadInput:  # a date that is no calendar day
        return None
    kind: TagKind = "rollback" if left is not None else "hotfix" if ver.is_hotfix else "version"
    return Tag(
        name=name,
        task=m.group("task"),
        version=str(ver),
        kind=kind,
        from_version=str(left) if left is not None else None,
        date=f"{ver.hotfix_date:08d}" if kind == "hotfix" else None,
        repeat=(int(m.group("suffix") or 1) if kind == "rollback"
                else ver.hotfix_repeat if kind == "hotfix" else 1),
        base=str(ver.base),
    )


def safe_relative_path(path: object) -> bool:
    """A registry-supplied path that stays inside its base: relative, no ``..``, no leading ``-``
    (never mistaken for an option), no NUL or backslash, not inside ``.git``."""
    if not isinstance(path, str) or not path or "\0" in path or "\\" in path or path.startswith("-"):
        return False
    p = PurePosixPath(path)
    return not p.is_absolute() and ".." not in p.parts and p.parts[:1] != (".git",)
