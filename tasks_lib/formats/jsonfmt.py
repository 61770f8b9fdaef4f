"""Format-preserving JSON: parse a document, edit a copy of its value, render it back.

Every subtree that is *strictly* equal to the original at the same path (same types, so
``1``, ``1.0`` and ``True`` differ; same keys in the same order) is emitted with its exact
original text. A changed container keeps its original layout: one-line stays one-line; a
multi-line one keeps the whitespace around its members, and new members copy their siblings.
New containers are multi-line (the document's indent unit) under a multi-line parent, one-line
under a one-line parent. Line endings and the trailing newline are kept as found.

Parsing is lazy so that a large document costs little when one member changes: the text is
checked and decoded in one pass of the C decoder (with duplicate keys and NaN/Infinity refused),
and a container's layout (the text between its members) is read only when that container is
re-emitted. Text that the C decoder refuses is parsed again by the exact parser (jsonparse), which
names the position and the fault.

One module because the renderer, the lazy layout reader and the edit share one node model
and one invariant (an equal subtree is emitted as its original text); the exact parser that names
faults is apart, in jsonparse.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from functools import cached_property
from json.decoder import scanstring
from typing import Any

from tasks_lib.core.errors import MalformedFile
from tasks_lib.formats import nesting
from tasks_lib.formats.jsonparse import SCAN as _SCAN
from tasks_lib.formats.jsonparse import WS as _WS
from tasks_lib.formats.jsonparse import Container as _Container
from tasks_lib.formats.jsonparse import ExactParser as _Parser
from tasks_lib.formats.jsonparse import Node as _Node
from tasks_lib.formats.jsonparse import checked_decode as _checked_decode

_SHORT_LIST = 72  # a new list of scalars up to this many characters may stay on one line
# a comma whose next member starts on the same line: every one-line container with two or more
# members has one (commas inside strings match too; they only cost a look)
_SAME_LINE_COMMA = re.compile(r",(?=[ \t\r]*[^ \t\r\n])")


def strict_equal(a: Any, b: Any) -> bool:
    """Equality where types must match exactly (``1 != 1.0 != True``) and key order counts."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)  # tells -0.0 from 0.0
    return bool(a == b)


