"""How deep a parsed document nests, judged by depth and not by the interpreter's recursion limit
(a library may raise it, and then a decoder accepts what later recursive walks of the value
cannot copy or compare)."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 64  # far beyond any registry or config; below what every recursive walk survives


def deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Does ``value`` nest dicts and lists more than ``limit`` deep? Iterative, and each
    container is looked into once (a YAML alias may make a value contain itself)."""
    todo = [(value, 1)]
    seen: set[int] = set()
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list) and id(item) not in seen:
            if depth > limit:
                return True
            seen.add(id(item))
            todo.extend((child, depth + 1)
                        for child in (item.values() if isinstance(item, dict) else item))
    return False
