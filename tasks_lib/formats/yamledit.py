"""Token-based locating and editing of a YAML file's top-level ``version`` scalar.

Configs are written by hand (comments, anchors, odd quoting, CRLF), so the version is found
through PyYAML's token positions rather than a regular expression, and ``replace_version``
changes only the text of that one scalar (or inserts one ``version:`` line). Checking that the
edit left everything else alone is the caller's job (``config.set_version`` loads the result).
Messages name a line, never file content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from tasks_lib.core.errors import MalformedFile

__all__ = [
    "PLAIN_LINE_HINT",
    "Layout",
    "VersionSite",
    "fallback_version",
    "replace_version",
    "scan_layout",
]

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
PLAIN_LINE_HINT = "put a plain `version: X.Y.Z` line at the top level of the file"


@dataclass(frozen=True)
class VersionSite:
    """Where the top-level ``version`` key's value is written."""

    key_line: int
    value_start: int  # text index where the value (scalar/alias) begins, or insertion point
    value_end: int
    value_line: int
    value_end_line: int
    value: str | None  # scalar as written (unquoted); None when empty or an alias
    style: str | None  # None plain, "'" / '"' quoted, "|" / ">" block, "*" alias, "" empty


@dataclass(frozen=True)
class Layout:
    top: str  # "block", "flow", "empty", "other"
    top_start: int  # text index of the first content token of the first document
    sites: tuple[VersionSite, ...]


_OPENERS = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSERS = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def scan_layout(text: str) -> Layout:
    """Scan the first document's tokens; raises yaml.YAMLError on a scanner error.

    Tokens do not depend on a loader's constructors, so the plain SafeLoader scans exactly as
    ``config``'s loader (which adds constructors for local tags) would.
    """
    tokens = yaml.scan(text, Loader=yaml.SafeLoader)
    toks: list[yaml.Token] = []
    started = False
    for tok in tokens:
        if isinstance(tok, (yaml.StreamStartToken, yaml.DirectiveToken)):
            continue
        if isinstance(tok, yaml.DocumentStartToken):
            if started:
                break
            started = True
            continue
        if isinstance(tok, (yaml.DocumentEndToken, yaml.StreamEndToken)):
            break
        started = True
        toks.append(tok)
    if not toks:
        return Layout("empty", len(text), ())
    first = next((t for t in toks if not isinstance(t, (yaml.AnchorToken, yaml.TagToken))), toks[0])
    top = (
        "block"
        if isinstance(first, yaml.BlockMappingStartToken)
        else "flow"
        if isinstance(first, yaml.FlowMappingStartToken)
        else "other"
    )
    sites: list[VersionSite] = []
    if top in ("block", "flow"):
        depth = 0
        for i, tok in enumerate(toks):
            if isinstance(tok, _OPENERS):
                depth += 1
            elif isinstance(tok, _CLOSERS):
                depth -= 1
            elif isinstance(tok, yaml.KeyToken) and depth == 1:
                site = _site_after_key(toks, i + 1)
                if site is not None:
                    sites.append(site)
    return Layout(top, first.start_mark.index, tuple(sites))


def _site_after_key(toks: list[yaml.Token], j: int) -> VersionSite | None:
    if j >= len(toks):
        return None
    key = toks[j]
    if not isinstance(key, yaml.ScalarToken) or key.value != "version":
        return None
    if j + 1 >= len(toks) or not isinstance(toks[j + 1], yaml.ValueToken):
        return None
    colon = toks[j + 1]
    k = j + 2
    while k < len(toks) and isinstance(toks[k], (yaml.AnchorToken, yaml.TagToken)):
        k += 1
    val = toks[k] if k < len(toks) else None
    if isinstance(val, yaml.ScalarToken):
        style = val.style
        value = val.value
        if val.plain and value in _NULLS:
            value = None
        return VersionSite(
            key_line=key.start_mark.line,
            value_start=val.start_mark.index,
            value_end=val.end_mark.index,
            value_line=val.start_mark.line,
            value_end_line=val.end_mark.line,
            value=value,
            style=style,
        )
    if isinstance(val, yaml.AliasToken):
        return VersionSite(
            key.start_mark.line,
            val.start_mark.index,
            val.end_mark.index,
            val.start_mark.line,
            val.end_mark.line,
            None,
            "*",
        )
    if k > j + 2 or (val is not None and isinstance(val, _OPENERS + (yaml.BlockEntryToken,))):
        # anchored/tagged empty value, or a mapping/list as the version
        return VersionSite(key.start_mark.line, -1, -1, -1, -1, None, "complex")
    # `version:` with nothing after it (null): insert right after the colon
    at = colon.end_mark.index
    return VersionSite(
        key.start_mark.line, at, at, colon.end_mark.line, colon.end_mark.line, None, ""
    )


