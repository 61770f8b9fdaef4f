"""Task config files (``tasks/T01/config.yaml``): read and set ``version``, list env var names.

Configs are written by hand (comments, anchors, odd quoting, CRLF, plaintext secrets), so the
version is edited in place: only the scalar of the top-level ``version:`` line changes, found
through PyYAML's token positions rather than a regular expression (``yamledit``), and the edit
is checked here by loading the file before and after. Error messages name a line and column,
never file content (a config may hold secrets).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import yaml

from tasks_lib.core import ids
from tasks_lib.core.errors import BadInput, MalformedFile
from tasks_lib.formats import nesting, yamledit
from tasks_lib.secrets.shapes import credential_name_error, credential_shaped_name

__all__ = ["env_var_names", "load", "read_version", "set_version"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z", re.ASCII)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:=x}, ${NAME:?msg}, ${NAME:+x}; nested
# references inside a default are found by the same pattern on their own.
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?=\}|:?[-=?+])", re.ASCII)


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads local tags (``!ENV``, ``!include``) as their plain value.

    Python-object tags (``!!python/...``) are still refused, as by ``yaml.safe_load``.
    """


def _construct_local_tag(loader: _Loader, _suffix: str, node: yaml.Node) -> object:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_Loader.add_multi_constructor("!", _construct_local_tag)


# --------------------------------------------------------------------------- errors


_QUOTED = re.compile(r"'([^'\n]*)'|\"([^\"\n]*)\"")
_HARMLESS_QUOTED = re.compile(
    r"(?:.|\\[abfnrtv0]|\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}"
    r"|<[a-z ]+>|tag:yaml\.org,2002:[\w/.:-]*)\Z",
    re.DOTALL,
)


def _scrub(problem: str) -> str:
    """Drop quoted file content from a PyYAML/ValueError message, keep quoted single characters
    (``'\\t'``), token names (``'<block end>'``) and standard tags."""

    def repl(m: re.Match[str]) -> str:
        inner = m.group(1) if m.group(1) is not None else m.group(2)
        return m.group(0) if _HARMLESS_QUOTED.match(inner) else "'…'"

    return _QUOTED.sub(repl, problem)


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def _yaml_error(exc: BaseException, text: str, source: str) -> MalformedFile:
    hint = (
        f"fix {source} at that line and retry (tabs used for indentation, an unquoted ': ' or "
        "' #' inside a value, and unbalanced quotes or brackets are the usual causes)"
    )
    if isinstance(exc, yaml.MarkedYAMLError) and (exc.problem_mark or exc.context_mark):
        mark = exc.problem_mark or exc.context_mark
        problem = _scrub(exc.problem or exc.context or "invalid YAML")
        msg = f"{source}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
        if exc.context and exc.problem and exc.context_mark and exc.context_mark is not mark:
            msg += f" ({_scrub(exc.context)} at line {exc.context_mark.line + 1})"
        return MalformedFile(msg, hint)
    if isinstance(exc, yaml.reader.ReaderError):
        line, col = _line_col(text, exc.position)
        return MalformedFile(
            f"{source}: invalid YAML at line {line}, column {col}: "
            f"unacceptable character #x{exc.character:04x}",
            f"remove the control character from {source} (save it as UTF-8 text)",
        )
    if isinstance(exc, RecursionError):
        return MalformedFile(f"{source}: invalid YAML: nested too deeply", hint)
    return MalformedFile(
        f"{source}: invalid YAML: a value cannot be read ({_scrub(str(exc)) or type(exc).__name__})",
        f"fix the value in {source} (dates must be real dates, e.g. 2026-02-24), or quote it",
    )


_LOAD_ERRORS = (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError)


