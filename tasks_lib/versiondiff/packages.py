"""Dependencies compared: the two exact locks, the interpreter, the environment variable names.

A version's lock is its manifest's ``python_packages`` (``name==version``, PEP 503 names);
packages are added, removed, upgraded or downgraded (``packaging.version``), or ``changed`` when
a side is no plain version (``name @ url``). The live tree has no lock until it is snapshotted:
when its ``requirements.txt`` is byte for byte the version's, the lock is that version's (the
same requirements resolve to the same set; an interpreter change is reported beside it);
otherwise the changed requirement lines are listed and the exact lock is known after
``clawback snapshot`` (resolving here would need the package index, and seconds).
docs/design.md, "Diff".
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks_lib.deps.lockfile import normalize
from tasks_lib.secrets.values import mask_credentials
from tasks_lib.versiondiff.textdiff import visible


@dataclass(frozen=True)
class PackageChange:
    name: str
    change: str            # added | removed | upgraded | downgraded | changed
    old: str | None
    new: str | None


@dataclass(frozen=True)
class DependencyDiff:
    exact: bool                                  # both locks known
    packages: tuple[PackageChange, ...] = ()
    requirements_added: tuple[str, ...] = ()     # when not exact: requirements.txt lines
    requirements_removed: tuple[str, ...] = ()
    python: tuple[str, str] | None = None        # (old, new) when it changed
    env_added: tuple[str, ...] = ()
    env_removed: tuple[str, ...] = ()
    note: str = ""

    @property
    def empty(self) -> bool:
        return not (self.packages or self.requirements_added or self.requirements_removed
                    or self.python or self.env_added or self.env_removed)


def _pins(packages: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in packages:
        name, sep, ver = entry.partition("==")
        if not sep:
            name, _, ver = entry.partition(" @ ")
        found[normalize(name.strip())] = ver.strip()
    return found


def _kind(old: str, new: str) -> str:
    from packaging.version import InvalidVersion, Version  # only when a pin changed: ~5 ms

    try:
        a, b = Version(old), Version(new)
    except InvalidVersion:
        return "changed"
    return "upgraded" if b > a else "downgraded" if b < a else "changed"


def compare_locks(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[PackageChange, ...]:
    a, b = _pins(old), _pins(new)
    out = [PackageChange(n, "added", None, mask_credentials(b[n])) for n in sorted(b) if n not in a]
    out += [PackageChange(n, "removed", mask_credentials(a[n]), None) for n in sorted(a) if n not in b]
    out += [PackageChange(n, _kind(a[n], b[n]), mask_credentials(a[n]), mask_credentials(b[n]))
            for n in sorted(a) if n in b and a[n] != b[n]]
    return tuple(sorted(out, key=lambda c: c.name))


def requirement_lines(data: bytes | None) -> list[str]:
    """A requirements file's meaningful lines (comments and blanks dropped), as shown."""
    if data is None:
        return []
    text = data.decode("utf-8", "replace")
    kept = [line.split(" #", 1)[0].strip() for line in text.splitlines()]
    return [mask_credentials(visible(line)) for line in kept if line and not line.startswith("#")]


def compare(old_packages: tuple[str, ...] | None, new_packages: tuple[str, ...] | None,
            old_requirements: bytes | None, new_requirements: bytes | None, *,
            locked_label: str, python: tuple[str, str], env: tuple[tuple[str, ...] | None,
                                                              tuple[str, ...] | None]) -> DependencyDiff:
    """``*_packages`` None: that side has no lock yet (working); ``locked_label``: the version
    whose lock stands in for it when the requirements are the same."""
    py = python if python[0] != python[1] else None
    old_env, new_env = env
    env_added = tuple(sorted(set(new_env or ()) - set(old_env or ()))) if None not in env else ()
    env_removed = tuple(sorted(set(old_env or ()) - set(new_env or ()))) if None not in env else ()
    note = "" if None not in env else "environment variable names unknown: a config does not parse"
    if old_packages is not None and new_packages is not None:
        return DependencyDiff(True, compare_locks(old_packages, new_packages), python=py,
                              env_added=env_added, env_removed=env_removed, note=note)
    if old_requirements == new_requirements:
        same = (f"requirements.txt is the same as {locked_label}'s: the lock is {locked_label}'s"
                + (" (resolved again for the other interpreter at the next snapshot)" if py else ""))
        return DependencyDiff(True, python=py, env_added=env_added, env_removed=env_removed,
                              note="; ".join(filter(None, [same, note])))
    a, b = requirement_lines(old_requirements), requirement_lines(new_requirements)
    later = "requirements.txt changed: the exact lock is known after `clawback snapshot`"
    return DependencyDiff(False, requirements_added=tuple(x for x in b if x not in a),
                          requirements_removed=tuple(x for x in a if x not in b), python=py,
                          env_added=env_added, env_removed=env_removed,
                          note="; ".join(filter(None, [later, note])))