_FALLBACK_LINE = re.compile(
    r"""(?:"version"|'version'|version)[ \t]*:(?:[ \t]+(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'|([^#\r\n]*?)))?[ \t]*(?:[ \t]\#.*)?\Z"""
)


def fallback_version(text: str) -> str | None:
    """Line-based reading for files PyYAML cannot scan (best effort, first document only)."""
    found: str | None = None
    seen_content = False
    for line in text.splitlines():
        if line.startswith(("---", "...")) and line[3:4] in ("", " ", "\t"):
            if seen_content or line.startswith("..."):
                break
            continue
        if not line.strip() or line.lstrip().startswith("#") or line.startswith("%"):
            continue
        seen_content = True
        m = _FALLBACK_LINE.match(line.lstrip("\ufeff"))
        if m:
            if m.group(1) is not None:
                found = m.group(1)
            elif m.group(2) is not None:
                found = m.group(2).replace("''", "'")
            else:
                raw = (m.group(3) or "").strip()
                found = None if raw in _NULLS else raw
    return found


def _newline(text: str) -> str:
    i = text.find("\n")
    if i > 0 and text[i - 1] == "\r":
        return "\r\n"
    if i < 0 and "\r" in text:
        return "\r"
    return "\n"


def replace_version(text: str, new: str, source: str) -> str:
    """``text`` with the top-level ``version`` scalar replaced by ``new``, or inserted.

    Only that scalar changes: its quoting style, the spacing, an inline comment and the line
    ending are kept. Without a top-level version line, ``version: X`` is inserted before the
    first key (after leading comments, blank lines and ``---``), in the file's newline style.
    MalformedFile when the version cannot be edited on one line; yaml.YAMLError when the text
    cannot be scanned.
    """
    layout = scan_layout(text)

    if layout.top == "flow":
        raise MalformedFile(
            f"{source}: the top level is a flow mapping ({{...}}), which cannot be edited one line",
            f"rewrite it as block `key: value` lines and {PLAIN_LINE_HINT}",
        )
    if layout.top not in ("block", "empty"):
        raise MalformedFile(f"{source}: the top level is not a mapping of keys", PLAIN_LINE_HINT)
    if len(layout.sites) > 1:
        lines = ", ".join(str(s.key_line + 1) for s in layout.sites)
        raise MalformedFile(
            f"{source}: `version` is set more than once at the top level (lines {lines})",
            "keep a single top-level `version:` line and retry",
        )

    if layout.sites:
        site = layout.sites[0]
        if site.style == "complex" or site.value_start < 0:
            raise MalformedFile(
                f"{source}: the top-level `version` on line {site.key_line + 1} is not a plain value",
                PLAIN_LINE_HINT,
            )
        if site.style in ("|", ">"):
            raise MalformedFile(
                f"{source}: the top-level `version` on line {site.key_line + 1} is a block scalar",
                PLAIN_LINE_HINT,
            )
        if not (site.key_line == site.value_line == site.value_end_line):
            raise MalformedFile(
                f"{source}: the top-level `version` on line {site.key_line + 1} spans several lines",
                PLAIN_LINE_HINT,
            )
        if site.style in ("'", '"'):
            replacement = f"{site.style}{new}{site.style}"
        elif site.style == "":
            replacement = f" {new}"
        else:  # plain scalar or alias
            replacement = new
        result = text[: site.value_start] + replacement + text[site.value_end :]
    else:
        nl = _newline(text)
        indent = ""
        if layout.top == "empty":
            at = len(text)
        else:  # the start of the line holding the first key, after any BOM
            at = max(text.rfind("\n", 0, layout.top_start), text.rfind("\r", 0, layout.top_start))
            at = max(at + 1, 1 if text.startswith("\ufeff") else 0)
            indent = " " * (layout.top_start - at)
        prefix = text[:at]
        if prefix.strip("\ufeff") and not prefix.endswith(("\n", "\r")):
            prefix += nl
        result = f"{prefix}{indent}version: {new}{nl}{text[at:]}"
    return result
