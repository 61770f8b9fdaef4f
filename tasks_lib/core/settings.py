"""Per-task settings (docs/design.md, "Workspace model"): the optional ``clawback`` key of a
registry entry, with defaults.

Which files are runtime state follows from ``state_paths`` and the files the settings name
(tasks_lib/runtime/statepaths.py).
"""

from __future__ import annotations

import re
import re._constants as _const
import re._parser as _sre
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from tasks_lib.core import ids
from tasks_lib.core.errors import BadInput
from tasks_lib.runtime.statepaths import (
    DEFAULT_STATE_PATHS,
    PREFECT_SOURCE,
    StatePaths,
    valid_pattern,
)
from tasks_lib.secrets.shapes import refuse_credentials_as_names

RunType = Literal["process", "systemd", "command", "none"]
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z", re.ASCII)
_UNIT = re.compile(r"[A-Za-z0-9@._:\\-]+\Z", re.ASCII)


@dataclass(frozen=True)
class RunSettings:
    type: RunType = "process"
    command: tuple[str, ...] | None = None
    pidfile: str | None = None
    unit: str | None = None
    start: tuple[str, ...] | None = None
    stop: tuple[str, ...] | None = None


@dataclass(frozen=True)
class HealthSettings:
    source: str = "logs/runs.jsonl"
    window_minutes: int = 60
    min_samples: int = 10
    threshold: float = 0.1
    # a log file instead of JSON lines (either set): a line matching total_pattern (default:
    # any line with a leading timestamp) is a run, failed if it matches error_pattern
    error_pattern: str | None = None
    total_pattern: str | None = None
    # source "prefect" (PREFECT_SOURCE): the terminal states of the runs of the Prefect flow
    # named ``flow`` (required then), only runs carrying every tag in ``tags`` (None: any run)
    flow: str | None = None
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TaskSettings:
    run: RunSettings = field(default_factory=RunSettings)
    python: str = "venv"  # "venv" | "none" | a path to an interpreter
    smoke: tuple[str, ...] | str | None = None
    smoke_timeout_s: float = 60
    health: HealthSettings = field(default_factory=HealthSettings)
    environment_variables: tuple[str, ...] = ()
    state_paths: tuple[str, ...] = DEFAULT_STATE_PATHS
    # promote a version stable after this many healthy checks in a row (None: the health run's
    # promote_after decides); a policy, not how the task runs: not in as_dict, not in manifests
    stable_after: int | None = None

    @cached_property
    def state(self) -> StatePaths:
        """The runtime-state rules in force for this version (defaults, patterns, named files)."""
        return StatePaths.of(self.state_paths, (self.run.pidfile, self.health.source))

    def is_state(self, rel: str) -> bool:
        """Is ``rel`` (posix, relative to the task directory) runtime state?"""
        return self.state.matches(rel)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": {k: (list(v) if isinstance(v, tuple) else v)
                    for k, v in self.run.__dict__.items() if v is not None},
            "python": self.python,
            "smoke": list(self.smoke) if isinstance(self.smoke, tuple) else self.smoke,
            "smoke_timeout_s": self.smoke_timeout_s,
            "health": {k: v for k, v in self.health.__dict__.items() if v is not None},
            "environment_variables": list(self.environment_variables),
            "state_paths": list(self.state_paths),
        }


def _anchored(pattern: str) -> str:
    """``./cache/`` -> ``/cache/`` (``!./x`` -> ``!/x``): a leading ``./`` names the task
    directory, which gitignore syntax spells as a leading ``/``."""
    neg = "!" if pattern.startswith("!") else ""
    body = pattern[len(neg):]
    while body.startswith("./"):
        body = "/" + body[2:].lstrip("/")
    return neg + body


def _where(task_id: str, key: str) -> str:
    return f"task_registry.json: task {task_id}: clawback.{key}"


