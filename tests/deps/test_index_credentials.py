"""Index credentials reach uv through its environment, never its argv (world-readable in /proc):
a real uv behind an argv-recording wrapper, against a real index on loopback that wants basic
auth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tasks_lib.core.errors import MalformedFile, SecretsFound, exit_code_for
from tasks_lib.deps import envs as deps
from tasks_lib.deps import pipconf, uvrun
from tasks_lib.deps.lockfile import Lock, credential_entries
from tests.authindex import argv_recorder, auth_index, clean_env, recorded

PY = sys.executable
USER, TOKEN = "ci-bot", "pypi-Tok3n-0a1b2c3d4e5f"


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wrapper, log = argv_recorder(tmp_path, uvrun.uv_bin())
    monkeypatch.setattr(uvrun, "uv_bin", lambda: str(wrapper))
    return log


def _no_credential_in(argvs: list[list[str]]) -> None:
    assert argvs, "uv was never run"
    for argv in argvs:
        joined = " ".join(argv)
        assert TOKEN not in joined and f"{USER}:" not in joined and "@127.0.0.1" not in joined


def _lock_and_install(tmp_path: Path, env: dict[str, str]) -> deps.EnvInfo:
    req = tmp_path / "requirements.txt"
    req.write_text("clawdemo-risk\n")
    lk = deps.lock(req, PY, environ=env)
    assert lk.packages == ("clawdemo-risk==0.1.0", "clawdemo-signals==1.1.0")
    assert TOKEN not in lk.text and "127.0.0.1" not in lk.text
    info = deps.ensure_env(tmp_path / "state", "T01", lk, PY, environ=env, verify=True)
    assert deps.installed(info.python, environ=env) == lk.packages
    return info


def test_pip_index_url_with_credentials_never_on_uv_argv(
    tmp_path: Path, wheelhouse: Path, recorder: Path
) -> None:
    with auth_index(wheelhouse, USER, TOKEN) as index:
        env = clean_env({"PIP_INDEX_URL": index.with_auth("/simple")}, tmp_path / "cache")
        _lock_and_install(tmp_path, env)
    assert any(p.startswith("/files/") for p in index.authorized)  # uv used the credentials
    _no_credential_in(recorded(recorder))


def test_pip_conf_extra_index_url_with_credentials_never_on_uv_argv(
    tmp_path: Path, wheelhouse: Path, recorder: Path
) -> None:
    with auth_index(wheelhouse, USER, TOKEN) as index:
        conf = tmp_path / "pip.conf"
        conf.write_text(f"[global]\nindex-url = {tmp_path.as_uri()}/empty-index\n"
                        f"extra-index-url = {index.with_auth('/simple')}\n")
        (tmp_path / "empty-index").mkdir()
        env = clean_env({"PIP_CONFIG_FILE": str(conf)}, tmp_path / "cache")
        _lock_and_install(tmp_path, env)
    assert index.authorized
    _no_credential_in(recorded(recorder))


def test_find_links_url_with_credentials_and_no_index(
    tmp_path: Path, wheelhouse: Path, recorder: Path
) -> None:
    with auth_index(wheelhouse, USER, TOKEN) as index:
        env = clean_env({"PIP_FIND_LINKS": index.with_auth("/files/"), "PIP_NO_INDEX": "1"},
                        tmp_path / "cache")
        _lock_and_install(tmp_path, env)
    assert "/files/" in index.authorized
    argvs = recorded(recorder)
    _no_credential_in(argvs)
    assert any("--no-index" in argv for argv in argvs if "compile" in argv)


def test_uv_environ_carries_urls_and_flags_carry_none(tmp_path: Path) -> None:
    odd = tmp_path / "wheels,old"  # pip splits PIP_FIND_LINKS at whitespace, uv at commas
    odd.mkdir()
    env = {"PIP_INDEX_URL": "https://u:p@a.example/simple",
           "PIP_EXTRA_INDEX_URL": "https://b.example/simple https://t0k@c.example/simple",
           "PIP_FIND_LINKS": f"{odd} https://u:p@d.example/links,x/", "PIP_NO_INDEX": "0",
           "HOME": str(tmp_path)}  # fmt: skip
    full, flags = pipconf.uv_environ(env, [])
    assert flags == []
    assert full["UV_INDEX_URL"] == "https://u:p@a.example/simple"
    assert full["UV_EXTRA_INDEX_URL"] == "https://b.example/simple https://t0k@c.example/simple"
    # uv splits UV_FIND_LINKS at commas: a comma inside an entry is percent-encoded
    assert full["UV_FIND_LINKS"] == (
        "file://" + str(odd).replace(",", "%2C")
        + ",https://u:p@d.example/links%2Cx/"
    )
    assert full["HOME"] == str(tmp_path)
    full, flags = pipconf.uv_environ({**env, "PIP_NO_INDEX": "1"}, [])
    assert flags == ["--no-index"] and "UV_INDEX_URL" not in full and "UV_FIND_LINKS" in full
    # a UV_* setting the operator made wins: nothing translated over it
    full, _ = pipconf.uv_environ({**env, "UV_DEFAULT_INDEX": "https://mine/simple"}, [])
    assert "UV_INDEX_URL" not in full and full["UV_DEFAULT_INDEX"] == "https://mine/simple"


def test_comma_in_a_find_links_path_still_installs(tmp_path: Path, wheelhouse: Path) -> None:
    odd = tmp_path / "wheel,house"
    odd.mkdir()
    for whl in wheelhouse.glob("*.whl"):
        (odd / whl.name).write_bytes(whl.read_bytes())
    env = clean_env({"PIP_FIND_LINKS": str(odd), "PIP_NO_INDEX": "1"}, tmp_path / "cache")
    req = tmp_path / "requirements.txt"
    req.write_text("clawdemo-risk\n")
    assert deps.lock(req, PY, environ=env).packages == (
        "clawdemo-risk==0.1.0", "clawdemo-signals==1.1.0")


# --- the lock never holds a credential ------------------------------------------------------


def _wheel_url(index_url: str, userinfo: str) -> str:
    host = index_url.split("://", 1)[1]
    return f"http://{userinfo}@{host}/files/clawdemo_signals-1.0.0-py3-none-any.whl"


def test_a_credential_in_a_direct_url_is_refused_before_it_reaches_the_lock(
    tmp_path: Path, wheelhouse: Path
) -> None:
    req = tmp_path / "requirements.txt"
    env = clean_env({}, tmp_path / "cache")
    with auth_index(wheelhouse, USER, TOKEN) as index:
        # what uv itself writes for such an input: the URL exactly as given, credential included
        req.write_text(f"clawdemo-signals @ {_wheel_url(index.url, f'{USER}:{TOKEN}')}\n")
        raw = subprocess.run([uvrun.uv_bin(), "pip", "compile", str(req), "--no-header", "--quiet",
                              "--python", PY], env=env, capture_output=True, text=True, check=True)
        assert TOKEN in raw.stdout
        with pytest.raises(SecretsFound) as info:
            deps.lock(req, PY, environ=env)
    err = info.value
    assert exit_code_for(err) == 3 and err.paths == ["clawdemo-signals"]
    assert TOKEN not in f"{err} {err!r} {err.paths}" and "netrc" in err.hint
    assert "UV_INDEX_<NAME>_PASSWORD" in err.hint


def test_references_netrc_and_index_options_keep_the_lock_clean(
    tmp_path: Path, wheelhouse: Path
) -> None:
    req = tmp_path / "requirements.txt"
    with auth_index(wheelhouse, USER, TOKEN) as index:
        # ${NAME} references: kept as written in the lock, expanded by uv when it installs
        env = clean_env({"IDX_USER": USER, "IDX_TOKEN": TOKEN}, tmp_path / "cache1")
        req.write_text(f"clawdemo-signals @ {_wheel_url(index.url, '${IDX_USER}:${IDX_TOKEN}')}\n")
        lk = deps.lock(req, PY, environ=env)
        assert "${IDX_TOKEN}" in lk.text and TOKEN not in lk.text
        info = deps.ensure_env(tmp_path / "s1", "T01", lk, PY, environ=env)
        (frozen,) = deps.installed(info.python, environ=env)  # uv's freeze drops the userinfo
        assert frozen.startswith("clawdemo-signals @ http://127.0.0.1:") and TOKEN not in frozen
        # netrc: the URL holds no credential at all
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine 127.0.0.1\nlogin {USER}\npassword {TOKEN}\n")
        netrc.chmod(0o600)
        env = clean_env({"NETRC": str(netrc)}, tmp_path / "cache2")
        req.write_text(f"clawdemo-signals @ {_wheel_url(index.url, '').replace('//@', '//')}\n")
        lk = deps.lock(req, PY, environ=env)
        assert TOKEN not in lk.text and USER not in lk.text
        # an index URL with a credential inside requirements.txt: uv does not emit it into the lock
        # (the committed requirements.txt itself is refused by the snapshot's file scan)
        env = clean_env({}, tmp_path / "cache3")
        req.write_text(f"--index-url {index.with_auth('/simple')}\nclawdemo-risk\n")
        lk = deps.lock(req, PY, environ=env)
        assert lk.packages == ("clawdemo-risk==0.1.0", "clawdemo-signals==1.1.0")
        assert TOKEN not in lk.text and "127.0.0.1" not in lk.text
    assert index.authorized and not any(TOKEN in p for p in index.authorized)


def test_lock_messages_mask_credentials() -> None:
    with pytest.raises(MalformedFile) as info:
        Lock.from_text(f"!!bad @ https://{USER}:{TOKEN}@idx.example/x.whl\n")
    assert TOKEN not in str(info.value)
    lk = Lock.from_text(f"x @ https://{USER}:{TOKEN}@idx.example/x.whl\n-e git+https://ghp_"
                        "abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r.git#egg=r\n"
                        "y @ https://${U}:${T}@idx.example/y.whl\nz==1\n")
    assert credential_entries(lk) == ("-e", "x")
