"""What the health flow does about what it found (issue 4 items 2-5), each act audited and alerted:

- a **breach** (``auto_rollback``): roll the task back to its newest stable, non-quarantined
  older version (tasks_lib/health/policy.py decides, at most once per task per interval). On a
  Prefect server with a ``rollback`` deployment the rollback is handed to it (flows/trigger.py:
  one flow run per breach, by idempotency key) and awaited up to ``wait_s``; otherwise the
  rollback flow runs right here. No target, the limit reached, or a failed rollback: escalate.
- ``promote_after`` consecutive healthy verdicts of a version mark it stable.
- ``errors_before_alert`` consecutive ``error`` verdicts (the source cannot be read) escalate once.

An alert never fails or blocks anything: tasks_lib/notify.py retries it, reports and logs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from flows.promote import run_promote
from flows.rollback import run_rollback
from flows.steps import in_flow_run, orchestration, step
from tasks_lib import notify
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.workspace import Workspace
from tasks_lib.health import policy as autorollback
from tasks_lib.health import stable
from tasks_lib.health.checkup import TaskHealth
from tasks_lib.health.history import Record, VerdictLog, breach_id, error_streak, healthy_streak
from tasks_lib.health.verdict import version_started_at
from tasks_lib.secrets import masking
from tasks_lib.state.audit import AuditLog

RollbackVia = Literal["auto", "deployment", "direct"]
send_alert = step(notify.send, name="send-alert")


@dataclass(frozen=True)
class Policy:
    auto_rollback: bool = False
    min_interval: timedelta = autorollback.DEFAULT_MIN_INTERVAL
    promote_after: int = 0          # 0: never promote automatically
    errors_before_alert: int = 3
    rollback_via: RollbackVia = "auto"
    wait_s: float = 300.0


@dataclass(frozen=True)
class Action:
    task_id: str
    action: str     # rolled-back | rollback-running | escalated | promoted | source-errors
    from_version: str | None
    to_version: str | None
    detail: str
    run_url: str | None = None
    alerted: str | None = None      # sent | failed | partly-sent | None (no alert URLs)


def respond(ws: Workspace, results: tuple[TaskHealth, ...],
            history: dict[str, list[Record]], policy: Policy) -> list[Action]:
    actions: list[Action] = []
    if policy.auto_rollback:
        breached = [r for r in results if r.rate.verdict == "breach" and r.rate.version]
        actions += _roll_back(ws, breached, policy)
    log = VerdictLog(ws.ensure_state_dir())
    for r in results:
        if r.verdict == "healthy" and log.release(r.task_id):
            actions.append(Action(r.task_id, "released", r.rate.version, None,
                                  "healthy again: the escalated breach is over"))
        past = history.get(r.task_id, [])
        if policy.promote_after > 0 and r.verdict == "healthy" and r.rate.version and \
                healthy_streak(past, r.rate.version) >= policy.promote_after:
            done = _promote(ws, r, policy.promote_after)
            actions += [done] if done else []
        if r.rate.verdict == "error" and error_streak(past) == policy.errors_before_alert:
            actions.append(_source_errors(ws, r, policy.errors_before_alert))
    return actions


# -- breach --------------------------------------------------------------------------------
def _roll_back(ws: Workspace, breached: list[TaskHealth], policy: Policy) -> list[Action]:
    actions, planned = [], []
    reg = ws.load_registry()
    now = datetime.now(UTC)
    log = VerdictLog(ws.ensure_state_dir())
    for r in breached:
        entry = reg.entry(r.task_id) or {}
        if str(entry.get("version")) != r.rate.version:
            continue  # changed since it was checked (a rollback just finished): judge it next time
        breach = breach_id(r.task_id, r.rate.version or "?",
                           version_started_at(entry, r.rate.version or ""))
        held = log.held(r.task_id)
        if held and held["breach"] == breach:
            actions.append(Action(r.task_id, "held", r.rate.version, held.get("target"),
                                  f"escalated at {held.get('at')} ({held.get('why')}); held until "
                                  "the operator acts or the task is healthy again"))
            continue
        decision = autorollback.decide(entry, "breach", r.rate.version, now, policy.min_interval)
        if decision.action == "rollback" and decision.target:
            planned.append((r, decision.target, breach))
        else:
            actions.append(_escalate(ws, r, decision.target, decision.why, breach=breach))
    if not planned:
        return actions
    handed, why_not = _via_deployment(policy.rollback_via)
    if handed:
        return actions + _hand_to_deployment(ws, planned, policy.wait_s)
    for r, target, breach in planned:
        actions.append(_roll_back_here(ws, r, target, why_not, breach))
    return actions


def _via_deployment(via: RollbackVia) -> tuple[bool, str]:
    if via == "direct" or not in_flow_run():
        return False, ""
    from flows.trigger import deployment_usable

    usable, why = deployment_usable()
    if via == "deployment" and not usable:
        raise ClawbackError(f"the rollback deployment cannot be used: {why}",
                            "deploy it (prefect.yaml) or run with rollback_via=auto")
    return usable, why


def _reason(r: TaskHealth) -> str:
    return autorollback.reason_for(r.rate.rate or 0.0, r.rate.threshold, r.rate.samples,
                                   r.rate.failures, r.rate.version or "?")


def _roll_back_here(ws: Workspace, r: TaskHealth, target: str, note: str, breach: str) -> Action:
    current = r.rate.version
    link = _own_run_url()
    try:
        done = run_rollback(str(ws.root), r.task_id, target, from_version=current,
                            reason=_reason(r))
    except Exception as exc:  # noqa: BLE001 - any failure of the rollback is escalated
        return _escalate(ws, r, target, f"the automatic rollback to {target} failed: {exc}",
                         kind="auto-rollback-failed", link=link, breach=breach)
    detail = f"rolled back to {done.to_version} (tag {done.tag}); {current} quarantined"
    if note:
        detail += f" (ran in the health flow: {note})"
    return _alerting(ws, Action(r.task_id, "rolled-back", current, done.to_version, detail, link),
                     r, "auto-rollback")


def _hand_to_deployment(ws: Workspace, planned: list[tuple[TaskHealth, str, str]],
                        wait_s: float) -> list[Action]:
    from flows import trigger

    started = []
    for r, target, breach in planned:
        key = trigger.breach_key(str(ws.root), breach)
        params = {"workspace": str(ws.root), "task_id": r.task_id, "to_version": target,
                  "from_version": r.rate.version, "reason": _reason(r)}
        started.append((r, target, trigger.start_rollback(params, key)))
    mine = [s for s in started if s[2].ours]
    states = trigger.wait([s for _, _, s in mine], wait_s)
    actions = [Action(r.task_id, "rollback-running", r.rate.version, target,
                      f"an earlier health run already started rollback flow run {run.name} for "
                      "this breach", run.url) for r, target, run in started if not run.ours]
    breaches = {r.task_id: breach for r, _, breach in planned}
    for r, target, run in mine:
        end = states[run.flow_run_id]
        current = r.rate.version
        if end.state == "COMPLETED":
            act = Action(r.task_id, "rolled-back", current, target,
                         f"rolled back to {target} by flow run {run.name}; {current} quarantined",
                         run.url)
            actions.append(_alerting(ws, act, r, "auto-rollback"))
        elif end.final:
            actions.append(_escalate(
                ws, r, target, f"the automatic rollback flow run {run.name} ended {end.state}: "
                f"{end.message}", kind="auto-rollback-failed", link=run.url,
                breach=breaches[r.task_id]))
        else:
            act = Action(r.task_id, "rollback-running", current, target,
                         f"rollback flow run {run.name} to {target} is still {end.state} after "
                         f"{wait_s:g} s", run.url)
            actions.append(_alerting(ws, act, r, "auto-rollback"))
    return actions


def _escalate(ws: Workspace, r: TaskHealth, target: str | None, why: str, *, breach: str,
              kind: notify.Kind = "escalation", link: str | None = None) -> Action:
    current, task = r.rate.version, r.task_id
    VerdictLog(ws.ensure_state_dir()).hold(task, breach, why, target, datetime.now(UTC))
    AuditLog(ws.ensure_state_dir()).append(
        "escalate", task=task, result="escalated", from_version=current, to_version=target,
        reason=why, error_rate=r.rate.rate, samples=r.rate.samples, **orchestration())
    options = notify.escalation_options(task, target, current)
    act = Action(task, "escalated", current, target, f"{why}; options: " + "; ".join(options),
                 link or _own_run_url())
    return _alerting(ws, act, r, kind, options=options)


# -- promotion and measurement errors --------------------------------------------------------
def _promote(ws: Workspace, r: TaskHealth, streak: int) -> Action | None:
    version = r.rate.version or ""
    entry = ws.load_registry().entry(r.task_id) or {}
    if stable.is_stable(entry, version) or version in stable.quarantined(entry):
        return None  # already stable; a quarantined version is only ever promoted by hand
    try:
        done = run_promote(str(ws.root), r.task_id, version,
                           reason=f"automatic: {streak} consecutive healthy checks")
    except ClawbackError as exc:  # e.g. no snapshot of the running version, or the task is busy
        return Action(r.task_id, "promote-skipped", version, version, str(exc))
    return Action(r.task_id, "promoted", version, version,
                  f"{version} marked stable after {streak} consecutive healthy checks "
                  f"(commit {(done.commit or '')[:12]})", _own_run_url())


def _source_errors(ws: Workspace, r: TaskHealth, streak: int) -> Action:
    why = f"the health source could not be read {streak} times in a row: {r.rate.detail}"
    AuditLog(ws.ensure_state_dir()).append(
        "escalate", task=r.task_id, result="escalated", from_version=r.rate.version,
        reason=why, **orchestration())
    act = Action(r.task_id, "source-errors", r.rate.version, None,
                 f"{why}; no rollback is made on measurement errors: fix the source",
                 _own_run_url())
    return _alerting(ws, act, r, "source-errors")


# -- alerts ----------------------------------------------------------------------------------
def _alerting(ws: Workspace, act: Action, r: TaskHealth, kind: notify.Kind,
              options: tuple[str, ...] = ()) -> Action:
    urls = notify.notify_urls(extra=notify.workspace_urls(ws.state_dir))
    if not urls:
        return act
    alert = notify.Alert(
        kind=kind, task_id=act.task_id, from_version=act.from_version, to_version=act.to_version,
        error_rate=r.rate.rate, samples=r.rate.samples, failures=r.rate.failures,
        threshold=r.rate.threshold,
        top_errors=tuple((e.message, e.count) for e in r.rate.top_errors),
        action=act.detail, options=options, run_url=act.run_url, workspace=ws.root.name)
    report = send_alert(alert, urls, names=masking.declared_names(ws.root))
    notify.log_result(AuditLog(ws.ensure_state_dir()), alert, report)
    return Action(**{**act.__dict__, "alerted": report.result})


def _own_run_url() -> str | None:
    if not in_flow_run():
        return None
    from flows.trigger import current_run_url

    return current_run_url()
