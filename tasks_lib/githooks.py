"""The git hooks init installs (docs/design.md, "Git hooks"): which exist, their scripts, where
they may go, and how they are installed next to the operator's own hooks (chained, never
overwritten) and uninstalled. One module because the script and the files it expects
(the chained hook, the ``pre-clawback/`` links) must change together.

Only into this repository's own hooks directory (tasks_lib/hooksdir.py): in a shared one init
writes nothing and takes back what an earlier init wrote there. The script itself checks nothing
in a repository whose git directory does not hold it (and ``clawback hook`` nothing outside a
clawback workspace), so a copy in a shared directory is harmless.

Chaining: a hook that is not ours is renamed to ``<name>.pre-clawback`` (a rename keeps its bytes,
mode, inode, even a symlink as a symlink, whose relative target still resolves from the same
directory) and our script runs it first through ``pre-clawback/<name>``, a link to it, so it runs
under its own name (a dispatcher keyed on ``basename "$0"`` still knows which hook it is); with
git's arguments and, for pre-push, the same standard input (saved to a temporary file first); its
failure fails the hook. ``pre-clawback/`` also mirrors every other entry of the hooks directory
as a relative link (``lib.sh -> ../lib.sh``, ``<name>.d -> ../<name>.d``, husky's ``_``), so a hook
that finds its siblings through ``dirname "$0"`` or ``"$0.d"`` finds what it found before; init
makes them and the script adds a sibling made later (only into a real directory, only where
nothing of that name exists). Uninstalling removes the link and renames it back; the last one
out removes the mirror links (exactly ``X -> ../X``) and the directory if it is then empty. The suffix is not the
pre-commit framework's ``.legacy``, so the two never take each other's file. Our script's marker
line carries the sha256 of the script: a script of ours whose digest no longer matches was edited
by hand and is left alone.

The checks the scripts run are ``clawback hook <name>`` (clawback/commands/hook.py,
tasks_lib/hookchecks.py, tasks_lib/secrets/hooks.py). ``CLAWBACK_SKIP_HOOKS=1`` skips them in the
shell, before Python starts (the operator's chained hook still runs: it is not clawback's to
skip); ``git commit/push --no-verify`` skips every hook, git's own rule.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from tasks_lib.core import safefs
from tasks_lib.core.errors import BadInput
from tasks_lib.core.workspace import Workspace
from tasks_lib.hooksdir import hooks_dir, shared_reason

HOOKS: tuple[str, ...] = ("pre-commit", "pre-push", "post-merge", "post-checkout")
CHAINED_SUFFIX = ".pre-clawback"
CHAIN_DIR = "pre-clawback"  # <hooks>/pre-clawback/<name> -> ../<name>.pre-clawback: its own name
_MARKER = re.compile(r"# clawback-hook: ([a-z-]+)(?: sha256:([0-9a-f]{64}))?\Z")
_PURPOSE = {
    "pre-commit": "Refuses plaintext secrets in staged task files (key paths or lines, never values);\n"
                  "# warns when a task's version changes to one without a snapshot.",
    "pre-push": "Refuses to push a version tag that fails verify-snapshot, naming the tag.",
    "post-merge": "Warns (never fails) when the registry, configs and tags disagree (sync-registry --check).",
    "post-checkout": "On a branch checkout, warns (never fails) when the registry, configs and tags disagree.",
}
_WHAT = {"pre-commit": "secret check", "pre-push": "snapshot check",
         "post-merge": "registry check", "post-checkout": "registry check"}


@dataclass(frozen=True)
class HookChange:
    """What init did to one hook. ``action``: installed, chained (installed; the hook that was
    there kept and run first), updated, unchanged, kept (not installed: ``reason``), removed,
    restored (removed; the operator's hook put back)."""

    name: str
    path: str
    action: str
    installed: bool
    reason: str = ""


def parse_choice(text: str) -> frozenset[str]:
    """``all``, ``none`` or a comma list of hook names (the value of ``init --hooks``)."""
    words = [w.strip() for w in str(text).split(",")]
    if words == ["all"]:
        return frozenset(HOOKS)
    if words == ["none"]:
        return frozenset()
    bad = [w for w in words if w not in HOOKS]
    if bad or not words:
        raise BadInput(f"unknown hook {bad[0]!r}" if bad else "no hooks named",
                       f"use all, none, or a comma list of {', '.join(HOOKS)}")
    return frozenset(words)


def script(name: str, python: str) -> str:
    """The hook script: POSIX sh, our marker with the script's own digest on line 2."""
    py = shlex.quote(python)
    gate = name.startswith("pre-")
    done = "exit 0" if gate else "exit $rc"
    lines = [
        "#!/bin/sh",
        f"# clawback-hook: {name}",
        f"# {_PURPOSE[name]}",
        f"# Skip once: git {'push' if name == 'pre-push' else 'commit'} --no-verify (every hook), "
        "or CLAWBACK_SKIP_HOOKS=1 (clawback's check only)." if gate else
        "# Skip: CLAWBACK_SKIP_HOOKS=1.",
        f"# The hook that was here before is kept as {name}{CHAINED_SUFFIX} and runs first, as "
        f"{CHAIN_DIR}/{name} (its own name).",
        "# Checks only in the repository whose git directory holds this script (elsewhere: nothing).",
        "# Uninstall (puts that hook back): clawback init --hooks none. Edited by hand: init leaves it.",
        'hooks=$(dirname -- "$0")',
        f'chained="$hooks/{name}{CHAINED_SUFFIX}"',
        f'if [ "$hooks/{CHAIN_DIR}/{name}" -ef "$chained" ]; then chained="$hooks/{CHAIN_DIR}/{name}"; fi',
    ]
    # a copy in a hooks directory other repositories use (core.hooksPath, a linked .git/hooks)
    # checks nothing there: this script lies in the running repository's git directory, or it rests
    lines += ['here=$(cd -P -- "$hooks" 2>/dev/null && pwd -P) && '
              'gitdir=$(git rev-parse --git-common-dir 2>/dev/null) && '
              'gitdir=$(cd -P -- "$gitdir" 2>/dev/null && pwd -P) || gitdir=',
              'case "$here/" in "${gitdir:-/nonexistent/}"/*) mine=1 ;; *) mine= ;; esac']
    # siblings made since init: mirrored (never through a link, never over an existing name)
    skip = "|".join((CHAIN_DIR, f"*{CHAINED_SUFFIX}", *HOOKS))
    lines += [f'mirror="$hooks/{CHAIN_DIR}"',
              f'if [ -n "$mine" ] && [ "$chained" = "$mirror/{name}" ] && [ -d "$mirror" ] && '
              '[ ! -L "$mirror" ]; then',
              '  for f in "$hooks"/* "$hooks"/.[!.]*; do b=${f##*/}',
              f'    case "$b" in {skip}) continue ;; esac',
              '    { [ -e "$f" ] || [ -L "$f" ]; } && ! [ -e "$mirror/$b" ] && ! [ -L "$mirror/$b" ] &&'
              ' ln -s -- "../$b" "$mirror/$b" 2>/dev/null',
              '  done',
              'fi']
    feed = ""
    if name == "pre-push":  # git's ref lines must reach both hooks: saved first
        lines += ['input=$(mktemp "${TMPDIR:-/tmp}/clawback-pre-push.XXXXXX") || exit 1',
                  "trap 'rm -f -- \"$input\"' EXIT", "trap 'exit 130' INT TERM", 'cat >"$input"']
        feed = ' <"$input"'
    if gate:
        lines.append(f'if [ -x "$chained" ]; then "$chained" "$@"{feed} || exit $?; fi')
    else:  # git reports post-checkout's status as the checkout's: the operator's is kept
        lines.append('rc=0; if [ -x "$chained" ]; then "$chained" "$@" || rc=$?; fi')
    lines.append(f'if [ "${{CLAWBACK_SKIP_HOOKS:-}}" = 1 ]; then {done}; fi')
    if name == "post-checkout":  # a file checkout (3rd argument 0) changes no branch
        lines.append(f'if [ "${{3:-}}" != 1 ]; then {done}; fi')
    lines.append(f'if [ -z "$mine" ]; then {done}; fi')
    call = f"{py} -m clawback hook {name} -- \"$@\"{feed}"
    if gate:
        lines.append(f"if [ -x {py} ]; then {call}; exit $?; fi")
    else:
        lines.append(f"if [ -x {py} ]; then {call} || true; {done}; fi")
    lines += [f'echo "clawback {name} hook: "{py}" is gone; {_WHAT[name]} skipped" >&2', done]
    return _sign("\n".join(lines) + "\n")


def _sign(text: str) -> str:
    head, marker, rest = text.split("\n", 2)
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{head}\n{marker} sha256:{digest}\n{rest}"


def _v1_script(python: str) -> str:
    """The one hook init installed before hooks were chained (kept to recognise and upgrade it)."""
    py = shlex.quote(python)
    return ("#!/bin/sh\n# clawback-hook: pre-commit\n"
            "# Refuses plaintext secrets in staged task files (key paths or lines, never values).\n"
            "# Bypass once: git commit --no-verify. Uninstall: delete this file.\n"
            f"if [ -x {py} ]; then exec {py} -m clawback hook pre-commit; fi\n"
            f'echo "clawback pre-commit hook: "{py}" is gone; secret check skipped" >&2\n'
            "exit 0\n")


_V1_CALL = re.compile(r"if \[ -x (.+) \]; then exec \1 -m clawback hook pre-commit; fi\Z")


def classify(path: Path, name: str) -> str:
    """absent, ours (intact, any interpreter), edited (ours, changed by hand), foreign (a file or
    symlink of someone else's: chained), other (a fifo, directory ...: never touched)."""
    if not os.path.lexists(path):
        return "absent"
    if path.is_symlink():
        return "foreign"
    data = safefs.read_regular(path, 1 << 20)  # never opens a fifo or a device
    if data is None:
        return "other"
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    m = _MARKER.match(lines[1]) if len(lines) > 2 else None
    if m is None:
        return "foreign"
    if m.group(2) is None:  # the pre-chaining pre-commit hook: ours only byte for byte
        call = _V1_CALL.match(lines[4]) if len(lines) > 4 and name == "pre-commit" else None
        ok = call is not None and data == _v1_script(shlex.split(call.group(1))[0]).encode()
        return "ours" if ok else "edited"
    text = data.decode("utf-8", "surrogateescape")
    unsigned = text.replace(f" sha256:{m.group(2)}", "", 1)
    intact = m.group(1) == name and _sign(unsigned) == text
    return "ours" if intact else "edited"


def _calls_us(path: Path, name: str) -> bool:
    """A foreign hook that already runs our check (by hand, or the pre-commit framework's
    ``<name>.legacy`` being ours): chaining it would run the check twice."""
    legacy = path.with_name(f"{name}.legacy")
    if classify(legacy, name) in ("ours", "edited"):
        return True
    data = safefs.read_regular(path, 1 << 20) if not path.is_symlink() else None
    return data is not None and f"clawback hook {name}".encode() in data


def apply(ws: Workspace, python: str, wanted: frozenset[str] = frozenset(HOOKS)) -> tuple[HookChange, ...]:
    """Install the ``wanted`` hooks and uninstall the others (init's ``--hooks``); idempotent.
    In a shared hooks directory an earlier init's hooks are taken back (the operator's put back)."""
    where = hooks_dir(ws)
    changes: list[HookChange] = []
    for name in HOOKS:
        path = where.path / name
        if where.refusal:
            reason = shared_reason(where, python) if where.shared else where.refusal
            if where.shared and classify(path, name) == "ours":
                gone = uninstall(path, name)
                if gone is not None:
                    changes.append(replace(gone, reason="; ".join(r for r in (gone.reason, reason) if r)))
            elif name in wanted:
                changes.append(HookChange(name, str(path), "kept", False, reason))
            continue
        change = install(path, name, python) if name in wanted else uninstall(path, name)
        if change is not None:
            changes.append(change)
    return tuple(changes)


def install(path: Path, name: str, python: str) -> HookChange:
    kind = classify(path, name)
    chained = path.with_name(name + CHAINED_SUFFIX)
    wanted = script(name, python).encode("utf-8", "surrogateescape")
    if kind == "other":
        return HookChange(name, str(path), "kept", False,
                          f"{path} is not a regular file or a symlink; it is left alone")
    if kind == "edited":
        return HookChange(name, str(path), "kept", False,
                          f"our {name} hook was edited by hand; it is left alone (delete it and "
                          "run init again to reinstall)")
    if kind == "foreign" and _calls_us(path, name):
        return HookChange(name, str(path), "kept", True,
                          f"the existing {name} hook already runs `clawback hook {name}`")
    if kind == "foreign" and os.path.lexists(chained):
        return HookChange(name, str(path), "kept", False,
                          f"both {path.name} and {chained.name} exist and neither is ours; "
                          f"merge them into one {path.name} and run init again")
    if kind == "ours" and safefs.read_regular(path, 1 << 20) == wanted:
        linked = os.path.lexists(chained) and _link_chained(path, name)  # an earlier init's chain
        return HookChange(name, str(path), "updated" if linked else "unchanged", True)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "foreign":
        os.rename(path, chained)  # the operator's hook, exactly as it was
        try:
            safefs.replace_file(path, wanted, 0o755)
        except BaseException:
            os.rename(chained, path)
            raise
        _link_chained(path, name)
        return HookChange(name, str(path), "chained", True,
                          f"the existing hook is kept as {chained.name} and runs first")
    safefs.replace_file(path, wanted, 0o755)  # never through a link
    if os.path.lexists(chained):
        _link_chained(path, name)
    return HookChange(name, str(path), "updated" if kind == "ours" else "installed", True)


def _link_chained(path: Path, name: str) -> bool:
    """``pre-clawback/<name>`` -> ``../<name>.pre-clawback``: the name the operator's hook runs
    under (its basename is the hook's; a relative symlink still resolves from the hooks
    directory). True when made now. Anything else of that name is left alone: the script then
    runs ``<name>.pre-clawback`` itself."""
    folder, target = path.parent / CHAIN_DIR, f"../{name}{CHAINED_SUFFIX}"
    link = folder / name
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o755)
    if not stat.S_ISDIR(os.lstat(folder).st_mode):
        return False
    if os.path.lexists(link):  # an earlier init's chain (its mirrors made now if missing)
        if os.path.islink(link) and os.readlink(link) == target:
            _mirror(folder)
        return False
    os.symlink(target, link)
    _mirror(folder)
    return True


