"""What the health automation decides (docs/design.md, "Health"), in one pure function: :func:`plan`
turns what one check found about a task, its verdict history (tasks_lib/health/history.py), its
registry entry's stable and quarantine marks (tasks_lib/health/stable.py), the escalation it is
held at, the policy and the time now into the actions to take, as typed values. It reads no file
and no clock; flows/autoheal.py carries the actions out (audit, alert, run or hand over the
rollback, promote). Plain Python.

- **a breach** (only with ``auto_rollback``): :class:`RollBack` to the newest stable,
  non-quarantined version older than the current one, at most once per task per interval
  (default an hour); otherwise :class:`Escalate` with the three options. Automatic rollbacks are
  the ``rollback_history`` records whose reason starts ``automatic:``, so the limit holds across
  processes and machines (the registry is committed). A breach already escalated is a
  :class:`Hold`: never escalated, alerted or retried again. A task whose registry version is no
  longer the one checked (a rollback just finished) gets nothing: the next check judges it.
- **healthy**: :class:`Release` of the escalation held (the episode is over); :class:`Promote`
  after K consecutive healthy verdicts of the version (K: the task's ``stable_after`` setting,
  else the run's ``promote_after``), unless it is stable
  already or quarantined (only a person promotes a quarantined version).
- **error** (the source cannot be read): :class:`Alert` once, when ``errors_before_alert``
  checks in a row could not read it; never a rollback.

Why these rules cannot flap or repeat themselves (tests/health/test_policy.py proves it over
generated histories): a rollback only goes to an *older* version and quarantines the one it
left, which is never a target nor promoted automatically again; a breach is named by its task,
version and when that version started (:func:`history.breach_id`), and its one escalation
becomes the hold every later check of it sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from tasks_lib import notify
from tasks_lib.core import settings
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.time import parse as parse_ts
from tasks_lib.health import stable
from tasks_lib.health.history import Escalated, Record, breach_id, error_streak, healthy_streak

AUTO_REASON = "automatic:"
DEFAULT_MIN_INTERVAL = timedelta(hours=1)
RollbackVia = Literal["auto", "deployment", "direct"]


@dataclass(frozen=True)
class Policy:
    """The health run's settings: what to decide (the first four) and how the flow carries a
    rollback out (``rollback_via``, ``wait_s``: flows/autoheal.py)."""
    auto_rollback: bool = False
    min_interval: timedelta = DEFAULT_MIN_INTERVAL
    promote_after: int = 0          # 0: never promote automatically
    errors_before_alert: int = 3
    rollback_via: RollbackVia = "auto"
    wait_s: float = 300.0


@dataclass(frozen=True)
class Finding:
    """What one check found about a task (tasks_lib/health/checkup.py ``TaskHealth``)."""
    task_id: str
    version: str | None     # the version checked
    rate_verdict: str       # the error rate's: healthy | breach | inconclusive | error
    verdict: str            # with the live checks: ``unhealthy`` when only one of them failed
    rate: float | None = None
    threshold: float = 0.0
    samples: int = 0
    failures: int = 0


# -- the actions ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Hold:
    """The breach was escalated already: report it, do nothing else."""
    task_id: str
    version: str | None
    target: str | None
    detail: str


@dataclass(frozen=True)
class Escalate:
    """Ask a person (audit ``escalate``, hold the breach, alert with the options)."""
    task_id: str
    version: str | None
    target: str | None      # the last stable version, named in the first option (or None)
    why: str
    breach: str
    options: tuple[str, ...]
    kind: Literal["escalation", "auto-rollback-failed"] = "escalation"


@dataclass(frozen=True)
class RollBack:
    """Roll the task back from ``version`` to ``target`` with ``reason`` (rollback_history)."""
    task_id: str
    version: str
    target: str
    breach: str
    reason: str

    def failed(self, why: str) -> Escalate:
        """What a rollback that failed becomes: the escalation of its breach (one per breach)."""
        return Escalate(self.task_id, self.version, self.target, why, self.breach,
                        notify.escalation_options(self.task_id, self.target, self.version),
                        "auto-rollback-failed")


@dataclass(frozen=True)
class Release:
    """Healthy again: the escalated breach is over, its hold is dropped."""
    task_id: str
    version: str | None


@dataclass(frozen=True)
class Promote:
    """Mark ``version`` stable after ``streak`` consecutive healthy checks."""
    task_id: str
    version: str
    streak: int


@dataclass(frozen=True)
class Alert:
    """The health source could not be read ``streak`` checks in a row (audit, alert)."""
    task_id: str
    version: str | None
    streak: int


Action = Hold | Escalate | RollBack | Release | Promote | Alert


def promote_after(task_id: str, entry: Mapping[str, Any], policy: Policy) -> int:
    """How many healthy checks in a row make a version stable: the task's own ``stable_after``
    setting when it has one, else the health run's ``promote_after`` (0: never)."""
    try:
        own = settings.parse(task_id, entry.get("clawback")).stable_after
    except ClawbackError:
        own = None  # a broken entry is reported by the check itself; it is never promoted on it
    return own if own is not None else policy.promote_after


