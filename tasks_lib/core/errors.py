"""One exception hierarchy; exit codes are mapped here and nowhere else (docs/design.md, "Exit
codes").

0 success; 1 the operation ran and failed or found a problem; 2 bad input; 3 refused because
of a conflict. Every message says what happened and what to do next (``hint``).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CONFLICT = 3


class ClawbackError(Exception):
    """Base: the operation ran and failed (exit 1)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  next: {self.hint}"


class BadInput(ClawbackError):
    """Invalid id, version, tag, flag or malformed file (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class NotFound(BadInput):
    """Unknown task, version or tag (exit 2)."""


class MalformedFile(BadInput):
    """A workspace file (registry, config) cannot be read as its format says (exit 2)."""


class Conflict(ClawbackError):
    """Refused: lock held, tag exists, state would be lost (exit 3)."""

    exit_code = EXIT_CONFLICT


class SecretsFound(Conflict):
    """A plaintext secret would land in a snapshot (exit 3). Carries key paths, never values."""

    def __init__(self, message: str, paths: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.paths = paths


class UnstorableName(BadInput):
    """A file of the task has a name git will not store (exit 2). Carries the paths."""

    def __init__(self, message: str, paths: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.paths = paths


class OperationFailed(ClawbackError):
    """A step ran and failed (exit 1); ``step`` names it."""

    def __init__(self, message: str, step: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.step = step


class VerificationFailed(ClawbackError):
    """A verification found a mismatch (exit 1)."""


class TransientError(ClawbackError):
    """A failure a retry can help with (network, a busy remote). Only these are retried."""


class GitError(ClawbackError):
    """git refused or failed (exit 1); the command's stderr tail is in the message."""


class DependencyError(ClawbackError):
    """Requirements could not be resolved or installed (exit 1)."""


def exit_code_for(exc: BaseException) -> int:
    """The one place that maps an exception to a process exit code."""
    if isinstance(exc, ClawbackError):
        return exc.exit_code
    return EXIT_FAILED