def _copy(value: Any, depth: int | None = None) -> Any:
    """Copy of parsed JSON data (much faster than copy.deepcopy); with ``depth``, containers below
    that many levels are shared, not copied."""
    if depth == 0:
        return value
    below = None if depth is None else depth - 1
    if isinstance(value, dict):
        return {k: _copy(v, below) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v, below) for v in value]
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
        self.text = text
        self.source = source
        start = _WS.match(text, 1 if text.startswith("\ufeff") else 0).end()  # type: ignore[union-attr]
        decoded = _checked_decode(text, start)
        # (first key separator, first one-line item space) when the exact parser ran
        self._parsed_seps: tuple[str | None, str | None] | None = None
        if decoded is None:  # invalid: the exact parser says where (or, rarely, accepts it)
            parser = _Parser(text, source)
            self._prefix, self._root, self._suffix = parser.parse()
            self._parsed_seps = (parser.key_sep, parser.item_space)
        else:
            value, end = decoded
            self._prefix, self._suffix = text[:start], text[end:]
            self._root = self._node(start, end, value)
        if nesting.deeper_than(self._root.value):
            raise RecursionError  # parse() says "nested too deeply", whatever the interpreter's limit
        first_nl = text.find("\n")
        self.newline = "\r\n" if first_nl > 0 and text[first_nl - 1] == "\r" else "\n"

    @cached_property
    def value(self) -> Any:
        """The plain data (a copy: editing it does not change what counts as "original")."""
        return self.copy_value()

    def copy_value(self, depth: int | None = None) -> Any:
        """A fresh copy of the value, to edit and pass to :meth:`render`.

        With ``depth``, only the containers of the top ``depth`` levels are copied; deeper ones
        are the document's own: replace them, never edit them in place (they are what the text
        says). An unchanged one is then recognised by identity, without comparing it.
        """
        if depth is None and self._parsed_seps is None:
            return _SCAN(self.text, self._root.start)[0]  # the C decoder copies fastest
        return _copy(self._root.value, depth)

    def render(self, new_value: Any) -> str:
        """Serialise ``new_value``, reusing the original text wherever it is unchanged."""
        indent = _line_indent("", self._prefix.lstrip("\ufeff"))
        try:
            body = self._emit(new_value, self._root, indent, True, False)
        except RecursionError:  # the decoder nests deeper than these recursive functions
            raise MalformedFile(f"{self.source}: JSON nested too deeply",
                                "flatten the nesting and re-run") from None
        return self._prefix + body + self._suffix

    # -- reading the layout on demand ----------------------------------------------------------

    def _node(self, start: int, end: int, value: Any) -> _Node:
        if isinstance(value, dict | list):
            multiline = self.text.find("\n", start, end) >= 0
            return _Container(start, end, value, multiline, expanded=False)
        return _Node(start, end, value)

    def _expand(self, node: _Container) -> None:
        """Read the text between the members of a container the decoder has passed."""
        if node.expanded:
            return
        text, ws = self.text, _WS.match
        keys: list[str] = []
        raw_keys: list[str] = []
        seps: list[str] = []
        children: list[_Node] = []
        leads: list[str] = []
        posts: list[str] = []
        i, last = node.start + 1, len(node.value) - 1
        members = node.value.items() if isinstance(node.value, dict) else enumerate(node.value)
        for n, (key, item) in enumerate(members):
            j = ws(text, i).end()  # type: ignore[union-attr]
            leads.append(text[i:j])
            if isinstance(key, str):
                k = scanstring(text, j + 1, True)[1]
                v = ws(text, ws(text, k).end() + 1).end()  # type: ignore[union-attr]
                keys.append(key)
                raw_keys.append(text[j:k])
                seps.append(text[k:v])
                j = v
            if n < last:
                end = _SCAN(text, j)[1]
            else:  # the last member ends where the whitespace before the bracket starts
                end = j + len(text[j : node.end - 1].rstrip(" \t\n\r"))
            children.append(self._node(j, end, item))  # shares the parent's value
            e = ws(text, end).end()  # type: ignore[union-attr]
            posts.append(text[end:e])
            i = e + 1  # past the ','
        # assigned at once: a document shared by several readers never shows half a layout
        node.keys, node.raw_keys, node.seps = keys, raw_keys, seps
        node.children, node.leads, node.posts = children, leads, posts
        node.expanded = True

    @cached_property
    def indent_unit(self) -> str:
        return _detect_indent(self.text)

    @cached_property
    def _key_sep(self) -> str:
        """The document's first key separator (e.g. ``": "``), for new members."""
        if self._parsed_seps is not None:
            sep = self._parsed_seps[0]
        else:
            sep = self._first_key_sep(self._root)
        return sep if sep and "\n" not in sep else ": "

    @cached_property
    def _item_sep(self) -> str:
        """``,`` and the space after it in the first one-line container (innermost first)."""
        if self._parsed_seps is not None:
            space = self._parsed_seps[1]
        else:
            marks = [m.start() for m in _SAME_LINE_COMMA.finditer(self.text)]
            space = self._first_item_space(self._root, marks) if marks else None
        return "," + (space if space is not None else " ")

    def _first_key_sep(self, node: _Node) -> str | None:
        """In text order: an object's first key comes before anything inside it."""
        if not isinstance(node, _Container):
            return None
        self._expand(node)
        if node.seps:
            return node.seps[0]
        return next((s for s in map(self._first_key_sep, node.children) if s is not None), None)

    def _first_item_space(self, node: _Node, marks: list[int]) -> str | None:
        """Children before their parent, as the exact parser finds them; a container with no
        same-line comma inside holds no one-line container of two members and is skipped."""
        if not isinstance(node, _Container):
            return None
        k = bisect_left(marks, node.start)
        if k == len(marks) or marks[k] >= node.end:
            return None
        self._expand(node)
        for child in node.children:
            space = self._first_item_space(child, marks)
            if space is not None:
                return space
        return node.leads[1] if not node.multiline and len(node.leads) > 1 else None

    # -- emitting --------------------------------------------------------------------------------

    def _emit(
        self, value: Any, node: _Node | None, indent: str, multiline: bool, inline_lists: bool
    ) -> str:
        if node is not None and strict_equal(value, node.value):
            return self.text[node.start : node.end]
        if isinstance(value, dict | list):
            if isinstance(node, _Container) and type(node.value) is type(value) and node.value:
                if value:  # else: emptied, rendered as [] or {} below
                    return self._restyle(value, node, indent)
            return self._new(value, indent, multiline, inline_lists)
        return json.dumps(value, ensure_ascii=False)

    def _flat(self, value: dict | list) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(self._item_sep, self._key_sep))

    def _new(self, value: dict | list, indent: str, multiline: bool, inline_lists: bool) -> str:
        if not value:
            return "{}" if isinstance(value, dict) else "[]"
        if not multiline:
            return self._flat(value)
        scalars = isinstance(value, list) and not any(isinstance(v, dict | list) for v in value)
        if inline_lists and scalars:
            flat = self._flat(value)
            if len(flat) <= _SHORT_LIST:
                return flat
        inner = indent + self.indent_unit
        items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
        parts = []
        for key, item in items:
            head = "" if key is None else json.dumps(key, ensure_ascii=False) + self._key_sep
            parts.append(
                self.newline + inner + head + self._emit(item, None, inner, True, inline_lists)
            )
        brackets = "{}" if isinstance(value, dict) else "[]"
        return brackets[0] + ",".join(parts) + self.newline + indent + brackets[1]

    def _restyle(self, value: dict | list, node: _Container, indent: str) -> str:
        """Re-emit a changed container after the layout of ``node`` (same type, non-empty)."""
        self._expand(node)
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
            new_lead = node.leads[-1] if n > 1 else self._item_sep[1:]
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
            elif j < n and item is node.children[j].value:  # untouched: its text as it was
                template = node.children[j]
            else:
                template = self._item_template(node, j, item)
            if template is not None and item is template.value:
                out.append(lead + head + self.text[template.start : template.end])
            else:
                item_indent = _line_indent(_line_indent(indent, lead), head)
                out.append(lead + head + self._emit(item, template, item_indent,
                                                    node.multiline, inline_lists))
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
