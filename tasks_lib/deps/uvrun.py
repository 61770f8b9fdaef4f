"""Running uv: finding the executable, and turning a failed run into an error that says why.

Every call runs uv with an argument list, no stdin and ``UV_NO_PROGRESS=1``. A non-zero exit
becomes a TransientError when uv's stderr points at the network (and not at resolution), else a
DependencyError; either message quotes uv's stderr (ANSI codes stripped, credentials in URLs
masked, at most 15 lines) and never the environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tasks_lib.core.errors import DependencyError, TransientError
from tasks_lib.secrets import masking

__all__ = ["run_uv", "uv_bin"]

_HINT_NETWORK = "a network problem: check connectivity or the index URL and retry"
_MAX_LINES = 15


def uv_bin() -> str:
    """The uv executable: the one shipped with the ``uv`` package, else uv on PATH."""
    try:
        from uv import find_uv_bin

        return os.fsdecode(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found:
        return found
    raise DependencyError(
        "uv was not found (needed to lock and sync task environments)",
        "install it into clawback's environment: `pip install uv`",
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RESOLUTION = re.compile(
    r"no solution found|not found in the (package registry|provided package locations)"
    r"|unsatisfiable|hash mismatch|file not found|no such file|failed to parse|invalid"
    r"|client error \(4\d\d|externally managed|requires-python|doesn't match|does not match",
    re.IGNORECASE,
)
_NETWORK = re.compile(
    r"failed to fetch|error sending request|connection (refused|reset|closed|aborted)"
    r"|connect error|timed out|timeout|dns error|failed to lookup address|name or service not known"
    r"|temporary failure in name resolution|network is unreachable|server error \(5\d\d"
    r"|\b5\d\d (internal server error|bad gateway|service unavailable|gateway timeout)"
    r"|broken pipe|tls handshake|unexpected eof",
    re.IGNORECASE,
)


def _uv_env(environ: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env["UV_NO_PROGRESS"] = "1"
    return env


def _stderr_excerpt(stderr: str, environ: Mapping[str, str] | None = None) -> str:
    values = masking.secret_values(environ)
    lines = [
        masking.mask(_ANSI.sub("", line), values=values).rstrip() for line in stderr.splitlines()
    ]
    lines = [line for line in lines if line.strip() and not line.startswith("Using Python ")]
    if len(lines) > _MAX_LINES:
        lines = lines[:_MAX_LINES] + [f"  ... ({len(lines) - _MAX_LINES} more lines)"]
    return "\n".join("  " + line for line in lines) or "  (uv printed nothing)"


def _failure(what: str, proc: subprocess.CompletedProcess[str], hint: str,
             environ: Mapping[str, str] | None = None) -> Exception:
    excerpt = _stderr_excerpt(proc.stderr or "", environ)
    message = f"{what} failed (uv exit {proc.returncode}):\n{excerpt}"
    if not _RESOLUTION.search(proc.stderr or "") and _NETWORK.search(proc.stderr or ""):
        return TransientError(message, _HINT_NETWORK + "; " + hint)
    return DependencyError(message, hint)


def run_uv(
    args: list[str],
    *,
    what: str,
    hint: str,
    environ: Mapping[str, str] | None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``uv ARGS``; a failure raises DependencyError/TransientError naming ``what``."""
    cmd = [uv_bin(), *args]
    try:
        proc = subprocess.run(
            cmd,
            env=_uv_env(environ),
            cwd=os.fspath(cwd) if cwd is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise TransientError(f"{what} timed out after {timeout:g}s", hint) from None
    except OSError as exc:
        raise DependencyError(f"{what}: could not run uv ({exc.strerror or exc})", hint) from None
    if proc.returncode != 0:
        raise _failure(what, proc, hint, environ)
    return proc
