"""Text of ``clawback diff``: the four sections, coloured on a terminal (not with NO_COLOR, never
on a pipe), or only the per-file counts and section summaries (``--stat``). Everything shown
was masked by tasks_lib/versiondiff; names are shown as the rest of the CLI shows them
(tasks_lib/core/filenames.py). The markdown of the Prefect artifact is flows/diffreport.py."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

from tasks_lib.core.filenames import shown

_COLOURS = {"+": "32", "-": "31", "@": "36", "h": "1"}


def use_colour(stream: IO[str]) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _painter(colour: bool) -> Callable[[str, str], str]:
    def paint(kind: str, text: str) -> str:
        return f"\x1b[{_COLOURS[kind]}m{text}\x1b[0m" if colour and kind in _COLOURS else text
    return paint


def _mode(f: Any) -> str:
    if f.old_mode and f.new_mode and f.old_mode != f.new_mode:
        return f" (mode {f.old_mode} -> {f.new_mode})"
    return ""


def _file_line(f: Any) -> str:
    what = {"added": "A", "removed": "D", "changed": "M"}[f.status]
    if f.old_target is not None or f.new_target is not None:
        counts = f"link {f.old_target or '-'} -> {f.new_target or '-'}"
    elif f.binary:
        counts = f"binary, {_size(f.old_size)} -> {_size(f.new_size)}"
    elif f.note and not f.added and not f.removed:
        counts = f.note
    else:
        counts = f"+{f.added} -{f.removed}" + (f" ({f.note})" if f.note else "")
    return f"  {what} {shown(f.path)}  {counts}{_mode(f)}"


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n} bytes"


def text(d: Any, *, stat: bool = False, colour: bool = False) -> str:
    paint = _painter(colour)
    s = d.summary()
    tags = f" ({d.old_tag or 'live tree'} -> {d.new_tag or 'live tree'})"
    out = [paint("h", f"diff {d.task_id} {d.old} -> {d.new}") + tags]
    out.append(paint("h", f"code: {s['changed']} changed, {s['added']} added, {s['removed']} "
                          f"removed (+{s['lines_added']} -{s['lines_removed']} lines)"))
    for f in d.files:
        out.append(_file_line(f))
        if not stat:
            out += ["    " + paint(line[:1], line) for line in f.lines]
    out.append(paint("h", f"config: {len(d.config)} key(s) changed")
               + (f" ({d.config_note})" if d.config_note else ""))
    if not stat:
        out += _keys(d.config, paint)
    out += _dependencies(d.dependencies, paint, stat)
    out.append(paint("h", f"registry and runtime settings: {len(d.registry)} key(s) changed"))
    if not stat:
        out += _keys(d.registry, paint)
    out += [f"  note: {n}" for n in d.notes]
    if d.empty:
        out.append("no differences")
    return "\n".join(out)


def _keys(changes: Any, paint: Callable[[str, str], str]) -> list[str]:
    out = []
    for c in changes:
        if c.change == "added":
            out.append(paint("+", f"  + {c.path}: {c.new}"))
        elif c.change == "removed":
            out.append(paint("-", f"  - {c.path}: {c.old}"))
        else:
            out.append(f"  ~ {c.path}: {c.old} -> {c.new}")
    return out


def _dependencies(dd: Any, paint: Callable[[str, str], str], stat: bool) -> list[str]:
    counts = {k: sum(1 for p in dd.packages if p.change == k)
              for k in ("added", "removed", "upgraded", "downgraded", "changed")}
    head = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no package changes"
    if not dd.exact:
        head = (f"requirements.txt: +{len(dd.requirements_added)} "
                f"-{len(dd.requirements_removed)} line(s)")
    out = [paint("h", f"dependencies: {head}") + (f" ({dd.note})" if dd.note else "")]
    if stat:
        return out
    for p in dd.packages:
        sign = {"added": "+", "removed": "-"}.get(p.change, "~")
        out.append(paint(sign, f"  {sign} {p.name} {p.old or ''}{' -> ' if p.old and p.new else ''}"
                               f"{p.new or ''} ({p.change})"))
    out += [paint("+", f"  + {line}") for line in dd.requirements_added]
    out += [paint("-", f"  - {line}") for line in dd.requirements_removed]
    if dd.python:
        out.append(f"  ~ python: {dd.python[0]} -> {dd.python[1]}")
    out += [paint("+", f"  + environment variable {n}") for n in dd.env_added]
    out += [paint("-", f"  - environment variable {n}") for n in dd.env_removed]
    return out
