"""The one skeleton of every state-changing operation (snapshot, rollback, promote, init, …):

    task lock → Prefect concurrency limit → undo interrupted operations → journal → steps →
    undo + a failed audit entry, or an ok audit entry.

A composition reads::

    with operation(ws, "rollback", task_id) as op:
        plan = check(ws, req)                          # refusals here change nothing
        with op.changes(journal_info, workspace_lock=True) as journal:
            ...steps, each recording its undo in ``journal`` before it acts...
        op.succeeded(to_version=..., **details)

Inside ``changes`` any exception undoes every journaled action (newest first; one failing undo
never stops the others), writes the failed audit entry (step, error, what was and was not undone,
newer work backed up), and re-raises with a message that says where it failed and whether
everything was put back. The guarantees of docs/design.md ("Crash safety") hold here once, for
every operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from flows.steps import collect_timings, exclusive, orchestration
from tasks_lib.core.errors import ClawbackError, OperationFailed
from tasks_lib.core.workspace import Workspace
from tasks_lib.state.audit import AuditLog, Stopwatch
from tasks_lib.state.journal import Journal
from tasks_lib.state.oplocks import task_lock, workspace_lock
from tasks_lib.state.recovery import undo_interrupted, undo_others

WORKSPACE_JOURNAL = "~workspace"  # journal names of workspace-wide operations (never a task id)


@dataclass
class Operation:
    ws: Workspace
    action: str
    task_id: str | None
    audit: AuditLog
    timings: dict[str, float] = field(default_factory=dict)
    clock: Stopwatch = field(default_factory=Stopwatch)
    details: dict[str, Any] = field(default_factory=dict)  # added to the audit entry either way
    journal: Journal | None = None

    @property
    def journal_name(self) -> str:
        return f"{self.task_id or WORKSPACE_JOURNAL}-{self.action}"

    @contextmanager
    def changes(self, from_version: str | None = None, to_version: str | None = None, *,
                hold_workspace: bool = True, **info: Any) -> Iterator[Journal]:
        """The state-changing part: a journal every step records its undo in; on any failure
        everything recorded is undone and audited, then the error is raised again."""
        journal = Journal(self.ws.root, self.ws.state_dir, self.journal_name,
                          {"action": self.action, "task": self.task_id, "from": from_version,
                           "to": to_version, **info})
        self.journal = journal
        self.details.setdefault("from_version", from_version)
        self.details.setdefault("to_version", to_version)
        with ExitStack() as held:
            if hold_workspace:
                held.enter_context(workspace_lock(self.ws.state_dir, self.action))
            try:
                yield journal
                journal.commit()
            except BaseException as exc:
                raise self._undo(journal, exc) from exc

    def _undo(self, journal: Journal, exc: BaseException) -> BaseException:
        step = next(reversed(self.timings), "preflight")
        changed = bool(journal.actions)
        not_undone = journal.undo()
        audit_problem = self._audit("failed", step=step, error=_message(exc),
                                    undone=list(journal.done), not_undone=not_undone,
                                    **({"newer_work_backed_up": journal.backups}
                                       if journal.backups else {}))
        if not isinstance(exc, Exception):
            return exc  # KeyboardInterrupt, SystemExit: undone, then passed on as they are
        if not changed and not audit_problem:
            return exc  # nothing had changed yet: the refusal speaks for itself
        undone = ("everything was put back" if not not_undone
                  else "COULD NOT UNDO: " + "; ".join(not_undone))
        if journal.backups:
            undone += "; newer work was kept in " + ", ".join(journal.backups)
        if audit_problem:
            undone += f"; {audit_problem}"
        text = f"{self.action} failed at step {step}: {_message(exc)} ({undone})"
        if isinstance(exc, ClawbackError):
            exc.message = text
            return exc
        return OperationFailed(text, step=step,
                               hint="the backup and the audit log name what was kept")

    def succeeded(self, result: str = "ok", **details: Any) -> None:
        problem = self._audit(result, **details)
        if problem:
            raise OperationFailed(f"{self.action} of {self.task_id} completed, but {problem}",
                                  step="audit", hint="check that .clawback/ is writable; the "
                                  "change itself is complete (see git log)")

    def _audit(self, result: str, **details: Any) -> str | None:
        """Write the audit entry; what went wrong writing it (None: written)."""
        entry = {**self.details, **details}
        try:
            self.audit.append(self.action, task=self.task_id, result=result,
                              from_version=entry.pop("from_version", None),
                              to_version=entry.pop("to_version", None),
                              reason=entry.pop("reason", None) or None,
                              duration_s=self.clock.elapsed, **entry, **orchestration())
        except OSError as exc:
            return f"the audit entry could not be written ({exc.strerror or exc})"
        except ClawbackError as exc:
            return f"the audit entry could not be written ({exc.message})"
        return None


def _message(exc: BaseException) -> str:
    if isinstance(exc, ClawbackError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def operation(ws: Workspace, action: str, task_id: str | None) -> Iterator[Operation]:
    """Hold the locks, undo what killed earlier operations on the task left behind, and give the
    body an Operation to run its changes in. ``task_id`` None: a workspace-wide operation (the
    workspace lock only)."""
    op = Operation(ws, action, task_id, AuditLog(ws.ensure_state_dir()))
    with ExitStack() as held:
        if task_id is not None:
            held.enter_context(task_lock(ws.state_dir, task_id, action))
            held.enter_context(exclusive(action, task_id, ws.root))
        op.timings = held.enter_context(collect_timings())
        key = task_id if task_id is not None else WORKSPACE_JOURNAL
        with workspace_lock(ws.state_dir, action):  # the undo may rewrite the registry
            undo_interrupted(ws.root, ws.state_dir, key, op.audit)
            undo_others(ws.root, ws.state_dir, key, op.audit)
        yield op
