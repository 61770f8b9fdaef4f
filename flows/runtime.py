"""How a CLI command runs its flow: on the Prefect server in PREFECT_API_URL, on Prefect's
embedded temporary server when none is configured, or — when the configured API is unreachable —
the same steps without the orchestrator (docs/design.md, "Orchestration"), said on stderr and
recorded in the audit log.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Mode:
    kind: str          # "server" | "embedded" | "none"
    detail: str = ""


def quiet_defaults() -> None:
    """Settings that keep short CLI flows fast and quiet (the operator's own env wins)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    # a cold temporary server takes 17-18 s on two busy cores; Prefect's default wait is 20 s
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


class _ExpectedFailures(logging.Filter):
    """Keep clawback's own, expected failures (bad input, refusals, failed verifications) off
    the console: the CLI reports them with a message and a hint. The Prefect API still gets them."""

    def filter(self, record: logging.LogRecord) -> bool:
        from tasks_lib.core.errors import ClawbackError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ClawbackError):
            return False
        if record.levelno >= logging.ERROR and record.name.startswith("prefect."):
            text = record.getMessage()  # "Finished in state Failed(... SecretsFound: ...)"
            return not any(f"{name}:" in text for name in _expected_names())
        return True


def _expected_names() -> set[str]:
    from tasks_lib.core.errors import ClawbackError

    names, todo = set(), [ClawbackError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


def quiet_console() -> None:
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, _ExpectedFailures) for f in handler.filters
        ):
            handler.addFilter(_ExpectedFailures())


def choose_mode() -> Mode:
    wanted = os.environ.get("CLAWBACK_ORCHESTRATOR", "prefect").lower()
    if wanted in ("none", "off", "plain"):
        return Mode("none", "CLAWBACK_ORCHESTRATOR=none")
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return Mode("embedded", "Prefect's temporary local server")
    import httpx

    from tasks_lib.core import prefect_api

    try:
        resp = prefect_api.health(url, 3)
        if resp.status_code == 200:
            return Mode("server", url)
        problem = f"answered HTTP {resp.status_code}"
    except httpx.HTTPError as exc:
        problem = type(exc).__name__
    return Mode("none", f"Prefect API at {url} is unreachable ({problem})")


def run(flow_name: str, plain: Callable[..., R], **params: Any) -> R:
    """Run the flow ``flow_name`` (flows.prefect_flows) with ``params`` under Prefect, or the same
    composition ``plain(**params)`` without it when the orchestrator is off or unreachable."""
    quiet_defaults()
    mode = choose_mode()
    if mode.kind == "none":
        if mode.detail != "CLAWBACK_ORCHESTRATOR=none":
            print(f"clawback: {mode.detail}; running the same steps without the orchestrator "
                  "(recorded in the audit log)", file=sys.stderr)
        from flows.steps import without_orchestrator

        with without_orchestrator(mode.detail):
            return plain(**params)
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.prefect_flows import BY_NAME

    quiet_console()
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return BY_NAME[flow_name](**params)
