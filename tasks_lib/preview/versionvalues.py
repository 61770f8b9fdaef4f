"""The one set of secret values a preview masks (docs/design.md, "Preview (the time machine)").

A value found secret anywhere in the version (its config, stored registry entry, runtime
settings) and the secret environment values set here are masked wherever else the summary or
``--show`` prints them: another file's text, a file's name, the snapshot message. The summary
and ``--show`` take them from here, so both mask the same values.
"""

from __future__ import annotations

from typing import Any

from tasks_lib.core import ids
from tasks_lib.core.errors import ClawbackError
from tasks_lib.core.workspace import Workspace
from tasks_lib.formats import config
from tasks_lib.preview.resolve import Resolved
from tasks_lib.secrets import masking
from tasks_lib.versiondiff.keyed import secret_values, shown_values

__all__ = ["config_bytes", "config_file", "mask_path", "version_values"]


def config_file(res: Resolved) -> str:
    """The version's config file, relative to its task directory (``config.yaml`` unless the
    stored entry names a safe other one)."""
    name = res.snapshot.registry_entry.get("configuration_file", "config.yaml")
    return name if isinstance(name, str) and ids.safe_relative_path(name) else "config.yaml"


def config_bytes(ws: Workspace, res: Resolved, name: str) -> tuple[str, bytes] | None:
    """(git mode, bytes) of the version's config, None when it has none."""
    path = f"{res.snapshot.location}/{name}"
    entry = next((f for f in res.snapshot.files if f.path == path), None)
    if entry is None:
        return None
    data = ws.git.show_file(res.snapshot.git_commit, path)
    return None if data is None else (entry.mode, data)


def _parsed(raw: tuple[str, bytes] | None) -> Any:
    if raw is None or raw[0] == "120000":
        return None
    try:
        return config.load(raw[1].decode("utf-8", "replace"), "config.yaml")
    except ClawbackError:
        return None  # shown as text, masked by its lines' findings


def version_values(ws: Workspace, res: Resolved,
                   raw: tuple[str, bytes] | None = None) -> list[str]:
    """The spelled secret values of version ``res`` and of this environment, longest first;
    ``raw``: the config's bytes when the caller has read them already."""
    if raw is None:
        raw = config_bytes(ws, res, config_file(res))
    snap = res.snapshot
    found = secret_values(snap.registry_entry, snap.runtime, _parsed(raw))
    return sorted({*masking.for_workspace(ws.root), *shown_values(found)}, key=len, reverse=True)


def mask_path(path: str, values: list[str]) -> str:
    """``path`` with each of ``values`` in it as ``***`` (``cache-***.txt``: still recognisable)."""
    for value in values:
        if value and value in path:
            path = path.replace(value, masking.MASK)
    return path
