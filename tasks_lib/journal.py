"""Explicit undo: each state-changing step registers how to put things back.

``undo()`` runs the registered actions newest first and keeps going past a failing one, so one
broken undo never strands the others; it returns what could not be undone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tasks_lib.errors import ClawbackError


@dataclass
class Journal:
    actions: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def add(self, description: str, undo: Callable[[], None]) -> None:
        self.actions.append((description, undo))

    def restore_file_on_undo(self, path: Path) -> None:
        """Remember ``path``'s bytes (or its absence) now; undo writes them back."""
        original = path.read_bytes() if path.exists() else None

        def put_back() -> None:
            if original is None:
                path.unlink(missing_ok=True)
            else:
                tmp = path.with_name(f".{path.name}.clawback-undo")
                tmp.write_bytes(original)
                tmp.replace(path)

        self.add(f"restore {path.name}", put_back)

    def on_success(self, cleanup: Callable[[], None]) -> None:
        """Something to tidy once the whole operation succeeded (e.g. a saved copy)."""
        self.cleanups.append(cleanup)

    def commit(self) -> None:
        """The operation succeeded: forget the undo actions, run the cleanups."""
        self.actions.clear()
        for cleanup in self.cleanups:
            try:
                cleanup()
            except OSError:
                pass  # tidying is best effort; the operation itself is complete
        self.cleanups.clear()

    def undo(self) -> list[str]:
        failures: list[str] = []
        while self.actions:
            description, action = self.actions.pop()
            try:
                action()
                self.done.append(description)
            except (ClawbackError, OSError) as exc:
                failures.append(f"{description}: {exc}")
        return failures
