"""What the health check does about a breach (issue 4 item 2), decided from the registry entry
alone: roll back to the newest stable, non-quarantined version older than the current one
(tasks_lib/health/stable.py), at most once per task per interval (default an hour), else escalate.
Automatic rollbacks are the ``rollback_history`` records whose reason starts ``automatic:``, so
the limit holds across processes and machines (the registry is committed). Plain Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from tasks_lib.health import stable
from tasks_lib.health.source import parse_ts

AUTO_REASON = "automatic:"
DEFAULT_MIN_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class Decision:
    action: Literal["rollback", "escalate", "none"]
    target: str | None = None
    why: str = ""


def reason_for(rate: float, threshold: float, samples: int, failures: int, version: str) -> str:
    return (f"{AUTO_REASON} error rate {rate:.1%} ({failures}/{samples} runs of {version}) "
            f"above the threshold {threshold:g}")


def last_automatic(entry: dict[str, Any]) -> datetime | None:
    stamps = [parse_ts(r.get("rolled_back_at")) for r in entry.get("rollback_history") or []
              if isinstance(r, dict) and str(r.get("reason") or "").startswith(AUTO_REASON)]
    return max((s for s in stamps if s is not None), default=None)


def decide(entry: dict[str, Any], verdict: str, current: str | None, now: datetime,
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
