"""The layout of a JSON text for the format-preserving writer (tasks_lib/formats/jsonfmt.py): nodes with
their spans and the text between members, the exact parser that reads them (and names the
position and fault of a malformed file), and the one-pass checked decode that usually makes the
exact parser unnecessary.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from json.decoder import JSONDecoder, scanstring
from json.scanner import NUMBER_RE  # type: ignore[attr-defined]
from typing import Any

from tasks_lib.core.errors import MalformedFile

WS = re.compile(r"[ \t\n\r]*")

@dataclass(slots=True)
class Node:
    """A parsed value and where its text is."""

    start: int
    end: int
    value: Any
    multiline: bool = False


@dataclass(slots=True)
class Container(Node):
    """An object or array, with the text between its members."""

    keys: list[str] = field(default_factory=list)  # objects: member keys, in order
    raw_keys: list[str] = field(default_factory=list)  # objects: key text as written
    seps: list[str] = field(default_factory=list)  # objects: text from key end to value start
    children: list[Node] = field(default_factory=list)  # member values
    leads: list[str] = field(default_factory=list)  # gap before member i ('{' or ',' to member)
    posts: list[str] = field(default_factory=list)  # gap after member i (to ',' or closing)
    expanded: bool = True  # False: the lists above are not read yet (Document._expand)


class ExactParser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.item_space: str | None = None  # whitespace after ',' in one-line containers
        self.key_sep: str | None = None  # first key separator seen, e.g. ': '

    def fail(self, pos: int, what: str, hint: str | None = None) -> MalformedFile:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        where = f"line {line}, column {col}" + (" (end of file)" if pos >= len(self.text) else "")
        return MalformedFile(
            f"{self.source}: invalid JSON at {where}: {what}",
            hint
            or "fix the file at that position (a missing or trailing comma, an unquoted "
            "key or string?) and re-run",
        )

    def ws(self, i: int) -> int:
        return WS.match(self.text, i).end()  # type: ignore[union-attr]

    def string(self, i: int) -> tuple[str, int]:
        try:
            return scanstring(self.text, i + 1, True)
        except json.JSONDecodeError as exc:
            raise self.fail(exc.pos, exc.msg.lower()) from None

    def value(self, i: int) -> Node:
        text, c = self.text, self.text[i : i + 1]
        if c in ("{", "["):
            return self.container(i, c == "{")
        if c == '"':
            s, end = self.string(i)
            return Node(i, end, s)
        m = NUMBER_RE.match(text, i)
        if m:
            integer, frac, exp = m.groups()
            try:
                num = float(integer + (frac or "") + (exp or "")) if frac or exp else int(integer)
            except ValueError:  # more digits than Python converts (sys.int_info)
                raise self.fail(i, "a number with too many digits",
                                "write it shorter, or as a string") from None
            return Node(i, m.end(), num)
        for literal, val in (("true", True), ("false", False), ("null", None)):
            if text.startswith(literal, i):
                return Node(i, i + len(literal), val)
        raise self.fail(i, "expected a value" if c else "unexpected end of file")

    def container(self, start: int, is_obj: bool) -> Container:
        text, close = self.text, "}" if is_obj else "]"
        node = Container(start, start, {} if is_obj else [])
        i = start + 1
        if text[self.ws(i) : self.ws(i) + 1] == close:
            node.end = self.ws(i) + 1
            node.multiline = text.find("\n", start, node.end) >= 0
            return node
        while True:  # i: just past '[', '{' or ','
            j = self.ws(i)
            node.leads.append(text[i:j])
            if text[j : j + 1] == close:
                raise self.fail(i - 1, f"trailing comma before '{close}'", "remove that comma")
            if is_obj:
                if text[j : j + 1] != '"':
                    raise self.fail(j, "expected a key in double quotes")
                key, k = self.string(j)
                if key in node.value:
                    raise self.fail(j, f"duplicate key {key!r}", f"keep one {key!r} and re-run")
                colon = self.ws(k)
                if text[colon : colon + 1] != ":":
                    raise self.fail(colon, f"expected ':' after key {key!r}")
                key_start, j = j, self.ws(colon + 1)
                node.keys.append(key)
                node.raw_keys.append(text[key_start:k])
                node.seps.append(text[k:j])
                if self.key_sep is None:
                    self.key_sep = text[k:j]
            child = self.value(j)
            node.children.append(child)
            if is_obj:
                node.value[node.keys[-1]] = child.value
            else:
                node.value.append(child.value)
            e = self.ws(child.end)
            node.posts.append(text[child.end : e])
            if text[e : e + 1] == ",":
                i = e + 1
            elif text[e : e + 1] == close:
                node.end = e + 1
                break
            else:
                raise self.fail(e, f"expected ',' or '{close}'")
        node.multiline = text.find("\n", start, node.end) >= 0
        if not node.multiline and len(node.leads) > 1 and self.item_space is None:
            self.item_space = node.leads[1]
        return node

    def parse(self) -> tuple[str, Node, str]:
        text = self.text
        i = self.ws(1 if text.startswith("\ufeff") else 0)
        if i >= len(text):
            raise self.fail(i, "the file is empty", "write a JSON object into it and re-run")
        root = self.value(i)
        end = self.ws(root.end)
        if end < len(text):
            raise self.fail(end, "extra data after the JSON value")
        return text[:i], root, text[root.end :]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Never changed after import. CHECKING accepts exactly what _Parser accepts (duplicate keys and
# NaN/Infinity refused); _SCAN reads text CHECKING has already passed.
CHECKING = JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)
SCAN = JSONDecoder().scan_once


def checked_decode(text: str, start: int) -> tuple[Any, int] | None:
    """The value at ``start`` and its end, when the text is valid JSON up to its end."""
    try:
        value, end = CHECKING.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None
    return (value, end) if WS.match(text, end).end() == len(text) else None  # type: ignore[union-attr]