def _argv(value: Any, task_id: str, key: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
        return tuple(value)
    raise BadInput(f"{_where(task_id, key)} must be a non-empty list of strings (an argv)",
                   'write it as a list, e.g. ["python", "main.py"]; no shell is used')


def _rel(value: Any, task_id: str, key: str) -> str | None:
    if value is None:
        return None
    if not ids.safe_relative_path(value):
        raise BadInput(f"{_where(task_id, key)} must be a path inside the task directory",
                       "use a relative path such as logs/runs.jsonl")
    return value


def _number(value: Any, task_id: str, key: str, lo: float, hi: float, integer: bool = False) -> Any:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi
    if ok and integer and not isinstance(value, int):
        ok = False
    if not ok:
        kind = "an integer" if integer else "a number"
        raise BadInput(f"{_where(task_id, key)} must be {kind} between {lo} and {hi}",
                       "fix the value in task_registry.json or remove it to use the default")
    return value


def _pattern(value: Any, task_id: str, key: str) -> str | None:
    if value is None:
        return None
    try:
        ok = isinstance(value, str) and bool(value) and len(value) <= 2000 and \
            re.compile(value) is not None
        risky = ok and _backtracks(_sre.parse(value))
    except (re.error, RecursionError, OverflowError):
        ok, risky = False, False
    if not ok:
        raise BadInput(f"{_where(task_id, key)} must be a regular expression",
                       'e.g. "ERROR|Traceback" (Python re syntax, searched in each line)')
    if risky:  # (a+)+ takes exponential time on one unlucky line, and re has no timeout
        raise BadInput(f"{_where(task_id, key)} repeats a group that itself repeats or "
                       "alternates, which can take hours on one log line",
                       "write it without nesting repeats, e.g. ERROR.* instead of (ERROR.*)+ ; "
                       "a possessive repeat (x++) or an atomic group (?>...) is fine")
    return value


_REPEATS = (_const.MAX_REPEAT, _const.MIN_REPEAT)


def _backtracks(items: Any, in_repeat: bool = False) -> bool:
    """Does the parsed pattern repeat a group holding a repeat or an alternation (the shapes
    that backtrack exponentially)? Possessive repeats and atomic groups never backtrack."""
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            many = high == _const.MAXREPEAT or high > 1
            if in_repeat and many or _backtracks(sub, in_repeat or many):
                return True
        elif op is _const.BRANCH:
            if in_repeat and len(av[1]) > 1 or any(_backtracks(a, in_repeat) for a in av[1]):
                return True
        elif op is _const.SUBPATTERN:
            if _backtracks(av[-1], in_repeat):
                return True
        elif op in (_const.ASSERT, _const.ASSERT_NOT):
            if _backtracks(av[1], in_repeat):
                return True
    return False


_PREFECT_EXAMPLE = '"health": {"source": "prefect", "flow": "t01-daily", "tags": ["t01"]}'


def _flow_name(value: Any, task_id: str, prefect: bool) -> str | None:
    if not prefect:
        if value is not None:
            raise BadInput(f'{_where(task_id, "health.flow")} applies only to source "prefect"',
                           f"remove it, or read flow run states: {_PREFECT_EXAMPLE}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f'{_where(task_id, "health.flow")} is required for source "prefect": '
                       "the name of the Prefect flow whose runs are the task's runs",
                       f"e.g. {_PREFECT_EXAMPLE}")
    return value.strip()


def _tags(value: Any, task_id: str, prefect: bool) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not prefect:
        raise BadInput(f'{_where(task_id, "health.tags")} applies only to source "prefect"',
                       f"remove it, or read flow run states: {_PREFECT_EXAMPLE}")
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise BadInput(f"{_where(task_id, 'health.tags')} must be a list of tag names",
                       'e.g. "tags": ["t01", "production"] (a run must carry all of them)')
    return tuple(dict.fromkeys(value)) or None


def parse(task_id: str, raw: Any) -> TaskSettings:
    """Settings from a registry entry's ``clawback`` value (None or absent: all defaults)."""
    if raw is None:
        return TaskSettings()
    if not isinstance(raw, dict):
        raise BadInput(f"{_where(task_id, '')[:-1]} must be an object",
                       "see docs/design.md, Workspace model (per-task settings)")
    known = {"run", "python", "smoke", "smoke_timeout_s", "health", "environment_variables",
             "state_paths", "stable_after"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise BadInput(f"{_where(task_id, unknown[0])} is not a known setting",
                       f"known settings: {', '.join(sorted(known))}")
    run_raw = raw.get("run") or {}
    if not isinstance(run_raw, dict):
        raise BadInput(f"{_where(task_id, 'run')} must be an object", 'e.g. {"type": "process"}')
    rtype = run_raw.get("type", "process")
    if rtype not in ("process", "systemd", "command", "none"):
        raise BadInput(f"{_where(task_id, 'run.type')} must be process, systemd, command or none",
                       "fix run.type in task_registry.json")
    unit = run_raw.get("unit")
    if rtype == "systemd" and not (isinstance(unit, str) and _UNIT.match(unit)):
        raise BadInput(f"{_where(task_id, 'run.unit')} must name a systemd unit", 'e.g. "t01.service"')
    run = RunSettings(
        type=rtype,
        command=_argv(run_raw.get("command"), task_id, "run.command"),
        pidfile=_rel(run_raw.get("pidfile"), task_id, "run.pidfile"),
        unit=unit if rtype == "systemd" else None,
        start=_argv(run_raw.get("start"), task_id, "run.start"),
        stop=_argv(run_raw.get("stop"), task_id, "run.stop"),
    )
    if rtype == "command" and run.start is None:
        raise BadInput(f"{_where(task_id, 'run.start')} is required for run.type command",
                       'e.g. "start": ["./run.sh"], "stop": ["./stop.sh"]')
    python = raw.get("python", "venv")
    if not isinstance(python, str) or not python:
        raise BadInput(f"{_where(task_id, 'python')} must be venv, none or an interpreter path",
                       'e.g. "venv"')
    smoke = raw.get("smoke")
    if smoke is not None and not isinstance(smoke, str):
        smoke = _argv(smoke, task_id, "smoke")
    health_raw = raw.get("health") or {}
    if not isinstance(health_raw, dict):
        raise BadInput(f"{_where(task_id, 'health')} must be an object", "see docs/design.md, Health")
    dh = HealthSettings()
    source = health_raw.get("source", dh.source)
    prefect = source == PREFECT_SOURCE
    health = HealthSettings(
        source=source if prefect else _rel(source, task_id, "health.source") or dh.source,
        window_minutes=_number(health_raw.get("window_minutes", dh.window_minutes), task_id,
                               "health.window_minutes", 1, 100_000, integer=True),
        min_samples=_number(health_raw.get("min_samples", dh.min_samples), task_id,
                            "health.min_samples", 1, 1_000_000, integer=True),
        threshold=_number(health_raw.get("threshold", dh.threshold), task_id,
                          "health.threshold", 0, 1),
        error_pattern=_pattern(health_raw.get("error_pattern"), task_id, "health.error_pattern"),
        total_pattern=_pattern(health_raw.get("total_pattern"), task_id, "health.total_pattern"),
        flow=_flow_name(health_raw.get("flow"), task_id, prefect),
        tags=_tags(health_raw.get("tags"), task_id, prefect),
    )
    if health.total_pattern is not None and health.error_pattern is None:
        raise BadInput(f"{_where(task_id, 'health.error_pattern')} is required with total_pattern",
                       'e.g. "error_pattern": "ERROR|Traceback"')
    if prefect and health.error_pattern is not None:
        raise BadInput(f"{_where(task_id, 'health.error_pattern')} applies to a log file, not to "
                       'source "prefect"', "remove the patterns, or set source to the log file")
    env_names = raw.get("environment_variables", [])
    if not isinstance(env_names, list) or not all(
        isinstance(n, str) and _ENV_NAME.match(n) for n in env_names
    ):
        raise BadInput(f"{_where(task_id, 'environment_variables')} must list variable names",
                       'e.g. ["TUSHARE_TOKEN"] (names only, never values)')
    refuse_credentials_as_names(env_names, _where(task_id, "environment_variables"))
    state = raw.get("state_paths", list(DEFAULT_STATE_PATHS))
    if isinstance(state, list):  # "./cache/" means the task directory's cache/: anchored
        state = [_anchored(p) if isinstance(p, str) else p for p in state]
    if not isinstance(state, list) or not all(
            isinstance(p, str) and p.strip() and ".." not in p.split("/") and "\0" not in p
            and valid_pattern(p) for p in state):
        raise BadInput(f"{_where(task_id, 'state_paths')} must be a list of .gitignore patterns",
                       'e.g. ["state/", "cache/", "*.db"] (the defaults always apply as well)')
    stable_after = raw.get("stable_after")
    if stable_after is not None:
        stable_after = _number(stable_after, task_id, "stable_after", 1, 1_000_000, integer=True)
    return TaskSettings(
        run=run, python=python, smoke=smoke,
        smoke_timeout_s=_number(raw.get("smoke_timeout_s", 60), task_id, "smoke_timeout_s", 1, 86_400),
        health=health, environment_variables=tuple(env_names), state_paths=tuple(state),
        stable_after=stable_after,
    )