def _type_name(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a single string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return f"a {type(value).__name__}"


def load(text: str, source: str = "config.yaml") -> dict:
    """Parse a config: ``yaml.safe_load`` semantics, ``{}`` for an empty file.

    Raises MalformedFile (naming line and column, never content) on invalid YAML, several
    documents, or a top level that is not a mapping.
    """
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except _LOAD_ERRORS as exc:
        raise _yaml_error(exc, text, source) from None
    if data is None:
        return {}
    if nesting.deeper_than(data):
        raise _yaml_error(RecursionError(), text, source)
    if not isinstance(data, dict):
        raise MalformedFile(
            f"{source}: the top level is {_type_name(data)}, not a mapping of keys",
            f"{source} must be a mapping of `key: value` lines, e.g. `version: 1.0.0`",
        )
    return data


# --------------------------------------------------------------------------- version


def read_version(text: str) -> str | None:
    """The top-level ``version`` of the first YAML document, as written (quotes stripped).

    ``version: 1.3`` gives ``'1.3'`` (the raw text, not a float). None when there is no
    top-level ``version`` key or it is empty/null; nested ``version:`` keys never count. For a
    file PyYAML cannot scan, a best-effort line-based reading is returned instead of an error.
    """
    try:
        layout = yamledit.scan_layout(text)
    except yaml.YAMLError:
        return yamledit.fallback_version(text)
    if layout.sites:
        site = layout.sites[-1]  # PyYAML keeps the last of duplicate keys
        if site.value is not None:
            return site.value
        if site.style not in ("*", "complex"):
            return None
    # an alias, a merge key (`<<: *base`) or a tagged value: ask the loader
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except _LOAD_ERRORS:
        return None
    if isinstance(data, dict) and data.get("version") is not None:
        value = data["version"]
        return value if isinstance(value, str) else str(value)
    return None


def _same(a: object, b: object, seen: set[tuple[int, int]] | None = None) -> bool:
    """Deep equality where NaN equals NaN (a config may hold `.nan`). Aliases make the loaded
    data a graph that shares nodes (a billion-laughs config shares them exponentially often):
    each pair of containers is compared once."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, dict | list) and isinstance(b, dict | list):
        seen = set() if seen is None else seen
        pair = (id(a), id(b))
        if pair in seen:
            return True  # being compared, or compared equal already
        seen.add(pair)
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(_same(a[k], b[k], seen) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(_same(x, y, seen) for x, y in zip(a, b, strict=True))
        return False
    return type(a) is type(b) and a == b


def _key_names(keys: Iterable[object]) -> str:
    names = sorted(str(k) for k in keys)
    shown = ", ".join(names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def set_version(text: str, new_version: str, source: str = "config.yaml") -> str:
    """Return ``text`` with the top-level ``version`` scalar replaced by ``new_version``.

    Only that scalar changes (quoting, spacing, an inline comment and the line ending are
    kept), or without a top-level version line one ``version: X`` line is inserted before the
    first key: see ``yamledit.replace_version``. The result is loaded again: if anything but
    ``version`` changed, or ``version`` does not read back as ``new_version``, MalformedFile is
    raised and nothing should be written.
    """
    new = ids.version(new_version)
    before = load(text, source)
    try:
        result = yamledit.replace_version(text, new, source)
    except yaml.YAMLError as exc:  # load() succeeded, so this is unexpected; still no traceback
        raise _yaml_error(exc, text, source) from None
    try:
        after = load(result, source)
    except MalformedFile:
        raise MalformedFile(
            f"{source}: setting the version in place would break the file",
            yamledit.PLAIN_LINE_HINT,
        ) from None
    rest_before = {k: v for k, v in before.items() if k != "version"}
    rest_after = {k: v for k, v in after.items() if k != "version"}
    if not _same(rest_before, rest_after):
        changed = {
            k
            for k in rest_before.keys() | rest_after.keys()
            if k not in rest_before
            or k not in rest_after
            or not _same(rest_before[k], rest_after[k])
        }
        raise MalformedFile(
            f"{source}: setting the version would also change {_key_names(changed)}",
            "the version value is probably shared with other keys through an &anchor/*alias; "
            + yamledit.PLAIN_LINE_HINT,
        )
    got = after.get("version")
    if got is None or str(got) != new:
        raise MalformedFile(
            f"{source}: the version did not read back as {new} after the edit",
            yamledit.PLAIN_LINE_HINT,
        )
    return result


# --------------------------------------------------------------------------- env var names


def _name_problem(entry: object) -> str:
    if not isinstance(entry, str):
        return f"is {_type_name(entry)}, not a name"
    if not entry:
        return "is empty"
    if "=" in entry:
        return "looks like NAME=value; list the name only, never the value"
    if entry[0].isdigit():
        return "starts with a digit"
    if any(c.isspace() for c in entry):
        return "contains whitespace"
    return "contains characters other than letters, digits and '_'"


def _names_from(value: object, where: str) -> list[str]:
    """Names from an ``environment_variables`` value: a list of names (or of {name: ...}
    mappings), a mapping keyed by name, or a comma/space separated string."""
    if value is None:
        return []
    items: list[tuple[str, object]]
    if isinstance(value, str):
        items = [
            (f"{where}[{i}]", part)
            for i, part in enumerate(re.split(r"[,\s]+", value.strip()))
            if part
        ]
    elif isinstance(value, dict):
        items = [(f"{where} key #{i + 1}", k) for i, k in enumerate(value)]
    elif isinstance(value, (list, tuple)):
        items = []
        for i, entry in enumerate(value):
            if isinstance(entry, dict) and "name" in entry:
                entry = entry["name"]
            items.append((f"{where}[{i}]", entry))
    else:
        raise BadInput(
            f"{where} is {_type_name(value)}, not a list of variable names",
            "write a YAML list of names, e.g. `environment_variables: [TUSHARE_TOKEN]`",
        )
    names: list[str] = []
    for label, entry in items:
        if isinstance(entry, str) and credential_shaped_name(entry):
            raise credential_name_error(label)  # the position only, never the entry
        if not isinstance(entry, str) or not _ENV_NAME.match(entry):
            # the entry itself is not shown: a misplaced NAME=value may carry a secret
            raise BadInput(
                f"{label} is not a valid environment variable name: it {_name_problem(entry)}",
                "names are ASCII letters, digits and '_', not starting with a digit "
                "(e.g. TUSHARE_TOKEN)",
            )
        names.append(entry)
    return names


def _reference_names(text: str) -> set[str]:
    """``${NAME}`` references in the config's scalars (comments are not references)."""
    found: set[str] = set()
    try:
        for tok in yaml.scan(text, Loader=_Loader):
            if isinstance(tok, yaml.ScalarToken) and "${" in tok.value:
                found.update(_ENV_REF.findall(tok.value))
    except yaml.YAMLError:
        kept = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
        found.update(_ENV_REF.findall(kept))
    return found


def env_var_names(config: dict, text: str, declared: Iterable[str] = ()) -> list[str]:
    """Sorted unique names of the environment variables a task needs (names only, never values).

    From the config's top-level ``environment_variables``, ``declared`` (the registry entry's
    list) and every ``${NAME}`` / ``${NAME:-default}`` reference in the config's values.
    Raises BadInput naming the entry (by position, never its text) for an invalid name, and
    SecretsFound (exit 3) for an entry that is a credential (``ghp_…``) instead of a name.
    """
    names: set[str] = set()
    if isinstance(config, dict):
        names.update(
            _names_from(config.get("environment_variables"), "config environment_variables")
        )
    names.update(_names_from(declared if declared else None, "registry environment_variables"))
    names.update(_reference_names(text))
    return sorted(names)