def plan(found: Finding, history: Sequence[Record], entry: Mapping[str, Any],
         held: Escalated | None, policy: Policy, now: datetime) -> tuple[Action, ...]:
    """The actions for one task, in the order to carry them out. ``history`` is the task's
    verdict history newest first, this check's verdict included; ``entry`` its registry entry as
    read after the check; ``held`` the escalation it is held at (None if none)."""
    if found.rate_verdict == "breach" and found.version:
        return _breach(found, entry, held, policy, now) if policy.auto_rollback else ()
    actions: list[Action] = []
    if found.verdict == "healthy":
        if held is not None:
            actions.append(Release(found.task_id, found.version))
        k = promote_after(found.task_id, entry, policy)
        if found.version and k > 0:
            streak = healthy_streak(history, found.version)
            if streak >= k and not stable.is_stable(entry, found.version) \
                    and found.version not in stable.quarantined(entry):
                actions.append(Promote(found.task_id, found.version, k))
    if found.rate_verdict == "error" and error_streak(history) == policy.errors_before_alert:
        actions.append(Alert(found.task_id, found.version, policy.errors_before_alert))
    return tuple(actions)


def _breach(found: Finding, entry: Mapping[str, Any], held: Escalated | None, policy: Policy,
            now: datetime) -> tuple[Action, ...]:
    current = found.version or ""
    if str(entry.get("version")) != current:
        return ()  # changed since it was checked (a rollback just finished): judge it next time
    breach = breach_id(found.task_id, current, stable.version_started_at(entry, current))
    if held is not None and held.breach == breach:
        return (Hold(found.task_id, current, held.target,
                     f"escalated at {held.at} ({held.why}); held until the operator acts or the "
                     "task is healthy again"),)
    decision = decide(entry, "breach", current, now, policy.min_interval)
    if decision.action == "rollback" and decision.target:
        reason = reason_for(found.rate or 0.0, found.threshold, found.samples, found.failures,
                            current)
        return (RollBack(found.task_id, current, decision.target, breach, reason),)
    return (Escalate(found.task_id, current, decision.target, decision.why, breach,
                     notify.escalation_options(found.task_id, decision.target, current)),)


# -- the breach decision from the registry entry alone ----------------------------------------
@dataclass(frozen=True)
class Decision:
    action: Literal["rollback", "escalate", "none"]
    target: str | None = None
    why: str = ""


def reason_for(rate: float, threshold: float, samples: int, failures: int, version: str) -> str:
    return (f"{AUTO_REASON} error rate {rate:.1%} ({failures}/{samples} runs of {version}) "
            f"above the threshold {threshold:g}")


def last_automatic(entry: Mapping[str, Any]) -> datetime | None:
    stamps = [parse_ts(r.get("rolled_back_at")) for r in entry.get("rollback_history") or []
              if isinstance(r, dict) and str(r.get("reason") or "").startswith(AUTO_REASON)]
    return max((s for s in stamps if s is not None), default=None)


def decide(entry: Mapping[str, Any], verdict: str, current: str | None, now: datetime,
           min_interval: timedelta = DEFAULT_MIN_INTERVAL) -> Decision:
    if verdict != "breach" or not current:
        return Decision("none")
    target = stable.rollback_target(entry, current)  # named in an escalation too
    last = last_automatic(entry)
    if last is not None and now - last < min_interval:
        return Decision("escalate", target, f"an automatic rollback of this task already ran at "
                                            f"{last:%Y-%m-%dT%H:%M:%SZ} (at most one per "
                                            f"{_span(min_interval)})")
    if target is None:
        return Decision("escalate", why=f"no stable, non-quarantined version older than {current}")
    return Decision("rollback", target, f"roll back to the newest stable version {target}")


def _span(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
