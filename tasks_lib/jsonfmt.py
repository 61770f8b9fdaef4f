"""Format-preserving JSON: parse a document, edit a copy of its value, render it back.

Every subtree that is *strictly* equal to the original at the same path (same types, so
``1``, ``1.0`` and ``True`` differ; same keys in the same order) is emitted with its exact
original text. A changed container keeps its original layout: one-line stays one-line; a
multi-line one keeps the whitespace around its members, and new members copy their siblings.
New containers are multi-line (the document's indent unit) under a multi-line parent, one-line
under a one-line parent. Line endings and the trailing newline are kept as found.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from json.decoder import scanstring
from json.scanner import NUMBER_RE  # type: ignore[attr-defined]
from typing import Any

from tasks_lib.errors import MalformedFile

_WS = re.compile(r"[ \t\n\r]*")
_SHORT_LIST = 72  # a new list of scalars up to this many characters may stay on one line


@dataclass(slots=True)
class _Node:
    """A parsed value and where its text is."""

    start: int
    end: int
    value: Any
    multiline: bool = False


@dataclass(slots=True)
class _Container(_Node):
    """An object or array, with the text between its members."""

    keys: list[str] = field(default_factory=list)  # objects: member keys, in order
    raw_keys: list[str] = field(default_factory=list)  # objects: key text as written
    seps: list[str] = field(default_factory=list)  # objects: text from key end to value start
    children: list[_Node] = field(default_factory=list)  # member values
    leads: list[str] = field(default_factory=list)  # gap before member i ('{' or ',' to member)
    posts: list[str] = field(default_factory=list)  # gap after member i (to ',' or closing)


def strict_equal(a: Any, b: Any) -> bool:
    """Equality where types must match exactly (``1 != 1.0 != True``) and key order counts."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)  # tells -0.0 from 0.0
    return bool(a == b)


class _Parser:
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
        return _WS.match(self.text, i).end()  # type: ignore[union-attr]

    def string(self, i: int) -> tuple[str, int]:
        try:
            return scanstring(self.text, i + 1, True)
        except json.JSONDecodeError as exc:
            raise self.fail(exc.pos, exc.msg.lower()) from None

    def value(self, i: int) -> _Node:
        text, c = self.text, self.text[i : i + 1]
        if c in ("{", "["):
            return self.container(i, c == "{")
        if c == '"':
            s, end = self.string(i)
            return _Node(i, end, s)
        m = NUMBER_RE.match(text, i)
        if m:
            integer, frac, exp = m.groups()
            num = float(integer + (frac or "") + (exp or "")) if frac or exp else int(integer)
            return _Node(i, m.end(), num)
        for literal, val in (("true", True), ("false", False), ("null", None)):
            if text.startswith(literal, i):
                return _Node(i, i + len(literal), val)
        raise self.fail(i, "expected a value" if c else "unexpected end of file")

    def container(self, start: int, is_obj: bool) -> _Container:
        text, close = self.text, "}" if is_obj else "]"
        node = _Container(start, start, {} if is_obj else [])
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

    def parse(self) -> tuple[str, _Node, str]:
        text = self.text
        i = self.ws(1 if text.startswith("\ufeff") else 0)
        if i >= len(text):
            raise self.fail(i, "the file is empty", "write a JSON object into it and re-run")
        root = self.value(i)
        end = self.ws(root.end)
        if end < len(text):
            raise self.fail(end, "extra data after the JSON value")
        return text[:i], root, text[root.end :]


