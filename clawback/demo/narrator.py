"""What both halves of ``clawback demo`` share: the story's state and its printer.

clawback/demo/story.py (adopt, snapshots, tamper check, manual rollback) and
clawback/demo/health_story.py (promote, a bad release, automatic rollback) both tell their steps
through one ``Story``; it lives here so neither half imports the other's internals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from tasks_lib.core.errors import ClawbackError


@dataclass
class DemoResult:
    ok: bool = True
    workspace: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""


class Story:
    """Prints each step, times it and records whether it went as expected."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.result = DemoResult()

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def step(self, title: str, fn: Callable[[], Any], expect_ok: bool = True) -> Any:
        self.say(f"\n== {title}")
        started = time.perf_counter()
        value: Any = None
        try:
            value = fn()
            ok = True
        except ClawbackError as exc:
            value, ok = exc, False
        seconds = time.perf_counter() - started
        passed = ok == expect_ok
        self.result.ok &= passed
        self.result.steps.append({"step": title, "seconds": round(seconds, 2), "passed": passed})
        mark = "ok" if passed else "UNEXPECTED"
        self.say(f"   [{mark}] {seconds:.2f}s")
        return value

    def show(self, value: Any, fn: Callable[[Any], str]) -> None:
        """A step's value rendered by ``fn``, or the error it ended with."""
        self.say(f"   error: {value}" if isinstance(value, Exception) else fn(value))
