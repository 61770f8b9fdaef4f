"""Carrying out what the health policy decided (docs/design.md, "Health"), each act audited and
alerted. tasks_lib/health/policy.py decides, from the check, the verdict history, the registry
entry's marks and the time (``plan``); this module only acts on its actions:

- :class:`~tasks_lib.health.policy.RollBack`: on a Prefect server with a ``rollback`` deployment
  the rollback is handed to it (flows/trigger.py: one flow run per breach, by idempotency key)
  and awaited up to ``wait_s``; otherwise the rollback flow runs right here. A failed rollback
  becomes the escalation the plan names for it (``RollBack.failed``).
- ``Escalate`` (audit, hold the breach, alert with the options), ``Hold`` (report only),
  ``Release`` (drop the hold), ``Promote`` (the promote flow), ``Alert`` (the source could not be
  read: audit and alert).

An alert never fails or blocks anything: tasks_lib/notify.py retries it, reports and logs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.promote import run_promote
from flows.rollback import run_rollback
from flows.steps import in_flow_run, orchestration, step
from tasks_lib import notify
from tasks_lib.core import ids
from tasks_lib.core import time as clock
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.workspace import Workspace
from tasks_lib.health import policy as plans
from tasks_lib.health.checkup import TaskHealth
from tasks_lib.health.history import Escalated, Record, VerdictLog
from tasks_lib.health.policy import Policy, RollbackVia
from tasks_lib.secrets import masking
from tasks_lib.state.audit import AuditLog

send_alert = step(notify.send, name="send-alert")


@dataclass(frozen=True)
class Action:
    task_id: str
    action: str     # rolled-back | rollback-running | escalated | held | released | promoted |
    #                 promote-skipped | source-errors
    from_version: str | None
    to_version: str | None
    detail: str
    run_url: str | None = None
    alerted: str | None = None      # sent | failed | partly-sent | None (no alert URLs)


def respond(ws: Workspace, results: tuple[TaskHealth, ...],
            history: dict[str, list[Record]], policy: Policy) -> list[Action]:
    """Plan every task's actions (tasks_lib/health/policy.py), then carry them out: the breaches'
    first (the rollbacks together, so a deployment runs them side by side), then the rest."""
    log = VerdictLog(ws.ensure_state_dir())
    reg = ws.load_registry()
    now = clock.now_utc()
    planned = {r.task_id: plans.plan(_finding(r), history.get(r.task_id, []),
                                     reg.entry(r.task_id) or {}, _held(log, r), policy, now)
               for r in results}
    by_task = {r.task_id: r for r in results}
    actions: list[Action] = []
    rollbacks = []
    for r in results:
        for act in planned[r.task_id]:
            if isinstance(act, plans.Hold):
                actions.append(Action(act.task_id, "held", act.version, act.target, act.detail))
            elif isinstance(act, plans.Escalate):
                actions.append(_escalate(ws, r, act))
            elif isinstance(act, plans.RollBack):
                rollbacks.append(act)
    if rollbacks:
        actions += _roll_back(ws, rollbacks, by_task, policy)
    for r in results:
        for act in planned[r.task_id]:
            if isinstance(act, plans.Release) and log.release(r.task_id):
                actions.append(Action(r.task_id, "released", act.version, None,
                                      "healthy again: the escalated breach is over"))
            elif isinstance(act, plans.Promote):
                actions.append(_promote(ws, act))
            elif isinstance(act, plans.Alert):
                actions.append(_source_errors(ws, r, act.streak))
    return actions


def _finding(r: TaskHealth) -> plans.Finding:
    return plans.Finding(r.task_id, r.rate.version, r.rate.verdict, r.verdict, r.rate.rate,
                         r.rate.threshold, r.rate.samples, r.rate.failures)


def _held(log: VerdictLog, r: TaskHealth) -> Escalated | None:
    # a broken registry entry's id may be hostile: never a file name (and never acted on)
    return log.held(r.task_id) if ids.valid_task_id(r.task_id) else None


# -- breach --------------------------------------------------------------------------------
def _roll_back(ws: Workspace, planned: list[plans.RollBack], by_task: dict[str, TaskHealth],
               policy: Policy) -> list[Action]:
    handed, why_not = _via_deployment(policy.rollback_via)
    if handed:
        return _hand_to_deployment(ws, planned, by_task, policy.wait_s)
    return [_roll_back_here(ws, by_task[p.task_id], p, why_not) for p in planned]


def _via_deployment(via: RollbackVia) -> tuple[bool, str]:
    if via == "direct" or not in_flow_run():
        return False, ""
    from flows.trigger import deployment_usable

    usable, why = deployment_usable()
    if via == "deployment" and not usable:
        raise ClawbackError(f"the rollback deployment cannot be used: {why}",
                            "deploy it (prefect.yaml) or run with rollback_via=auto")
    return usable, why


def _roll_back_here(ws: Workspace, r: TaskHealth, p: plans.RollBack, note: str) -> Action:
    link = _own_run_url()
    try:
        done = run_rollback(str(ws.root), p.task_id, p.target, from_version=p.version,
                            reason=p.reason)
    except Exception as exc:  # noqa: BLE001 - any failure of the rollback is escalated
        return _escalate(ws, r, p.failed(f"the automatic rollback to {p.target} failed: {exc}"),
                         link=link)
    detail = f"rolled back to {done.to_version} (tag {done.tag}); {p.version} quarantined"
    if note:
        detail += f" (ran in the health flow: {note})"
    return _alerting(ws, Action(p.task_id, "rolled-back", p.version, done.to_version, detail,
                                link), r, "auto-rollback")


def _hand_to_deployment(ws: Workspace, planned: list[plans.RollBack],
                        by_task: dict[str, TaskHealth], wait_s: float) -> list[Action]:
    from flows import trigger

    started = []
    for p in planned:
        key = trigger.breach_key(str(ws.root), p.breach)
        params = {"workspace": str(ws.root), "task_id": p.task_id, "to_version": p.target,
                  "from_version": p.version, "reason": p.reason}
        started.append((p, trigger.start_rollback(params, key)))
    mine = [s for s in started if s[1].ours]
    states = trigger.wait([run for _, run in mine], wait_s)
    actions = [Action(p.task_id, "rollback-running", p.version, p.target,
                      f"an earlier health run already started rollback flow run {run.name} for "
                      "this breach", run.url) for p, run in started if not run.ours]
    for p, run in mine:
        end = states[run.flow_run_id]
        r = by_task[p.task_id]
        if end.state == "COMPLETED":
            act = Action(p.task_id, "rolled-back", p.version, p.target,
                         f"rolled back to {p.target} by flow run {run.name}; {p.version} "
                         "quarantined", run.url)
            actions.append(_alerting(ws, act, r, "auto-rollback"))
        elif end.final:
            actions.append(_escalate(ws, r, p.failed(
                f"the automatic rollback flow run {run.name} ended {end.state}: {end.message}"),
                link=run.url))
        else:
            act = Action(p.task_id, "rollback-running", p.version, p.target,
                         f"rollback flow run {run.name} to {p.target} is still {end.state} after "
                         f"{wait_s:g} s", run.url)
            actions.append(_alerting(ws, act, r, "auto-rollback"))
    return actions


def _escalate(ws: Workspace, r: TaskHealth, e: plans.Escalate, link: str | None = None) -> Action:
    VerdictLog(ws.ensure_state_dir()).hold(e.task_id, e.breach, e.why, e.target, clock.now_utc())
    AuditLog(ws.ensure_state_dir()).append(
        "escalate", task=e.task_id, result="escalated", from_version=e.version,
        to_version=e.target, reason=e.why, error_rate=r.rate.rate, samples=r.rate.samples,
        **orchestration())
    act = Action(e.task_id, "escalated", e.version, e.target,
                 f"{e.why}; options: " + "; ".join(e.options), link or _own_run_url())
    return _alerting(ws, act, r, e.kind, options=e.options)


# -- promotion and measurement errors --------------------------------------------------------
def _promote(ws: Workspace, p: plans.Promote) -> Action:
    try:
        done = run_promote(str(ws.root), p.task_id, p.version,
                           reason=f"automatic: {p.streak} consecutive healthy checks")
    except ClawbackError as exc:  # e.g. no snapshot of the running version, or the task is busy
        return Action(p.task_id, "promote-skipped", p.version, p.version, str(exc))
    return Action(p.task_id, "promoted", p.version, p.version,
                  f"{p.version} marked stable after {p.streak} consecutive healthy checks "
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
