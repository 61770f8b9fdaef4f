"""tasks_lib.deps.envs and clawback.demo.wheelhouse: real uv, real venvs, local wheels only (no network)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from clawback.demo.wheelhouse import build_wheel, build_wheelhouse
from tasks_lib.core.errors import (
    BadInput,
    DependencyError,
    MalformedFile,
    TransientError,
    exit_code_for,
)
from tasks_lib.deps import envs as deps
from tasks_lib.deps import uvrun
from tasks_lib.deps.envs import Lock

PY = sys.executable
SPECS = [
    ("clawdemo-signals", "1.0.0", []),
    ("clawdemo-signals", "1.1.0", []),
    ("clawdemo-risk", "0.1.0", ["clawdemo-signals>=1.0"]),
    ("clawdemo-extra", "0.3.0", []),
]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"), SPECS)


@pytest.fixture(scope="session")
def environ(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(
        UV_FIND_LINKS=str(wheelhouse),
        UV_NO_INDEX="1",
        UV_CACHE_DIR=str(tmp_path_factory.mktemp("uv-cache")),
        PIP_CONFIG_FILE=os.devnull,  # the machine's pip.conf must not add sources here
    )
    return env


def _req(tmp_path: Path, text: str, name: str = "requirements.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _uv(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [deps.uv_bin(), *args], env=environ, capture_output=True, text=True, check=True
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _import_version(python: Path, module: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"import {module}; print({module}.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


# --- wheelhouse ----------------------------------------------------------------------------


def test_wheel_is_valid_installable_and_importable(tmp_path: Path, environ: dict[str, str]):
    whl = build_wheel(
        tmp_path / "wh",
        "Clawdemo.Tools",
        "2.0.1",
        modules={"clawdemo_tools/extra.py": "VALUE = 42\n"},
        requires=["clawdemo-signals>=1.0"],
    )
    assert whl.name == "clawdemo_tools-2.0.1-py3-none-any.whl"
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        assert names[-1] == "clawdemo_tools-2.0.1.dist-info/RECORD"
        meta = zf.read("clawdemo_tools-2.0.1.dist-info/METADATA").decode()
        assert "Metadata-Version: 2.1\nName: clawdemo-tools\nVersion: 2.0.1\n" in meta
        assert "Requires-Dist: clawdemo-signals>=1.0" in meta
        assert "Tag: py3-none-any" in zf.read("clawdemo_tools-2.0.1.dist-info/WHEEL").decode()
        rows = list(csv.reader(io.StringIO(zf.read(names[-1]).decode())))
        assert {r[0] for r in rows} == set(names)
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = zf.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode() and int(size) == len(data)

    venv = tmp_path / "venv"
    _uv("venv", "--python", PY, str(venv), "--quiet", environ=environ)
    _uv("pip", "install", "--python", str(venv / "bin" / "python"), str(whl), "--quiet",
        environ=environ)  # fmt: skip
    python = venv / "bin" / "python"
    assert _import_version(python, "clawdemo_tools") == "2.0.1"
    assert _import_version(python, "clawdemo_signals") == "1.1.0"  # its Requires-Dist
    assert deps.installed(python, environ=environ) == (
        "clawdemo-signals==1.1.0",
        f"clawdemo-tools @ {whl.as_uri()}",  # installed from a file: a direct reference
    )


def test_wheel_bytes_are_deterministic(tmp_path: Path):
    a = build_wheel(tmp_path / "a", "clawdemo-signals", "1.0.0", requires=["x>=1"])
    b = build_wheel(tmp_path / "b", "clawdemo-signals", "1.0.0", requires=["x>=1"])
    c = build_wheel(tmp_path / "c", "clawdemo-signals", "1.0.1", requires=["x>=1"])
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if p != a]  # no temp file left


@pytest.mark.parametrize("name", ["", "-bad", "a/b", "caf\u00e9", "x y"])
def test_wheel_rejects_bad_names(tmp_path: Path, name: str):
    with pytest.raises(ValueError):
        build_wheel(tmp_path, name, "1.0")


def test_wheel_rejects_escaping_module_paths(tmp_path: Path):
    for path in ("../evil.py", "/abs.py", "x-1.0.dist-info/RECORD"):
        with pytest.raises(ValueError):
            build_wheel(tmp_path, "x", "1.0", modules={path: ""})


# --- Lock ----------------------------------------------------------------------------------


def test_lock_resolves_newest_with_hashes(tmp_path: Path, wheelhouse: Path, environ):
    lk = deps.lock(_req(tmp_path, "clawdemo-signals>=1.0\n"), PY, environ=environ)
    assert lk.packages == ("clawdemo-signals==1.1.0",)
    wheel_hash = _sha256(wheelhouse / "clawdemo_signals-1.1.0-py3-none-any.whl")
    assert lk.text == f"clawdemo-signals==1.1.0 \\\n    --hash=sha256:{wheel_hash}\n"
    assert lk.digest == "sha256:" + hashlib.sha256(lk.text.encode()).hexdigest()
    assert lk.hashed
    assert Lock.from_text(lk.text) == lk


def test_lock_includes_transitive_dependencies_sorted(tmp_path: Path, environ):
    lk = deps.lock(_req(tmp_path, "# risk model\nClawdemo_Risk\n"), PY, environ=environ)
    assert lk.packages == ("clawdemo-risk==0.1.0", "clawdemo-signals==1.1.0")
    assert lk.text.count("--hash=sha256:") == 2
    assert "#" not in lk.text and lk.text.index("clawdemo-risk") < lk.text.index("clawdemo-signals")


def test_lock_follows_includes_relative_to_the_requirements_file(tmp_path: Path, environ):
    task = tmp_path / "tasks" / "T01"
    task.mkdir(parents=True)
    _req(task, "clawdemo-signals<1.1\n", "base.txt")
    req = _req(task, "-r base.txt\nclawdemo-risk\n")
    lk = deps.lock(req, PY, environ=environ)
    assert lk.packages == ("clawdemo-risk==0.1.0", "clawdemo-signals==1.0.0")


def test_lock_of_nothing_is_empty(tmp_path: Path, environ):
    empty = Lock.from_text("")
    assert (empty.text, empty.packages, empty.is_empty) == ("", (), True)
    assert empty.digest == "sha256:" + hashlib.sha256(b"").hexdigest()
    assert deps.lock(None, PY, environ=environ) == empty
    assert deps.lock(tmp_path / "missing.txt", PY, environ=environ) == empty
    assert deps.lock(_req(tmp_path, "# nothing yet\n\n   # really\n"), PY, environ=environ) == empty
    assert deps.lock(_req(tmp_path, ""), PY, environ=environ) == empty


def test_lock_unknown_package_is_a_dependency_error(tmp_path: Path, environ):
    with pytest.raises(DependencyError) as info:
        deps.lock(_req(tmp_path, "clawdemo-nosuchthing==9.9\n"), PY, environ=environ)
    err = info.value
    assert exit_code_for(err) == 1 and not isinstance(err, TransientError)
    assert "No solution found" in err.message and "clawdemo-nosuchthing" in err.message
    assert "requirements.txt" in err.hint and "FIND_LINKS" in err.hint


def test_lock_from_text_without_hashes_and_normalises():
    lk = Lock.from_text(
        "# pinned by hand\nPandas==1.5.0\r\nnumpy == 1.24.0 ; python_version >= '3'\n"
    )
    assert lk.packages == ("numpy==1.24.0", "pandas==1.5.0")
    assert lk.text == "Pandas==1.5.0\nnumpy == 1.24.0 ; python_version >= '3'\n"
    assert not lk.hashed
    assert Lock.from_text(lk.text) == lk


def test_lock_from_text_refuses_options_a_restore_would_follow():
    for text in (
        "-r other.txt\n",
        "--index-url http://evil/simple\nx==1\n",
        "x==1 --pre\n",
        "!!\n",
    ):
        with pytest.raises(MalformedFile):
            Lock.from_text(text)
    direct = Lock.from_text("x @ file:///w/x-1.whl \\\n    --hash=sha256:ab\n-e ./local\n")
    assert direct.packages == ("-e ./local", "x @ file:///w/x-1.whl")
    assert not direct.hashed  # the editable entry has no hash: no --require-hashes


def test_uv_failures_are_classified_and_masked():
    def fail(stderr: str) -> Exception:
        return uvrun._failure("resolving", subprocess.CompletedProcess([], 2, "", stderr), "hint")

    net = fail(
        "error: Request failed after 3 retries\n  cause: Failed to fetch: "
        "https://user:s3cret@idx.example/simple/x/\n  cause: Connection refused (os error 111)\n"
    )
    assert isinstance(net, TransientError) and "s3cret" not in str(net) and "****@" in str(net)
    assert isinstance(fail("error: HTTP status server error (503 Service Unavailable)"),
                      TransientError)  # fmt: skip
    dns = fail("  cause: dns error\n  cause: failed to lookup address information")
    assert isinstance(dns, TransientError)
    nosol = fail("error: No solution found when resolving dependencies\n  cause: ... unsatisfiable")
    assert type(nosol) is DependencyError
    auth = fail("  cause: Failed to fetch: x\n  cause: HTTP status client error (401 Unauthorized)")
    assert type(auth) is DependencyError
    long = fail("\n".join(f"line {i}" for i in range(40)))
    assert "line 14" in str(long) and "line 15" not in str(long) and "25 more lines" in str(long)


def test_uv_timeout_is_transient(tmp_path: Path, environ, monkeypatch: pytest.MonkeyPatch):
    def slow(cmd, **kwargs):
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])

    monkeypatch.setattr(uvrun.subprocess, "run", slow)
    with pytest.raises(TransientError, match="timed out after 5s"):
        deps.lock(_req(tmp_path, "clawdemo-risk\n"), PY, environ=environ, timeout=5)


def test_uv_bin(monkeypatch: pytest.MonkeyPatch):
    assert os.access(deps.uv_bin(), os.X_OK)
    monkeypatch.setitem(sys.modules, "uv", None)  # `from uv import ...` -> ImportError
    monkeypatch.setattr(uvrun.shutil, "which", lambda name: None)
    with pytest.raises(DependencyError) as info:
        deps.uv_bin()
    assert "pip install uv" in info.value.hint


# --- source_args ---------------------------------------------------------------------------


def _conf(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_source_args_translates_pip_config(tmp_path: Path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    index = tmp_path / "pypi" / "simple"
    index.mkdir(parents=True)
    conf = _conf(
        tmp_path / "pip.conf",
        "[global]\n"
        f"find-links = {wheels}\n    {tmp_path / 'no-such-dir'}\n"
        f"extra-index-url = file://{index} file:///no/such/simple\n"
        "    https://mirror.example/simple\n"
        "index_url = https://global.example/simple\n"
        "[install]\n--index-url = https://install.example/simple\n"
        "[freeze]\nindex-url = https://ignored.example/simple\n",
    )
    assert deps.source_args({}, [conf]) == [
        "--index-url", "https://install.example/simple",
        "--extra-index-url", f"file://{index}",
        "--extra-index-url", "https://mirror.example/simple",
        "--find-links", str(wheels),
    ]  # fmt: skip


def test_source_args_env_wins_over_files_and_later_files_win(tmp_path: Path):
    low = _conf(tmp_path / "low.conf", "[global]\nindex-url = https://low.example/simple\n"
                "extra-index-url = https://low-extra.example/simple\n")  # fmt: skip
    high = _conf(tmp_path / "high.conf", "[global]\nindex-url = https://high.example/simple\n")
    assert deps.source_args({}, [low, high]) == [
        "--index-url", "https://high.example/simple",
        "--extra-index-url", "https://low-extra.example/simple",
    ]  # fmt: skip
    env = {"PIP_INDEX_URL": "https://env.example/simple", "PIP_EXTRA_INDEX_URL": "  "}
    assert deps.source_args(env, [low, high])[:2] == ["--index-url", "https://env.example/simple"]


def test_source_args_uv_settings_suppress_translation(tmp_path: Path):
    wheels = tmp_path / "w"
    wheels.mkdir()
    env = {
        "PIP_INDEX_URL": "https://a.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://b.example/simple",
        "PIP_FIND_LINKS": str(wheels),
        "PIP_NO_INDEX": "yes",
    }
    assert deps.source_args({**env, "PIP_NO_INDEX": "0"}, []) == [
        "--index-url", "https://a.example/simple",
        "--extra-index-url", "https://b.example/simple",
        "--find-links", str(wheels),
    ]  # fmt: skip
    # pip's no-index: indexes would be ignored by pip, so none is passed
    assert deps.source_args(env, []) == ["--find-links", str(wheels), "--no-index"]
    uv = {"UV_DEFAULT_INDEX": "x", "UV_INDEX": "y", "UV_FIND_LINKS": "z", "UV_NO_INDEX": "0"}
    assert deps.source_args({**env, **uv}, []) == []
    assert deps.source_args({**env, "UV_INDEX_URL": "x", "UV_NO_INDEX": "false"}, []) == [
        "--extra-index-url", "https://b.example/simple",
        "--find-links", str(wheels),
    ]  # fmt: skip
    # UV_NO_INDEX=1: uv looks at no index, so pip's index URLs are not translated either
    assert deps.source_args({**env, "UV_NO_INDEX": "1"}, []) == ["--find-links", str(wheels)]


def test_source_args_no_index_from_config_and_env_override(tmp_path: Path):
    conf = _conf(tmp_path / "pip.conf", "[install]\nno-index = true\n")
    assert deps.source_args({}, [conf]) == ["--no-index"]
    assert deps.source_args({"PIP_NO_INDEX": "false"}, [conf]) == []


def test_source_args_finds_pip_config_files_like_pip(tmp_path: Path):
    home = tmp_path / "home"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _conf(home / ".config" / "pip" / "pip.conf",
          f"[global]\nfind-links = {wheels}\nextra-index-url = file:///no/such/simple\n")  # fmt: skip
    _conf(home / ".pip" / "pip.conf", "[global]\nfind-links = https://legacy.example/\n")
    env = {"HOME": str(home), "XDG_CONFIG_DIRS": str(tmp_path / "none")}
    args = deps.source_args(env)
    assert "--find-links" in args and str(wheels) in args
    assert not any("legacy" in a or "no/such" in a for a in args)
    assert "--find-links" not in deps.source_args({**env, "PIP_CONFIG_FILE": os.devnull})
    env_file = _conf(tmp_path / "env.conf", "[global]\nindex-url = https://env-file.example/s\n")
    args = deps.source_args({**env, "PIP_CONFIG_FILE": str(env_file)})
    assert "https://env-file.example/s" in args and str(wheels) not in args  # user file skipped


def test_source_args_broken_config_is_reported(tmp_path: Path):
    conf = _conf(tmp_path / "pip.conf", "index-url = x\n")  # no section header
    with pytest.raises(MalformedFile) as info:
        deps.source_args({}, [conf])
    assert isinstance(info.value, BadInput) and str(conf) in info.value.message


# --- environments --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def locks(tmp_path_factory: pytest.TempPathFactory, environ) -> dict[str, Lock]:
    tmp_path = tmp_path_factory.mktemp("locks")
    return {
        "new": deps.lock(_req(tmp_path, "clawdemo-signals>=1.0\n", "a.txt"), PY, environ=environ),
        "old": deps.lock(_req(tmp_path, "clawdemo-signals==1.0.0\n", "b.txt"), PY, environ=environ),
        "risk": deps.lock(_req(tmp_path, "clawdemo-risk\n", "c.txt"), PY, environ=environ),
    }


def test_env_root_validates_task_id(tmp_path: Path):
    assert deps.env_root(tmp_path, "T01") == tmp_path / "envs" / "T01"
    for bad in ("../x", "-rf", "a b", ""):
        with pytest.raises(BadInput):
            deps.env_root(tmp_path, bad)


def test_ensure_env_builds_exact_env_and_switches_current(tmp_path: Path, environ, locks):
    state = tmp_path / ".clawback"
    info = deps.ensure_env(state, "T01", locks["new"], PY, environ=environ)
    assert info.path == state / "envs" / "T01" / locks["new"].digest_hex[:16]
    assert info.python == info.path / "bin" / "python"
    assert (info.reused, info.previous, info.repaired) == (False, None, False)
    assert _import_version(info.python, "clawdemo_signals") == "1.1.0"
    assert deps.installed(info.python, environ=environ) == locks["new"].packages
    assert (info.path / deps.LOCK_FILE).read_text() == locks["new"].text
    assert (info.path / deps.MARKER).is_file()
    assert deps.current_env(state, "T01") == info.path
    assert os.readlink(deps.env_root(state, "T01") / "current") == info.path.name  # relative
    assert deps.current_env(state, "T02") is None  # other tasks untouched


def test_ensure_env_reuses_a_complete_env_without_uv(tmp_path: Path, environ, locks, monkeypatch):
    state = tmp_path / ".clawback"
    first = deps.ensure_env(state, "T01", locks["new"], PY, environ=environ)
    deps.ensure_env(state, "T01", locks["old"], PY, environ=environ)

    def no_uv(*args, **kwargs):
        raise AssertionError("uv must not run when an env is reused")

    monkeypatch.setattr(deps, "run_uv", no_uv)
    again = deps.ensure_env(state, "T01", locks["new"], PY, environ=environ)
    assert again.reused and again.path == first.path
    assert again.previous == state / "envs" / "T01" / locks["old"].digest_hex[:16]
    assert deps.current_env(state, "T01") == first.path


def test_envs_are_exact_and_per_task(tmp_path: Path, wheelhouse: Path, environ, locks):
    state = tmp_path / ".clawback"
    risk = deps.ensure_env(state, "T01", locks["risk"], PY, environ=environ)
    other = deps.ensure_env(state, "T02", locks["old"], PY, environ=environ)
    # an extra package installed by hand into T01's env
    _uv("pip", "install", "--python", str(risk.python), "--quiet", "clawdemo-extra",
        environ=environ)  # fmt: skip
    assert "clawdemo-extra==0.3.0" in deps.installed(risk.python, environ=environ)

    # a new env for another lock holds exactly that lock (nothing carried over)
    old = deps.ensure_env(state, "T01", locks["old"], PY, environ=environ)
    assert old.previous == risk.path and old.path != risk.path
    assert deps.installed(old.python, environ=environ) == ("clawdemo-signals==1.0.0",)
    assert _import_version(old.python, "clawdemo_signals") == "1.0.0"

    # back to the risk lock: reused as is, or with verify re-synced exactly (extra removed)
    assert deps.ensure_env(state, "T01", locks["risk"], PY, environ=environ).reused
    fixed = deps.ensure_env(state, "T01", locks["risk"], PY, environ=environ, verify=True)
    assert fixed.reused and fixed.repaired
    assert deps.installed(fixed.python, environ=environ) == locks["risk"].packages
    clean = deps.ensure_env(state, "T01", locks["risk"], PY, environ=environ, verify=True)
    assert clean.reused and not clean.repaired

    # T02 was never touched
    assert deps.current_env(state, "T02") == other.path
    assert deps.installed(other.python, environ=environ) == ("clawdemo-signals==1.0.0",)


def test_empty_lock_gives_an_empty_env(tmp_path: Path, environ):
    info = deps.ensure_env(tmp_path, "T01", Lock.empty(), PY, environ=environ)
    assert deps.installed(info.python, environ=environ) == ()
    subprocess.run([str(info.python), "-c", "import sys"], check=True)


def test_switch_current_and_undo(tmp_path: Path, environ, locks):
    state = tmp_path / ".clawback"
    a = deps.ensure_env(state, "T01", locks["old"], PY, environ=environ)
    b = deps.ensure_env(state, "T01", locks["new"], PY, environ=environ)
    assert b.previous == a.path
    deps.switch_current(state, "T01", b.previous)  # undo
    assert deps.current_env(state, "T01") == a.path
    deps.switch_current(state, "T01", a.previous)  # undo to "nothing"
    assert deps.current_env(state, "T01") is None
    assert not (deps.env_root(state, "T01") / "current").is_symlink()
    deps.switch_current(state, "T01", None)  # idempotent
    deps.switch_current(state, "T01", b.path)
    assert deps.current_env(state, "T01") == b.path
    assert [p.name for p in deps.env_root(state, "T01").iterdir() if p.name.startswith(".")] == []


def test_interrupted_build_is_rebuilt(tmp_path: Path, environ, locks):
    state = tmp_path / ".clawback"
    env_dir = deps.env_root(state, "T01") / locks["new"].digest_hex[:16]
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "half-written").write_text("junk")
    info = deps.ensure_env(state, "T01", locks["new"], PY, environ=environ)
    assert info.path == env_dir and not info.reused
    assert not (env_dir / "half-written").exists() and (env_dir / deps.MARKER).is_file()
    assert _import_version(info.python, "clawdemo_signals") == "1.1.0"
    # a marker for another interpreter is not this env either
    other = deps.ensure_env(state, "T01", locks["new"], str(Path(PY).resolve()), environ=environ)
    assert other.reused is (str(Path(PY).resolve()) == PY)


def test_failed_sync_leaves_no_env_and_keeps_current(tmp_path: Path, environ, locks):
    state = tmp_path / ".clawback"
    good = deps.ensure_env(state, "T01", locks["new"], PY, environ=environ)
    bad = Lock.from_text("clawdemo-missing==1.0\n")
    with pytest.raises(DependencyError) as info:
        deps.ensure_env(state, "T01", bad, PY, environ=environ)
    assert "clawdemo-missing" in info.value.message
    assert not (deps.env_root(state, "T01") / bad.digest_hex[:16]).exists()
    assert deps.current_env(state, "T01") == good.path


def test_install_pins_into_a_shared_interpreter_is_not_exact(tmp_path: Path, wheelhouse, environ,
                                                             locks):  # fmt: skip
    venv = tmp_path / "shared"
    _uv("venv", "--python", PY, str(venv), "--quiet", environ=environ)
    python = venv / "bin" / "python"
    _uv("pip", "install", "--python", str(python), "--quiet", "clawdemo-extra", environ=environ)
    deps.install_pins(str(python), locks["risk"], environ=environ)
    assert deps.installed(python, environ=environ) == (
        "clawdemo-extra==0.3.0",
        "clawdemo-risk==0.1.0",
        "clawdemo-signals==1.1.0",
    )
    deps.install_pins(str(python), Lock.empty(), environ=environ)  # no-op
