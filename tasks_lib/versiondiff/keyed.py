"""Parsed data compared key by key: the config, the registry entry, the runtime settings.

Each side is flattened to dotted paths (``data_sources.tushare.token``, ``universe[2]``, a key
that is not plain as ``["a key"]``: the spelling of the secret findings, so a finding's path is
the change's path), an empty mapping or list as a value of its own. Comments, formatting and
key order do not count; anchors and merge keys are resolved by the YAML loader first. A value
is shown masked when the secret scan finds a secret at its path, or when it equals a value
found secret elsewhere (an anchor's copy the scan does not walk twice), and every shown value
has token shapes and URL credentials masked. docs/design.md, "Diff".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tasks_lib.secrets import configs
from tasks_lib.secrets.configs import _join as join_key  # the findings' own path spelling
from tasks_lib.versiondiff.textdiff import MASK, mask_line, visible

__all__ = ["KeyChange", "diff_data", "flatten", "join_key"]


@dataclass(frozen=True)
class KeyChange:
    path: str
    change: str            # added | removed | changed
    old: str | None        # the value as JSON text, masked
    new: str | None


def flatten(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, leaf value) of ``data``; an empty container is a leaf."""
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from flatten(value, join_key(prefix, key))
    elif isinstance(data, list | tuple) and data:
        for i, value in enumerate(data):
            yield from flatten(value, f"{prefix}[{i}]")
    else:
        yield prefix or "(top level)", data


def _secret_paths(data: Any) -> set[str]:
    return {f.path for f in configs.scan(data)}


def _under(path: str, secret: set[str]) -> bool:
    return any(path == s or path.startswith((s + ".", s + "[")) for s in secret)


def _shown(value: Any, secret: bool) -> str:
    if secret:
        return json.dumps(MASK)
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return mask_line(visible(text))


def diff_data(old: Any, new: Any, prefix: str = "") -> tuple[KeyChange, ...]:
    """The key-by-key changes from ``old`` to ``new`` (either may be None: absent), in the
    order of the new side's keys, then the removed ones."""
    a = dict(flatten(old, prefix)) if old is not None else {}
    b = dict(flatten(new, prefix)) if new is not None else {}
    secret = _secret_paths(old) | _secret_paths(new)
    values = {_key(v) for p, v in [*a.items(), *b.items()] if _under(p, secret) and _key(v)}

    def hidden(path: str, value: Any) -> bool:
        return _under(path, secret) or (_key(value) in values and _key(value) is not None)

    changes: list[KeyChange] = []
    for path, value in b.items():
        if path not in a:
            changes.append(KeyChange(path, "added", None, _shown(value, hidden(path, value))))
        elif not _same(a[path], value):
            changes.append(KeyChange(path, "changed", _shown(a[path], hidden(path, a[path])),
                                     _shown(value, hidden(path, value))))
    for path, value in a.items():
        if path not in b:
            changes.append(KeyChange(path, "removed", _shown(value, hidden(path, value)), None))
    return tuple(changes)


def _key(value: Any) -> str | None:
    """A scalar's identity for "this value was found secret elsewhere" (short ones never)."""
    if isinstance(value, str | int | float) and not isinstance(value, bool) and len(str(value)) >= 4:
        return str(value)
    return None


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
