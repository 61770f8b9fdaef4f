"""Parsed data compared key by key: the config, the registry entry, the runtime settings.

Each side is flattened to dotted paths (``data_sources.tushare.token``, ``universe[2]``, a key
that is not plain as ``["a key"]``: the spelling of the secret findings, so a finding's path is
the change's path), an empty mapping or list as a value of its own. Comments, formatting and
key order do not count; anchors and merge keys are resolved by the YAML loader first. A value
is shown masked when the secret scan finds a secret at its path, or when it equals a value
found secret elsewhere in the same diff (an anchor's copy the scan does not walk twice, the
registry's ``clawback.smoke`` shown again as ``runtime.smoke``), and every shown value has those
values, private-key blocks (one held as a list or mapping of lines too: every member), token
shapes, URL and command-line credentials masked. docs/design.md, "Diff".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tasks_lib.secrets import configs
from tasks_lib.secrets.blocks import block_members
from tasks_lib.secrets.commands import values_in
from tasks_lib.secrets.configs import _join as join_key  # the findings' own path spelling
from tasks_lib.versiondiff.textdiff import MASK, mask_line, visible

__all__ = ["KeyChange", "diff_data", "flatten", "join_key", "secret_values", "shown_values"]


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
    return {f.path for f in configs.scan(data)} | _block_paths(data)


def _block_paths(data: Any, prefix: str = "") -> set[str]:
    """The paths of every element of a private-key block held as a list or mapping of lines
    (the scan reports its BEGIN element only; the body lines are key material too)."""
    if isinstance(data, dict):
        keys, items = list(data), list(data.values())
        paths = [join_key(prefix, k) for k in keys]
    elif isinstance(data, list | tuple):
        items = list(data)
        paths = [f"{prefix}[{i}]" for i in range(len(items))]
    else:
        return set()
    found = {paths[i] for i in block_members(items)}
    for path, item in zip(paths, items, strict=True):
        found |= _block_paths(item, path)
    return found


def _under(path: str, secret: set[str]) -> bool:
    return any(path == s or path.startswith((s + ".", s + "[")) for s in secret)


def secret_values(*docs: Any) -> set[str]:
    """The values the secret scan finds in ``docs`` (parsed configs, registry entries, runtime
    settings): each scalar at or under a secret path, and each command-line credential inside a
    string. One diff masks them in every section, wherever they appear again (``runtime.smoke``
    is ``clawback.smoke`` once more)."""
    found: set[str] = set()
    for doc in docs:
        if doc is None:
            continue
        secret = _secret_paths(doc)
        for path, value in flatten(doc):
            if _under(path, secret) and _key(value):
                found.add(str(value))
            if isinstance(value, str):
                found |= values_in([value])
    return found


def shown_values(values: set[str] | frozenset[str]) -> tuple[str, ...]:
    """``values`` as a line may spell them (raw, as JSON text), longest first; values shorter
    than ``MIN_SHARED_CHARS`` are matched as whole values only, never inside other text."""
    spelled = {v for v in values if len(v) >= MIN_SHARED_CHARS}
    spelled |= {json.dumps(v, ensure_ascii=False)[1:-1] for v in spelled}
    spelled |= {json.dumps(v)[1:-1] for v in spelled}
    return tuple(sorted(spelled, key=len, reverse=True))


MIN_SHARED_CHARS = 6


def _shown(value: Any, secret: bool, spelled: tuple[str, ...] = ()) -> str:
    if secret:
        return json.dumps(MASK)
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return mask_line(visible(text), spelled)


def diff_data(old: Any, new: Any, prefix: str = "",
              values: set[str] | frozenset[str] = frozenset()) -> tuple[KeyChange, ...]:
    """The key-by-key changes from ``old`` to ``new`` (either may be None: absent), in the
    order of the new side's keys, then the removed ones; ``values``: found secret elsewhere in
    the same output (a value equal to one is ``"***"``, one inside a string is masked there)."""
    a = dict(flatten(old, prefix)) if old is not None else {}
    b = dict(flatten(new, prefix)) if new is not None else {}
    secret = _secret_paths(old) | _secret_paths(new)
    known = set(values) | secret_values(old, new)
    spelled = shown_values(known)

    def hidden(path: str, value: Any) -> bool:
        return _under(path, secret) or (_key(value) in known and _key(value) is not None)

    def shown(path: str, value: Any) -> str:
        return _shown(value, hidden(path, value), spelled)

    changes: list[KeyChange] = []
    for path, value in b.items():
        if path not in a:
            changes.append(KeyChange(path, "added", None, shown(path, value)))
        elif not _same(a[path], value):
            changes.append(KeyChange(path, "changed", shown(path, a[path]), shown(path, value)))
    for path, value in a.items():
        if path not in b:
            changes.append(KeyChange(path, "removed", shown(path, value), None))
    return tuple(changes)


def _key(value: Any) -> str | None:
    """A scalar's identity for "this value was found secret elsewhere" (short ones never)."""
    if isinstance(value, str | int | float) and not isinstance(value, bool) and len(str(value)) >= 4:
        return str(value)
    return None


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
