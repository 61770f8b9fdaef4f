"""pip's package-source settings, handed to uv so an operator's setup keeps working.

uv reads ``UV_*`` variables and ``uv.toml`` itself, but not pip's settings. ``pip_sources`` reads
``PIP_*`` variables and pip's config files (as pip locates and merges them) and keeps each setting
whose ``UV_*`` counterpart is unset, so an offline wheelhouse configured for pip
(``PIP_FIND_LINKS``, ``PIP_NO_INDEX``) is used by uv as well.

URLs reach uv through its **environment**, never its command line: an index URL may carry
``user:token@``, and a process's argv is readable by every user of the machine
(``/proc/<pid>/cmdline``, ``ps``). ``uv_environ`` is the environment to run uv with; only
``--no-index`` (no URL) stays a flag, because uv lets an index set in its environment win over
``UV_NO_INDEX`` but not over the flag (checked against uv 0.13.9). ``source_args`` renders the
same settings as the equivalent flags, for tests and diagnostics only.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from tasks_lib.core.errors import MalformedFile

__all__ = ["Sources", "pip_sources", "source_args", "uv_environ"]

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}
_PIP_KEYS = ("index-url", "extra-index-url", "find-links", "no-index")


def _default_config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's config files for ``install``, lowest precedence first (as pip orders them)."""
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file and env_file == os.devnull:
        return []  # pip: PIP_CONFIG_FILE=/dev/null disables every config file
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(Path("/etc/pip.conf"))
    if not (env_file and os.path.exists(env_file)):
        home = Path(environ.get("HOME") or os.path.expanduser("~"))
        xdg_home = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        files += [home / ".pip" / "pip.conf", Path(xdg_home) / "pip" / "pip.conf"]
    if env_file:
        files.append(Path(env_file))
    return files


def _read_pip_config(files: list[Path]) -> dict[str, str]:
    """Merged ``[global]`` then ``[install]`` values of the files (later files win)."""
    merged: dict[str, dict[str, str]] = {"global": {}, "install": {}}
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except OSError:
            continue  # absent or unreadable: pip skips it too
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise MalformedFile(
                f"pip config file {path} cannot be parsed ({type(exc).__name__})",
                "fix or remove it: pip itself refuses to run with it",
            ) from None
        for section in merged:
            if parser.has_section(section):
                for key, value in parser.items(section):
                    merged[section][key.lower().lstrip("-").replace("_", "-")] = value
    return {**merged["global"], **merged["install"]}


def _local_path(value: str) -> Path | None:
    """The local path a ``file:`` URL or plain path names; None for a remote URL."""
    if value.startswith("file:"):
        parsed = urlparse(value)
        return Path(unquote(parsed.path or "/"))
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
        return None
    return Path(os.path.abspath(os.path.expanduser(value)))


def _usable(values: list[str], *, index: bool) -> list[str]:
    """Drop file URLs and local paths that don't exist (pip only warns, uv would fail)."""
    out: list[str] = []
    for value in values:
        path = _local_path(value)
        if path is None:
            out.append(value)
        elif not path.exists():
            continue
        elif value.startswith("file:"):
            out.append(value)
        else:
            out.append(path.as_uri() if index else str(path))
    return out


def _is_set(environ: Mapping[str, str], *names: str) -> bool:
    return any(environ.get(n, "").strip() for n in names)


def _truthy(value: str | None) -> bool | None:
    if value is None:
        return None
    value = value.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


@dataclass(frozen=True)
class Sources:
    """pip's package sources that uv should use (each one only when its ``UV_*`` is unset)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False  # pip's no-index (a flag: it holds no URL)

    def env(self) -> dict[str, str]:
        """The ``UV_*`` variables carrying the URLs (uv's separators: space, comma for links)."""
        env: dict[str, str] = {}
        if self.index_url is not None:
            env["UV_INDEX_URL"] = self.index_url
        if self.extra_index_urls:
            env["UV_EXTRA_INDEX_URL"] = " ".join(self.extra_index_urls)
        if self.find_links:
            env["UV_FIND_LINKS"] = ",".join(_no_comma(link) for link in self.find_links)
        return env

    def flags(self) -> list[str]:
        """What uv gets on its command line: ``--no-index`` at most, never a URL."""
        return ["--no-index"] if self.no_index else []

    def args(self) -> list[str]:
        """The same settings as uv flags (diagnostics and tests; never run uv with these)."""
        args: list[str] = []
        if self.index_url is not None:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args + self.flags()


def _no_comma(link: str) -> str:
    """A find-links entry that survives UV_FIND_LINKS's comma separator (uv decodes %2C)."""
    if "," not in link:
        return link
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", link):
        return link.replace(",", "%2C")
    return "file://" + quote(link)


def pip_sources(
    environ: Mapping[str, str] | None = None, config_files: list[Path] | None = None
) -> Sources:
    """pip's package-source settings that uv should use (env vars win over config files).

    Only settings whose uv counterpart is unset are kept: index-url (UV_INDEX_URL /
    UV_DEFAULT_INDEX), extra-index-url (UV_EXTRA_INDEX_URL / UV_INDEX), find-links
    (UV_FIND_LINKS), no-index (UV_NO_INDEX). When index lookups are disabled (UV_NO_INDEX or
    pip's no-index) no index URL is kept: pip would ignore them. ``config_files`` are pip
    config files lowest precedence first; None means pip's own locations.
    """
    env = os.environ if environ is None else environ
    files = _default_config_files(env) if config_files is None else list(config_files)
    settings = _read_pip_config(files)
    for key in _PIP_KEYS:
        value = env.get("PIP_" + key.upper().replace("-", "_"))
        if value is not None and value.strip():
            settings[key] = value

    if _is_set(env, "UV_NO_INDEX"):
        pip_no_index = None
        no_index = bool(_truthy(env.get("UV_NO_INDEX")))
    else:
        pip_no_index = _truthy(settings.get("no-index"))
        no_index = bool(pip_no_index)

    index_url: str | None = None
    extra: list[str] = []
    if not no_index:
        if "index-url" in settings and not _is_set(env, "UV_INDEX_URL", "UV_DEFAULT_INDEX"):
            index_url = next(iter(_usable(settings["index-url"].split()[:1], index=True)), None)
        if "extra-index-url" in settings and not _is_set(env, "UV_EXTRA_INDEX_URL", "UV_INDEX"):
            extra = _usable(settings["extra-index-url"].split(), index=True)
    links: list[str] = []
    if "find-links" in settings and not _is_set(env, "UV_FIND_LINKS"):
        links = _usable(settings["find-links"].split(), index=False)
    return Sources(index_url, tuple(extra), tuple(links), bool(pip_no_index))


def source_args(
    environ: Mapping[str, str] | None = None, config_files: list[Path] | None = None
) -> list[str]:
    """``pip_sources`` as the equivalent uv flags (for diagnostics and tests: uv itself gets the
    URLs through ``uv_environ``, never on its command line)."""
    return pip_sources(environ, config_files).args()


def uv_environ(
    environ: Mapping[str, str] | None = None, config_files: list[Path] | None = None
) -> tuple[dict[str, str], list[str]]:
    """The environment to run uv with (``environ`` or os.environ, plus pip's sources as
    ``UV_*`` variables) and the flags to add (``--no-index`` or nothing, never a URL)."""
    base = dict(os.environ if environ is None else environ)
    sources = pip_sources(base, config_files)
    return {**base, **sources.env()}, sources.flags()
