"""Saved tokens, one per server: ``ivk login`` keeps them, every ``ivk`` command uses them.

The store itself (``invokeai_py_client._tokens``) is checked on files; the rest runs the real
``ivk`` against real multi-user servers: the session's ``mu_server`` and, for runs spread over
two servers, this module's own second one. Every ``ivk`` here gets its own ``IVK_CONFIG_DIR``.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _cli_helpers import run_ivk
from invokeai_py_client import InvokeAIClient, _tokens
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run import read_manifest, resume

REPO = Path(__file__).resolve().parents[1]
BLUR = REPO / "examples" / "workflows" / "blur.json"


# --------------------------------------------------------------------------- the store


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's IVK_CONFIG_DIR (for this process and the ivk it runs)."""
    path = tmp_path / "config"
    monkeypatch.setenv(_tokens.CONFIG_DIR_ENV, str(path))
    return path


def test_keys_are_the_server_root_the_client_uses() -> None:
    for url in (
        "127.0.0.1:9090",
        "http://gpu-box",
        "https://gpu-box/",
        "http://gpu-box:9090/api/v1",
        "https://gpu-box/invoke/",
        "https://GPU-box/invoke/api/v1",
        "[::1]:9090",
    ):
        with InvokeAIClient.from_url(url) as c:
            assert _tokens.server_key(url) == c.server_url, url
    assert _tokens.server_key("gpu-box:9090") == _tokens.server_key("http://gpu-box:9090/")


def test_where_the_file_lives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_tokens.CONFIG_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert _tokens.store_path() == tmp_path / "xdg" / "invokeai-py-client" / "tokens.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _tokens.store_path() == (
        tmp_path / "home" / ".config" / "invokeai-py-client" / "tokens.json"
    )
    monkeypatch.setenv(_tokens.CONFIG_DIR_ENV, str(tmp_path / "mine"))
    assert _tokens.store_path() == tmp_path / "mine" / "tokens.json"


def test_put_get_remove_private_and_atomic(config: Path) -> None:
    assert _tokens.get("http://a:9090") is None  # no file yet
    path = _tokens.put("a:9090", "token-a")
    assert path == config / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    _tokens.put("https://b/invoke/api/v1", "token-b")
    assert _tokens.get("http://a:9090/") == "token-a"
    assert _tokens.get("https://b:443/invoke") == "token-b"
    assert json.loads(path.read_text())["tokens"] == {
        "http://a:9090": "token-a",
        "https://b:443/invoke": "token-b",
    }
    _tokens.put("http://a:9090", "token-a2")  # replaced
    assert _tokens.get("a:9090") == "token-a2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in config.iterdir()) == ["tokens.json"]  # no temp files left
    assert _tokens.remove("a:9090") is True and _tokens.remove("a:9090") is False
    assert _tokens.get("a:9090") is None and _tokens.get("https://b/invoke") == "token-b"
    assert _tokens.get("not a url ::") is None


