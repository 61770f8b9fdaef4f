"""A deployment's flow run acts on its worker's workspace and no other (docs/design.md,
"Orchestration").

A deployment is one machine's (docs/scale-out.md): ``clawback serve --workspace DIR`` and
``python -m deployments.serve --workspace DIR`` give the processes that execute its flow runs
``CLAWBACK_WORKSPACE=DIR`` (the resolved git top level), and prefect.yaml makes the same path
the ``workspace`` parameter's default. Anyone who can start a run (the UI's custom run, the REST
API) can type another path into that parameter, so every ``@flow`` wrapper calls ``confine``
first: a run of a deployment whose ``workspace`` does not name the configured directory is
refused (BadInput) before anything in either directory is read or written. A run that is not a
deployment's (the CLI) is not confined: its user named the workspace on the command line.

What names the configured directory is decided on the strings alone; the requested path is never
looked up on disk, so a refused run cannot even probe another directory. Accepted: the configured
path, or its resolved form (the health flow hands breaches on as the resolved git top level),
spelled with extra or trailing slashes or ``.`` components. Refused: an empty or relative path,
a path with a NUL byte or a ``..`` component (lexically dropping ``x/..`` is not what the kernel
does when ``x`` is a symlink), and any other path, a symlink to the workspace included: following
it would read the requested path, and a link can be repointed between the check and the use.
An accepted run acts on the configured path, never on the requested spelling.
"""

from __future__ import annotations

import os

from tasks_lib.core.errors import BadInput

CONFIG_ENV = "CLAWBACK_WORKSPACE"
SHOWN = 200   # characters of a refused path quoted in the error


def allowed_workspace(requested: str, *, deployment: str | None,
                      configured: str | None) -> str:
    """The workspace a flow run may act on: ``requested`` for a run that is not a deployment's,
    else ``configured`` if ``requested`` names it (see the module docstring), else BadInput."""
    if deployment is None:
        return requested
    if not configured:
        raise BadInput(
            f"this deployment's flow run has no configured workspace ({CONFIG_ENV} is not set "
            "in the environment of the process that runs it), so it acts on none",
            "serve deployments with `clawback serve --workspace DIR` or `python -m "
            f"deployments.serve --workspace DIR`, or start the worker with {CONFIG_ENV}=DIR")
    conf = _lexical(configured)
    if conf is None:
        raise BadInput(
            f"the configured workspace {CONFIG_ENV}={_show(configured)} is not an absolute path "
            "without '..'", f"set {CONFIG_ENV} to the workspace's absolute path (clawback serve "
            "does) and restart the worker")
    wanted = _lexical(requested)
    if wanted is None or wanted not in {conf, os.path.realpath(conf)}:
        raise BadInput(
            f"this deployment acts only on its worker's workspace {configured}; the run asked "
            f"for workspace {_show(requested)}",
            f"leave the workspace parameter at its default ({configured}); for another "
            "workspace, run the deployment of the machine that serves it, or the clawback CLI "
            "with --workspace")
    return configured


def _lexical(path: str) -> str | None:
    """``path`` without extra slashes and ``.`` components, or None when it is not absolute or
    holds a NUL byte or a ``..`` component. Reads nothing from disk."""
    if not path.startswith("/") or "\0" in path or ".." in path.split("/"):
        return None
    return os.path.normpath(path)


def _show(path: str) -> str:
    """A path quoted for an error: control characters escaped, long ones cut."""
    text = repr(path[:SHOWN])
    return text + (f" (cut; {len(path)} characters)" if len(path) > SHOWN else "")


def confine(requested: str) -> str:
    """The workspace this flow run may act on (allowed_workspace for the run under way). Call
    it first in every ``@flow`` wrapper."""
    return allowed_workspace(requested, deployment=_deployment_id(),
                             configured=os.environ.get(CONFIG_ENV))


def _deployment_id() -> str | None:
    """The deployment of the flow run under way: its own, or for a nested flow run the one of
    the run it is part of; None for a run that is not a deployment's."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return None
    if ctx.flow_run.deployment_id is not None:
        return str(ctx.flow_run.deployment_id)
    if ctx.flow_run.parent_task_run_id is None:       # a top-level run: nothing to inherit
        return None
    from prefect.runtime import deployment

    return deployment.id
