"""Which files of a task are runtime state: never snapshotted, never restored, never deleted.

The rules are .gitignore patterns relative to the task directory (``state/`` a directory of that
name at any depth, ``*.csv`` a file name anywhere, ``/cache/`` anchored, ``**``, ``!`` negation,
``\\`` escapes), matched by pathspec's ``GitIgnoreSpec``. What is in force for one version
(:meth:`StatePaths.of`) is, in this order:

1. the defaults (``DEFAULT_STATE_PATHS``),
2. the version's own ``clawback.state_paths`` (an explicit ``!universe.csv`` there may version a
   file a default would treat as state: the operator said so for that version),
3. every file the version's settings name inside the task directory: ``run.pidfile`` and the
   health source (literal, anchored, never negated).

An operation that involves two versions (a rollback: the current one and the target) treats a
path as state when **either** version does (:meth:`StatePaths.union`), so nothing one of them
keeps as state is ever deleted or overwritten. A rollback records the rules of the version it
leaves that the target lacks (``rollback_history[].state_kept``), and they stay in force for the
task afterwards (:meth:`of` ``kept``): the data ``cache/`` held under 1.1.0 stays state after a
rollback to 1.0.0, is never committed by a later snapshot and never reported as an extra file.
docs/design.md ("Runtime state") states this.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pathspec
from pathspec.patterns.gitwildmatch import GitWildMatchPatternError

from tasks_lib.core.errors import MalformedFile

DEFAULT_STATE_PATHS: tuple[str, ...] = (
    "state/", "output/", "data/", "logs/", "backups/",
    "*.db", "*.sqlite", "*.csv", "*.jsonl", "*.log",
)
PREFECT_SOURCE = "prefect"  # health.source naming Prefect flow-run states, not a file


def literal(rel: str) -> str:
    """A gitignore pattern matching exactly the file ``rel`` (relative to the task directory;
    ``./status/x`` and ``status//x`` are ``status/x``)."""
    rel = "/".join(p for p in rel.split("/") if p not in ("", "."))
    escaped = "".join("\\" + c if c in "\\*?[]" else c for c in rel)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "/" + escaped


@functools.lru_cache(maxsize=4096)
def valid_pattern(pattern: str) -> bool:
    """Can git's syntax read ``pattern``? (Cached: every task's settings check the defaults.)"""
    try:
        pathspec.GitIgnoreSpec.from_lines([pattern])
    except (GitWildMatchPatternError, ValueError, re.error, RecursionError):
        return False
    return True


@dataclass(frozen=True)
class StatePaths:
    """One or more sets of gitignore patterns; a path is state when any set matches it."""

    sets: tuple[tuple[str, ...], ...] = (DEFAULT_STATE_PATHS,)
    _specs: tuple[pathspec.GitIgnoreSpec, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bad = [p for s in self.sets for p in s if not valid_pattern(p)]
        if bad:  # settings refuse these; a manifest or journal holding one was edited
            raise MalformedFile(f"state path pattern {bad[0]!r} cannot be read",
                                "fix it in clawback.state_paths (gitignore syntax)")
        object.__setattr__(self, "_specs",
                           tuple(pathspec.GitIgnoreSpec.from_lines(s) for s in self.sets))

    @classmethod
    def of(cls, patterns: Iterable[str] = (), named: Iterable[str | None] = (),
           kept: Iterable[str] = ()) -> StatePaths:
        """One version's rules: the defaults, its own patterns, the patterns kept from versions
        it was rolled back from (positive only, after its own: never negated by them), then its
        named files."""
        own = [p for p in patterns if p not in DEFAULT_STATE_PATHS]
        carried = [p for p in kept if not p.startswith("!")]
        files = [literal(n) for n in named if n]
        return cls((tuple(dict.fromkeys([*DEFAULT_STATE_PATHS, *own, *carried, *files])),))

    @classmethod
    def recorded(cls, state_paths: Iterable[str], runtime: Mapping[str, Any]) -> StatePaths:
        """The rules of a snapshot: its recorded patterns (older manifests recorded the settings'
        list only, so the defaults and the files its runtime settings name are added)."""
        return cls.of(state_paths, named_files(runtime))

    @property
    def patterns(self) -> tuple[str, ...]:
        """The first set's patterns (one version's rules, as a snapshot records them)."""
        return self.sets[0]

    def flattened(self) -> StatePaths:
        """One set holding at least what this union treats as state: the first set, then the
        positive patterns of the others (after it, so its negations never cancel them). What a
        snapshot records, so its manifest and its verification agree on one list."""
        first = list(self.sets[0])
        for other in self.sets[1:]:
            first += [p for p in other if not p.startswith("!") and p not in first]
        return StatePaths((tuple(first),))

    def union(self, *others: StatePaths) -> StatePaths:
        sets = list(self.sets)
        for other in others:
            sets += [s for s in other.sets if s not in sets]
        return StatePaths(tuple(sets))

    def matches(self, rel: str) -> bool:
        """Is ``rel`` (posix, relative to the task directory) runtime state? A path also counts
        as the directory of its name: a symlink ``data -> /mnt/disk`` is the state directory
        ``data/`` (git itself would version it as a file)."""
        rel = rel.rstrip("/")
        return any(spec.match_file(rel) or spec.match_file(rel + "/") for spec in self._specs)


def named_files(runtime: Mapping[str, Any]) -> tuple[str, ...]:
    """The files inside the task directory that run / health settings name (a snapshot's
    ``runtime`` or ``TaskSettings.as_dict()``): the pidfile and a file health source."""
    run = runtime.get("run") or {}
    health = runtime.get("health") or {}
    found = [run.get("pidfile") if isinstance(run, Mapping) else None,
             health.get("source") if isinstance(health, Mapping) else None]
    return tuple(f for f in found if isinstance(f, str) and f and f != PREFECT_SOURCE)
