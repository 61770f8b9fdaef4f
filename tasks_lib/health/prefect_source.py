"""Prefect flow-run states as a task's health source (docs/design.md, "Health"; health settings
``"source": "prefect"``).

Plain Python over the Prefect REST API with httpx: this module never imports Prefect (domain
modules stay Prefect-free and read-only commands do not pay for importing it). The API is the one
at ``PREFECT_API_URL`` in the environment (Prefect profiles are not read), authorised like
Prefect's own client (tasks_lib/core/prefect_api.py): ``PREFECT_API_AUTH_STRING`` as Basic auth,
else ``PREFECT_API_KEY`` as a Bearer token. Neither ever appears in a message.

The runs of a task are the flow runs of the flow named by the settings' ``flow`` that carry every
tag in ``tags``, read with ``POST {api}/flow_runs/filter`` newest first (sort ``START_TIME_DESC``)
a page at a time, only as far back as ``since``. Only terminal states count:

- ``COMPLETED``: an ok run;
- ``FAILED`` and ``CRASHED``: a failed run, its error the state's message;
- ``CANCELLED``, ``CANCELLING``, ``PAUSED``, ``SCHEDULED``, ``PENDING``, ``RUNNING`` and any other
  state are not runs for the error rate (a cancellation is an operator's decision, the others
  have no outcome yet). They are filtered out by the server.

A run's time is its ``start_time`` (the server sets it at the latest when the run enters a terminal
state, so a run that crashed before starting has one too), else its ``expected_start_time``. As in
the file source, a run of another version is skipped: its version is its ``version`` parameter or
a ``version:<v>`` tag; a run naming neither counts. Pages are fetched by offset; a run seen twice
(the list shifted while it was read) is counted once.

Errors in measuring (no ``PREFECT_API_URL``, the API unreachable, too slow, answering an error or
something that is not a list of flow runs) raise :class:`SourceError`, whose text says what to do;
a flow the server has never heard of raises :class:`NoSuchFlow` (no health source yet).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tasks_lib.core import prefect_api
from tasks_lib.core.time import parse as parse_ts
from tasks_lib.core.time import utc
from tasks_lib.health.source import WindowRead
from tasks_lib.secrets.masking import mask_message
from tasks_lib.secrets.values import mask_credentials

if TYPE_CHECKING:
    import httpx  # imported when the API is first read: importing it costs ~0.2 s

PAGE_SIZE = 200            # the Prefect server's default (and largest accepted) limit
TIMEOUT_S = 10.0           # for the whole read, every page included
OK_STATES = ("COMPLETED",)
FAILED_STATES = ("FAILED", "CRASHED")
BODY_CHARS = 200           # of an error response read to show its start (masked, cut)


class SourceError(Exception):
    """The flow-run states cannot be read; ``str()`` says why and what to do."""


class NoSuchFlow(LookupError):
    """No flow of that name on the server (it never ran or was never deployed there)."""


def describe(flow: str | None, tags: Iterable[str] | None = None) -> str:
    """The source as shown in results: ``prefect flow t01-daily (tags t01, prod)``."""
    tag_list = list(tags or ())
    return f"prefect flow {flow}" + (f" (tags {', '.join(tag_list)})" if tag_list else "")


def flow_run_filter(flow: str, since: datetime, tags: Iterable[str] | None = None
                    ) -> dict[str, Any]:
    """The ``flow_runs/filter`` body without paging (checked against the server's schemas:
    prefect/server/schemas/filters.py, sorting.py; api/flow_runs.py ``read_flow_runs``)."""
    runs: dict[str, Any] = {
        "state": {"type": {"any_": [*OK_STATES, *FAILED_STATES]}},
        "start_time": {"after_": utc(since).isoformat()},  # at or after, microseconds kept
    }
    tag_list = list(tags or ())
    if tag_list:
        runs["tags"] = {"all_": tag_list}  # a run must carry all of them
    return {"sort": "START_TIME_DESC", "flows": {"name": {"any_": [flow]}}, "flow_runs": runs}


def read_window(flow: str, since: datetime, *, tags: Iterable[str] | None = None,
                version: str | None = None, environ: Mapping[str, str] | None = None,
                page_size: int = PAGE_SIZE, timeout: float = TIMEOUT_S,
                transport: httpx.BaseTransport | None = None) -> WindowRead:
    """Count the terminal flow runs of ``flow`` started at or after ``since`` (of ``version``
    when given). ``bytes_read`` is the size of the answers, ``lines_read`` the runs received.

    Raises SourceError when they cannot be read, NoSuchFlow when there are none because the
    server has no such flow."""
    if page_size < 1:
        raise ValueError("page_size must be positive")
    since = utc(since)
    env = os.environ if environ is None else environ
    api = (env.get("PREFECT_API_URL") or "").strip().rstrip("/")
    if not api:
        raise SourceError(f"PREFECT_API_URL is not set, so the runs of the Prefect flow {flow} "
                          "cannot be read: set it to the server's API URL (e.g. "
                          "http://127.0.0.1:4200/api) in the environment of clawback")
    body = flow_run_filter(flow, since, tags)
    errors: dict[str | None, int] = {}
    seen: set[str] = set()
    samples = failures = unreadable = other = bytes_read = received = 0
    with _Api(api, env, timeout, transport) as client:
        offset = 0
        while True:
            page = client.post_list("flow_runs/filter", {**body, "limit": page_size,
                                                         "offset": offset})
            bytes_read += client.last_size
            received += len(page)
            older = False
            for obj in page:
                run = _run(obj)
                if run is None:
                    unreadable += 1
                    continue
                run_id, started, state, message, versions = run
                if started < since:  # sorted newest first: the rest is older still
                    older = True
                    break
                if run_id in seen:
                    continue
                seen.add(run_id)
                if state not in OK_STATES and state not in FAILED_STATES:
                    continue  # a server that ignored the state filter: no outcome to count
                if version is not None and versions and version not in versions:
                    other += 1
                    continue
                samples += 1
                if state in FAILED_STATES:
                    failures += 1
                    errors[message] = errors.get(message, 0) + 1
            if older or len(page) < page_size:
                break
            offset += page_size
        if not received and not client.post_list(
                "flows/filter", {"flows": {"name": {"any_": [flow]}}, "limit": 1}):
            raise NoSuchFlow(f"no flow named {flow} on the Prefect server at {client.shown}")
    return WindowRead(samples, failures, tuple(errors.items()), unreadable, bytes_read, received,
                      other)


def _run(obj: object) -> tuple[str, datetime, str, str | None, set[str]] | None:
    """(id, time, state type, state message, versions named) of one flow run; None when it is
    not a readable flow run."""
    if not isinstance(obj, dict):
        return None
    state = obj.get("state") if isinstance(obj.get("state"), dict) else {}
    stype = state.get("type") or obj.get("state_type")
    started = parse_ts(obj.get("start_time")) or parse_ts(obj.get("expected_start_time"))
    run_id = obj.get("id")
    if not isinstance(stype, str) or started is None or not isinstance(run_id, str):
        return None
    message = state.get("message")
    if message is not None and not isinstance(message, str):
        message = str(message)
    versions: set[str] = set()
    params = obj.get("parameters")
    if isinstance(params, dict) and params.get("version") is not None:
        versions.add(str(params["version"]))
    for tag in obj.get("tags") or ():
        if isinstance(tag, str) and tag.startswith("version:") and len(tag) > len("version:"):
            versions.add(tag[len("version:"):])
    return run_id, started, stype.upper(), message or None, versions


MAX_ANSWER_BYTES = prefect_api.MAX_ANSWER_BYTES  # one page of flow runs is a few MiB at most

class _Api:
    """POSTs to the API within one deadline, every failure a SourceError saying what to do."""

    def __init__(self, api: str, env: Mapping[str, str], timeout: float,
                 transport: httpx.BaseTransport | None) -> None:
        self.api, self.timeout = api, timeout
        self.shown = mask_credentials(api)
        self.deadline = time.monotonic() + timeout
        self.last_size = 0
        self.client = prefect_api.client(headers={"Accept": "application/json"}, env=env,
                                         timeout=timeout, transport=transport)

    def __enter__(self) -> _Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def post_list(self, path: str, body: dict[str, Any]) -> list[Any]:
        import httpx

        left = self.deadline - time.monotonic()
        where = f"the Prefect API at {self.shown}"
        if left <= 0:
            raise SourceError(f"{where} did not give all flow runs within {self.timeout:g} s; "
                              "check the server's load, or narrow the window")
        try:
            resp, content = prefect_api.read_capped(self.client, "POST", f"{self.api}/{path}",
                                                    json=body, deadline=self.deadline,
                                                    limit=MAX_ANSWER_BYTES)
        except prefect_api.AnswerTooLarge:
            raise SourceError(f"{where} answered {path} with more than "
                              f"{MAX_ANSWER_BYTES >> 20} MiB; not read further: "
                              "check PREFECT_API_URL names a Prefect API") from None
        except httpx.TimeoutException:
            raise SourceError(f"{where} did not answer within {self.timeout:g} s; check that "
                              "the server is up and not overloaded") from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            why = mask_credentials(str(exc)) or type(exc).__name__
            raise SourceError(f"{where} cannot be reached ({why}); start the Prefect server "
                              "(prefect server start) or fix PREFECT_API_URL") from None
        self.last_size = len(content)
        code = resp.status_code
        if code in (401, 403):
            raise SourceError(f"{where} refused the request (HTTP {code}); set PREFECT_API_KEY "
                              "(or PREFECT_API_AUTH_STRING) to credentials it accepts")
        if code == 404:
            raise SourceError(f"{where} has no {path} endpoint (HTTP 404); PREFECT_API_URL must "
                              "be the API's URL, usually ending in /api")
        if not 200 <= code < 300:
            text = mask_message(content[:BODY_CHARS * 4].decode("utf-8", "replace"))  # masked, cut
            raise SourceError(f"{where} answered HTTP {code} to {path}"
                              + (f": {text}" if text else "")
                              + "; check the server's log and PREFECT_API_URL")
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        if not isinstance(data, list):
            raise SourceError(f"{where} answered {path} with something that is not a list; "
                              "check that PREFECT_API_URL points at a Prefect API")
        return data