def _copy(value: Any) -> Any:
    """Deep copy of parsed JSON data (much faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _line_indent(indent: str, gap: str) -> str:
    """Indentation of the line we are on after emitting ``gap`` on a line indented ``indent``."""
    if "\n" not in gap:
        return indent
    tail = gap.rsplit("\n", 1)[1]
    return tail[: len(tail) - len(tail.lstrip(" \t"))]


def _detect_indent(text: str) -> str:
    """The indent unit: a tab if lines are tab-indented, else the smallest space indent."""
    widths = []
    for line in text.split("\n", 500)[1:500]:  # the first lines tell; big files stay fast
        body = line.lstrip(" \t")
        lead = line[: len(line) - len(body)]
        if not body or not lead:
            continue
        if lead.startswith("\t"):
            return "\t"
        widths.append(len(lead))
    return " " * min(widths) if widths else "  "


class Document:
    """A parsed JSON text that can render an edited value in the original's formatting."""

    def __init__(self, text: str, source: str = "<json>") -> None:
        parser = _Parser(text, source)
        self.text = text
        self._prefix, self._root, self._suffix = parser.parse()
        first_nl = text.find("\n")
        self.newline = "\r\n" if first_nl > 0 and text[first_nl - 1] == "\r" else "\n"
        self.indent_unit = _detect_indent(text)
        key_sep = parser.key_sep if parser.key_sep and "\n" not in parser.key_sep else ": "
        item_space = parser.item_space if parser.item_space is not None else " "
        self._seps = ("," + item_space, key_sep)

    @cached_property
    def value(self) -> Any:
        """The plain data (a copy: editing it does not change what counts as "original")."""
        return self.copy_value()

    def copy_value(self) -> Any:
        """A fresh deep copy of the value, to edit and pass to :meth:`render`."""
        return _copy(self._root.value)

    def render(self, new_value: Any) -> str:
        """Serialise ``new_value``, reusing the original text wherever it is unchanged."""
        indent = _line_indent("", self._prefix.lstrip("\ufeff"))
        return self._prefix + self._emit(new_value, self._root, indent, True, False) + self._suffix

    def _emit(
        self, value: Any, node: _Node | None, indent: str, multiline: bool, inline_lists: bool
    ) -> str:
        if node is not None and strict_equal(value, node.value):
            return self.text[node.start : node.end]
        if isinstance(value, dict | list):
            if isinstance(node, _Container) and type(node.value) is type(value) and node.children:
                if value:  # else: emptied, rendered as [] or {} below
                    return self._restyle(value, node, indent)
            return self._new(value, indent, multiline, inline_lists)
        return json.dumps(value, ensure_ascii=False)

    def _new(self, value: dict | list, indent: str, multiline: bool, inline_lists: bool) -> str:
        flat = json.dumps(value, ensure_ascii=False, separators=self._seps)
        if not value or not multiline:
            return flat
        scalars = isinstance(value, list) and not any(isinstance(v, dict | list) for v in value)
        if inline_lists and scalars and len(flat) <= _SHORT_LIST:
            return flat
        inner = indent + self.indent_unit
        items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
        parts = []
        for key, item in items:
            head = "" if key is None else json.dumps(key, ensure_ascii=False) + self._seps[1]
            parts.append(
                self.newline + inner + head + self._emit(item, None, inner, True, inline_lists)
            )
        brackets = "{}" if isinstance(value, dict) else "[]"
        return brackets[0] + ",".join(parts) + self.newline + indent + brackets[1]

    def _restyle(self, value: dict | list, node: _Container, indent: str) -> str:
        """Re-emit a changed container after the layout of ``node`` (same type, non-empty)."""
        is_obj, n = isinstance(value, dict), len(node.children)
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        index = {key: k for k, key in enumerate(node.keys)}
        inline_lists = any(
            isinstance(c.value, list) and c.value and not c.multiline for c in node.children
        )
        if node.multiline:
            last = node.leads[-1]
            new_lead = last if "\n" in last else self.newline + indent + self.indent_unit
        else:
            new_lead = node.leads[-1] if n > 1 else self._seps[0][1:]
        out = ["{" if is_obj else "["]
        for j, (key, item) in enumerate(items):
            lead = node.leads[j] if j < n else new_lead
            head, template = "", None
            if is_obj and key in index:
                k = index[key]
                head, template = node.raw_keys[k] + node.seps[k], node.children[k]
            elif is_obj:
                head = json.dumps(key, ensure_ascii=False) + node.seps[-1]
                template = self._sibling(node, item)
            else:
                template = self._item_template(node, j, item)
            item_indent = _line_indent(_line_indent(indent, lead), head)
            out.append(
                lead + head + self._emit(item, template, item_indent, node.multiline, inline_lists)
            )
            if j < len(items) - 1:
                out.append((node.posts[j] if j < n - 1 else "") + ",")
        out.append(node.posts[-1] + ("}" if is_obj else "]"))
        return "".join(out)

    @staticmethod
    def _item_template(node: _Container, j: int, item: Any) -> _Node | None:
        """The original list item to reuse or imitate: same index, an equal item, a sibling."""
        children = node.children
        if j < len(children) and strict_equal(item, children[j].value):
            return children[j]
        equal = next((c for c in children if strict_equal(item, c.value)), None)
        if equal is not None:
            return equal
        return children[j] if j < len(children) else Document._sibling(node, item)

    @staticmethod
    def _sibling(node: _Container, item: Any) -> _Node | None:
        """For a new member: the last sibling, when every sibling is a container of its type."""
        if isinstance(item, dict | list) and all(
            type(c.value) is type(item) for c in node.children
        ):
            return node.children[-1]
        return None


def parse(text: str, source: str = "<json>") -> Document:
    """Parse JSON ``text``; ``source`` names it in error messages. Raises MalformedFile."""
    try:
        return Document(text, source)
    except RecursionError:
        raise MalformedFile(
            f"{source}: JSON nested too deeply", "flatten the nesting and re-run"
        ) from None