def test_a_corrupt_file_warns_once_and_counts_as_empty(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config.mkdir()
    path = config / "tokens.json"
    for text in ('{"tokens": {"http://a:9090": "secret-tok', '["x"]', "\xff\xfe"):
        _tokens._warned.clear()
        caplog.clear()
        path.write_bytes(text.encode("latin-1"))
        with caplog.at_level(logging.WARNING, logger=_tokens.__name__):
            assert _tokens.get("http://a:9090") is None
            assert _tokens.get("http://b:9090") is None
        warnings = [r for r in caplog.records if r.name == _tokens.__name__]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        message = warnings[0].getMessage()
        assert str(path) in message and "secret-tok" not in message
    _tokens.put("http://a:9090", "fresh")  # a new login mends the file
    assert _tokens.get("http://a:9090") == "fresh"


# --------------------------------------------------------------------------- ivk


def _new_user(server: LocalServer) -> tuple[str, str]:
    email = f"store-{uuid.uuid4().hex[:8]}@example.com"
    password = "Store-" + uuid.uuid4().hex + "-a1B"
    server.user_token(email, password)  # the administrator creates the account
    return email, password


def _ivk(*args: str, config: Path, password: str | None = None, key: str | None = None) -> Any:
    env = {"IVK_CONFIG_DIR": str(config)}
    if password is not None:
        env["INVOKEAI_PASSWORD"] = password
    if key is not None:
        env["INVOKEAI_API_KEY"] = key
    return run_ivk(*args, env=env, timeout=300)


def _login(server: LocalServer, config: Path, *, warning: bool = False) -> str:
    """A new user logs in with ``ivk login`` (saving the token); returns the email.

    ``warning``: the store was corrupt, which ivk says (once) before logging in."""
    email, password = _new_user(server)
    done = _ivk("login", "--server", server.url, "--email", email, config=config, password=password)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    root = _tokens.server_key(server.url)
    path = config / "tokens.json"
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == f"logged in to {root} as {email}; token saved in {path}"
    assert len(lines) == (2 if warning else 1), lines
    assert password not in done.stderr
    return email


def _sweep(count: int) -> list[str]:
    """``count`` runs of blur.json in a colour no other test uses (InvokeAI's invocation
    cache is shared between users: another user's cached image is one this user may not
    read)."""
    n = uuid.uuid4().int
    colour = f"{n % 256},{(n >> 8) % 256},{(n >> 16) % 256}"
    widths = ",".join(str(16 + 8 * i) for i in range(count))
    return ["--sweep", f"Width={widths}", "--set", f"Colour={colour}"]


def _saved(config: Path) -> dict[str, str]:
    data = json.loads((config / "tokens.json").read_text())
    tokens: dict[str, str] = data["tokens"]
    return tokens


@pytest.mark.server
@pytest.mark.slow
def test_login_saves_then_commands_need_no_key_then_logout(
    mu_server: LocalServer, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    _login(mu_server, config)
    path = config / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    token = _saved(config)[_tokens.server_key(mu_server.url)]

    status = _ivk("queue", "status", "--server", mu_server.url, "--json", config=config)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout.strip().splitlines()[-1])["ok"] is True
    out = tmp_path / "run"
    run = _ivk(
        "run", str(BLUR), *_sweep(2), "--out", str(out),
        "--server", mu_server.url, config=config,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert len(list((out / "images").glob("*.png"))) == 2
    assert token not in status.stdout + status.stderr + run.stdout + run.stderr
    # the run's enqueue renewed the token (X-Refreshed-Token): the renewed one was saved back
    renewed = _saved(config)[_tokens.server_key(mu_server.url)]
    assert renewed != token and renewed not in run.stdout + run.stderr
    with InvokeAIClient.from_url(mu_server.url, api_key=renewed) as c:
        assert c.queue.queue_status()

    bye = _ivk("logout", "--server", mu_server.url, config=config)
    assert bye.returncode == 0, bye.stderr
    assert bye.stderr.strip().splitlines() == [
        f"logged out of {_tokens.server_key(mu_server.url)}; token removed from {path}"
    ]
    assert _saved(config) == {}
    after = _ivk("queue", "status", "--server", mu_server.url, config=config)
    assert after.returncode == 1
    lines = after.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ivk: error: not authorized"), lines
    again = _ivk("logout", "--server", mu_server.url, config=config)
    assert again.returncode == 0 and "not logged in" in again.stderr


@pytest.mark.server
@pytest.mark.slow
def test_an_explicit_api_key_wins_over_the_saved_token(
    mu_server: LocalServer, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    _login(mu_server, config)
    wrong = "wrong-" + uuid.uuid4().hex
    for how in ({"key": wrong}, {"flag": wrong}):
        args = ["--api-key", wrong] if "flag" in how else []
        done = _ivk(
            *args, "queue", "status", "--server", mu_server.url, config=config, key=how.get("key")
        )
        assert done.returncode == 1, done.stderr  # the wrong explicit key, not the saved one
        assert "not authorized" in done.stderr and wrong not in done.stderr

    # and the other way round: a bad saved token, a good explicit one
    good = _saved(config)[_tokens.server_key(mu_server.url)]
    (config / "tokens.json").write_text(
        json.dumps({"version": 1, "tokens": {_tokens.server_key(mu_server.url): wrong}})
    )
    done = _ivk("queue", "status", "--server", mu_server.url, config=config, key=good)
    assert done.returncode == 0, done.stderr


@pytest.mark.server
@pytest.mark.slow
def test_a_corrupt_store_is_one_line_and_api_key_still_works(
    mu_server: LocalServer, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    path = config / "tokens.json"
    path.write_text('{"tokens": {')
    none = _ivk("queue", "status", "--server", mu_server.url, config=config)
    assert none.returncode == 1
    lines = none.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in none.stderr, lines
    assert lines[0].startswith(f"ivk: warning: ignoring the saved tokens in {path}"), lines
    assert "not valid JSON" in lines[0]
    assert lines[1].startswith("ivk: error: not authorized")

    key = mu_server.user_token(_new_user(mu_server)[0])
    ok = _ivk("--api-key", key, "queue", "status", "--server", mu_server.url, config=config)
    assert ok.returncode == 0, ok.stderr
    assert "Traceback" not in ok.stderr and "ivk: error" not in ok.stderr

    _login(mu_server, config, warning=True)  # a new login writes a good file
    assert list(_saved(config)) == [_tokens.server_key(mu_server.url)]


# --------------------------------------------------------------------------- two servers


@pytest.fixture(scope="module")
def mu_server_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A second multi-user server, with users of its own."""
    root = tmp_path_factory.mktemp("invokeai-multiuser-b")
    with LocalServer(root, fast=True, multiuser=True) as srv:
        yield srv


@pytest.mark.server
@pytest.mark.slow
def test_two_multiuser_servers_each_with_its_saved_token(
    mu_server: LocalServer, mu_server_b: LocalServer, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    _login(mu_server, config)
    _login(mu_server_b, config)
    a, b = _tokens.server_key(mu_server.url), _tokens.server_key(mu_server_b.url)
    saved = _saved(config)
    assert set(saved) == {a, b} and saved[a] != saved[b]
    # each token is good on its own server only
    with InvokeAIClient.from_url(b, api_key=saved[a]) as c:
        assert c.health_check()
        with pytest.raises(Exception, match="401"):
            c.queue.queue_status()

    out = tmp_path / "run"
    run = _ivk(
        "run", str(BLUR), *_sweep(8), "--out", str(out),
        "--server", mu_server.url, "--server", mu_server_b.url, config=config,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = read_manifest(out)
    assert len(rows) == 8 and {r["status"] for r in rows} == {"completed"}, rows
    assert set(Counter(r["server"] for r in rows)) == {a, b}
    assert len(list((out / "images").glob("*.png"))) == 8

    detached = tmp_path / "detached"
    sub = _ivk(
        "run", str(BLUR), *_sweep(8), "--out", str(detached), "--detach",
        "--server", mu_server.url, "--server", mu_server_b.url, config=config,
    )  # fmt: skip
    assert sub.returncode == 0, sub.stderr
    done = _ivk("resume", str(detached), config=config)
    assert done.returncode == 0, done.stderr
    rows = read_manifest(detached)
    assert len(rows) == 8 and {r["status"] for r in rows} == {"completed"}, rows
    assert set(Counter(r["server"] for r in rows)) == {a, b}
    assert len(list((detached / "images").glob("*.png"))) == 8


@pytest.mark.server
@pytest.mark.slow
def test_library_resume_uses_each_servers_saved_token(
    mu_server: LocalServer,
    mu_server_b: LocalServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``resume(out)`` without a client: INVOKEAI_API_KEY, else each server's saved token."""
    config = tmp_path / "config"
    _login(mu_server, config)
    _login(mu_server_b, config)
    out = tmp_path / "detached"
    sub = _ivk(
        "run", str(BLUR), *_sweep(6), "--out", str(out), "--detach",
        "--server", mu_server.url, "--server", mu_server_b.url, config=config,
    )  # fmt: skip
    assert sub.returncode == 0, sub.stderr
    monkeypatch.setenv(_tokens.CONFIG_DIR_ENV, str(config))
    monkeypatch.delenv("INVOKEAI_API_KEY", raising=False)
    result = resume(out)
    assert result.ok and result.images == 6, result
    assert os.environ.get("INVOKEAI_API_KEY") is None
    # a plain client does not read the store
    with InvokeAIClient.from_url(mu_server.url) as plain:
        assert plain.api_key is None