def _mirror(folder: Path) -> None:
    """``pre-clawback/X`` -> ``../X`` for every other entry X of the hooks directory (bytes-exact
    names): ``dirname "$0"`` of the chained hook then finds what it found before. Never over an
    existing name; the hook script adds siblings made later the same way."""
    skip = {CHAIN_DIR.encode(), *(h.encode() for h in HOOKS)}
    with os.scandir(os.fsencode(folder.parent)) as entries:
        names = [e.name for e in entries]
    for name in names:
        link = os.path.join(os.fsencode(folder), name)
        if name in skip or name.endswith(CHAINED_SUFFIX.encode()) or os.path.lexists(link):
            continue
        with contextlib.suppress(FileExistsError):
            os.symlink(b"../" + name, link)


def _unmirror(folder: Path) -> None:
    """Remove the mirror links once no hook is chained any more: exactly the ``X -> ../X`` links
    (what _mirror and the script make), nothing else."""
    if not os.path.isdir(folder) or os.path.islink(folder):
        return
    with os.scandir(os.fsencode(folder)) as entries:
        links = [e.path for e in entries if e.is_symlink()]
    if any(os.path.basename(p).decode("utf-8", "surrogateescape") in HOOKS for p in links):
        return  # another hook still chained: its chained hook needs the mirrors
    for p in links:
        if os.readlink(p) == b"../" + os.path.basename(p):
            os.unlink(p)


def _unlink_chained(path: Path, name: str) -> None:
    folder = path.parent / CHAIN_DIR
    link = folder / name
    if os.path.islink(link) and os.readlink(link) == f"../{name}{CHAINED_SUFFIX}":
        os.unlink(link)
        _unmirror(folder)
        with contextlib.suppress(OSError):  # not empty, or not ours: left
            os.rmdir(folder)


def uninstall(path: Path, name: str) -> HookChange | None:
    """Remove our hook and put the operator's back (same bytes, mode, inode); None when there
    is nothing of ours."""
    kind = classify(path, name)
    chained = path.with_name(name + CHAINED_SUFFIX)
    if kind == "edited":
        return HookChange(name, str(path), "kept", True,
                          f"our {name} hook was edited by hand; it is left alone (delete it yourself"
                          + (f", then rename {chained.name} back)" if os.path.lexists(chained) else ")"))
    if kind not in ("ours", "absent") or (kind == "absent" and not os.path.lexists(chained)):
        return None
    if kind == "ours":
        os.unlink(path)
    if os.path.lexists(chained):
        _unlink_chained(path, name)
        os.rename(chained, path)
        return HookChange(name, str(path), "restored", False, f"{chained.name} put back")
    return HookChange(name, str(path), "removed", False)
