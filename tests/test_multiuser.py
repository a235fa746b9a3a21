"""A multi-user InvokeAI server (``multiuser: true``): the api_key over HTTP and socket.io.

One real server in multi-user mode (``mu_server``: conftest.py, shared with test_login.py). Its
administrator is created through the server's own setup endpoint and a regular user by the
administrator (``LocalServer.admin_token`` / ``user_token``); the tokens are what a user
passes as ``api_key``. Most tests run as the regular user: InvokeAI routes a user's queue
and invocation events only to that user's socket room (and the admins'), so these show the
token reached the socket handshake, not only the HTTP requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from _cli_helpers import run_ivk
from invokeai_py_client import InvokeAIClient
from invokeai_py_client._http import AsyncHttpTransport
from invokeai_py_client.exceptions import AuthenticationError, InvokeAIError, JobFailedError
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run import BatchRun, _bulk, read_manifest
from invokeai_py_client.sweep import Sweep
from test_docs_examples import DOC_URL, extract_blocks

REPO = Path(__file__).resolve().parents[1]
BLUR = REPO / "examples" / "workflows" / "blur.json"
USER = "user@example.com"
DOCS_PAGE = REPO / "docs" / "running-and-events.md"

pytestmark = [pytest.mark.server, pytest.mark.slow]


@pytest.fixture(scope="module")
def user_key(mu_server: LocalServer) -> str:
    """A regular (non-administrator) user's token."""
    return mu_server.user_token(USER)


@pytest.fixture
def user(mu_server: LocalServer, user_key: str) -> Iterator[InvokeAIClient]:
    with InvokeAIClient.from_url(mu_server.url, api_key=user_key) as c:
        yield c


def _png(size: tuple[int, int] = (16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buf, format="PNG")
    return buf.getvalue()


def _ivk(*args: str, key_env: str | None = None, cwd: Path | None = None) -> Any:
    env = {"INVOKEAI_API_KEY": key_env} if key_env is not None else None
    return run_ivk(*args, env=env, cwd=cwd)


# --------------------------------------------------------------------------- the server


def test_server_is_multiuser_and_tokens_come_from_its_api(
    mu_server: LocalServer, server: LocalServer
) -> None:
    assert "multiuser=True" in repr(mu_server)
    admin = mu_server.admin_token()
    assert admin and mu_server.admin_token() and mu_server.user_token(USER)
    assert admin not in repr(mu_server)
    with pytest.raises(InvokeAIError, match="single-user"):
        server.admin_token()  # the session's ordinary server


# --------------------------------------------------------------------------- with the key


def test_user_runs_a_workflow_and_completion_comes_by_socket(
    user: InvokeAIClient, user_key: str
) -> None:
    assert user.health_check()
    assert user.server_version == "6.14.2"
    assert user_key not in repr(user)

    board = user.board_repo.create_board(f"mu-{uuid.uuid4().hex[:8]}")
    img = user.images.upload_image(_png(), board_id=board.board_id)
    assert img.image_name in board.list_image_names()
    assert board.download_image(img.image_name).startswith(b"\x89PNG")

    hub = user.events
    assert hub.wait_connected(15), hub.last_error  # the handshake carried the token
    wf = user.workflow_repo.create_workflow_from_file(str(BLUR))
    seen: list[dict[str, Any]] = []
    wf.submit_sync()
    # a 30 s safety poll: only an event ends this wait without a third read (see below)
    item = wf.wait_for_completion_sync(
        timeout=60, poll_interval=30.0, progress_callback=seen.append
    )
    assert item["status"] == "completed"
    types = [e["event_type"] for e in seen]
    # these only ever arrive on the socket, in the user's own room
    assert "invocation_complete" in types, types
    assert seen[-1]["event_type"] == "queue_item_status_changed"
    assert seen[-1]["status"] == "completed"
    assert hub.connected and hub.stats["connects"] == 1 and hub.stats["disconnects"] == 0
    assert hub.stats["events"] >= 4
    # the read when the wait starts and the one the completion event asked for: no safety poll
    assert hub.stats["polls"] <= 2
    assert wf.map_outputs_to_images(item)[0]["image_names"]


def test_batch_run_downloads_its_images(user: InvokeAIClient, tmp_path: Path) -> None:
    wf = user.workflow_repo.create_workflow_from_file(str(BLUR))
    sweep = Sweep().axis("Width", [32, 40, 48, 56])
    result = BatchRun(user, wf, sweep, tmp_path / "out").run()
    assert result.ok, result
    assert (result.completed, result.images) == (4, 4)
    rows = read_manifest(result.out_dir)
    assert sorted(r["params"]["Width"] for r in rows) == [32, 40, 48, 56]
    for r in rows:
        with Image.open(result.out_dir / r["path"]) as im:
            assert im.size == (r["params"]["Width"], 64)
    assert user.events.connected and user.events.stats["events"] > 0


def test_batch_run_images_come_in_a_zip(
    user: InvokeAIClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bulk zips: InvokeAI tells only the user's own room (not the bulk room) it is ready."""
    monkeypatch.setattr(_bulk, "MAX_WAIT", 120.0)  # the images wait for the end, not a timer
    seen: Counter[tuple[str, str]] = Counter()
    original = AsyncHttpTransport.request

    async def spy(self: AsyncHttpTransport, method: str, path: str, **kw: Any) -> Any:
        key = "zip" if path.endswith(".zip") else "full" if path.endswith("/full") else path
        seen[(method.upper(), key)] += 1
        return await original(self, method, path, **kw)

    monkeypatch.setattr(AsyncHttpTransport, "request", spy)
    runs = 2 * _bulk.BULK_MIN
    wf = user.workflow_repo.create_workflow_from_file(str(BLUR))
    sweep = Sweep().axis("Width", list(range(16, 16 + runs)))
    result = BatchRun(user, wf, sweep, tmp_path / "bulk").run()
    assert result.ok and result.images == runs, result
    assert seen[("POST", "/api/v1/images/download")] >= 1
    assert seen[("GET", "zip")] == seen[("POST", "/api/v1/images/download")]
    assert seen[("GET", "full")] <= runs - _bulk.BULK_MIN
    assert len(list((tmp_path / "bulk" / "images").glob("*.png"))) == runs


def test_admin_token_works_too(mu_server: LocalServer) -> None:
    with InvokeAIClient.from_url(mu_server.url, api_key=mu_server.admin_token()) as admin:
        assert admin.queue.queue_status()["queue"]["queue_id"] == "default"
        assert admin.events.wait_connected(15), admin.events.last_error


def test_the_client_follows_the_servers_token_renewals(mu_server: LocalServer) -> None:
    # InvokeAI answers a successful change with X-Refreshed-Token (sliding sessions). The
    # strongest renewal to test is a password change: it revokes every older token, the old
    # api_key included, and hands the caller the one new token that still works. A client
    # that did not adopt it would be locked out of HTTP and of its next socket connect.
    email, old_pw, new_pw = f"renew-{uuid.uuid4().hex[:8]}@example.com", _pw(), _pw()
    old_key = mu_server.user_token(email, old_pw)
    with InvokeAIClient.from_url(mu_server.url, api_key=old_key) as c:
        hub = c.events
        assert hub.wait_connected(15), hub.last_error
        c.queue.queue_status()
        assert c.api_key == old_key  # a GET renews nothing
        c.http.request(
            "PATCH", "/api/v1/auth/me", json={"current_password": old_pw, "new_password": new_pw}
        )
        new_key = c.api_key
        assert new_key and new_key != old_key and new_key not in repr(c)
        with (
            InvokeAIClient.from_url(mu_server.url, api_key=old_key) as stale,
            pytest.raises(AuthenticationError),
        ):
            stale.queue.queue_status()  # the old key is revoked now ...
        c.queue.queue_status()  # ... and the client carries on with the new one
        assert asyncio.run(c.board_repo.alist_boards()) is not None  # its async side too

        hub.drop_connection()  # the reconnect must present the new token
        assert hub.wait_connected(15), hub.last_error
        assert hub.stats["connects"] == 2
        wf = c.workflow_repo.create_workflow_from_file(str(BLUR))
        # inputs no other test runs: another user's cached node output would be refused
        wf.set("Width", 500 + (uuid.uuid4().int % 200))
        wf.submit_sync()
        item = wf.wait_for_completion_sync(timeout=60, poll_interval=30.0)
        assert item["status"] == "completed"
        assert hub.stats["polls"] <= 2  # completion came by the reconnected socket


def _pw() -> str:
    return "Renew-" + uuid.uuid4().hex + "-a1B"


# --------------------------------------------------------------------------- without it


@pytest.mark.parametrize("key", [None, "not-a-token", "WRONG-eyJhbGciOiJIUzI1NiJ9.x.y"])
def test_missing_or_wrong_key_is_an_authentication_error(
    mu_server: LocalServer, key: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="invokeai_py_client")
    with InvokeAIClient.from_url(mu_server.url, api_key=key) as c:
        assert c.health_check()  # /api/v1/app/version is open even on a multi-user server
        with pytest.raises(AuthenticationError) as info:
            c.queue.queue_status()
        exc = info.value
        assert exc.status_code == 401
        text = str(exc)
        assert "api_key" in text and "--api-key" in text
        assert ("refused the api_key" in text) == (key is not None)

        wf = c.workflow_repo.create_workflow_from_file(str(BLUR))
        with pytest.raises(AuthenticationError):
            wf.submit_sync()  # nothing is enqueued
        with pytest.raises(AuthenticationError):
            c.board_repo.create_board("nope")

        hub = c.events
        assert not hub.wait_ready(10)  # the server refuses the socket too
        assert hub.last_error and "api_key" in hub.last_error
        if key is not None:
            for shown in (text, repr(exc), repr(c), repr(hub), hub.last_error, caplog.text):
                assert key not in shown
            assert key not in json.dumps(exc.detail, default=str)


def test_non_admin_gets_403_for_admin_only_calls(user: InvokeAIClient, user_key: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        user.http.get_json("/api/v1/auth/users")
    assert info.value.status_code == 403
    assert "administrator" in str(info.value) and user_key not in str(info.value)


# --------------------------------------------------------------------------- ivk


def test_api_key_given_after_the_command_moves_to_the_front() -> None:
    from invokeai_py_client.cli.app import _api_key_first

    assert _api_key_first(["run", "wf.json", "--api-key", "T", "--json"]) == [
        "--api-key", "T", "run", "wf.json", "--json",
    ]  # fmt: skip
    assert _api_key_first(["run", "--api-key=T"]) == ["--api-key=T", "run"]
    assert _api_key_first(["--api-key", "T", "run"]) == ["--api-key", "T", "run"]
    assert _api_key_first(["run", "--", "--api-key", "T"]) == ["run", "--", "--api-key", "T"]
    assert _api_key_first(["run", "--api-key"]) == ["run", "--api-key"]  # click says: no value


def test_ivk_api_key_flag_and_env(mu_server: LocalServer, user_key: str, tmp_path: Path) -> None:
    url = mu_server.url
    no_key = _ivk("queue", "status", "--server", url)
    assert no_key.returncode == 1, no_key.stderr
    lines = no_key.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ivk: error: not authorized"), lines
    assert "--api-key" in lines[0] and "Traceback" not in no_key.stderr

    wrong = "wrong-" + uuid.uuid4().hex
    bad = _ivk("--api-key", wrong, "queue", "status", "--server", url, "--json")
    assert bad.returncode == 1
    summary = json.loads(bad.stdout.strip().splitlines()[-1])
    assert summary["ok"] is False and summary["error_code"] == "auth_error"
    assert wrong not in bad.stdout + bad.stderr

    # the flag after the command (both spellings), and the environment variable
    for flag in (["--api-key", user_key], [f"--api-key={user_key}"]):
        ok = _ivk("queue", "status", "--server", url, *flag)
        assert ok.returncode == 0, ok.stderr
        assert "pending" in ok.stdout and user_key not in ok.stdout + ok.stderr

    out = tmp_path / "run"
    run = _ivk(
        "run", str(BLUR), "--sweep", "Width=32,48", "--out", str(out), "--server", url,
        key_env=user_key,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert len(list((out / "images").glob("*.png"))) == 2
    assert user_key not in run.stdout + run.stderr


def _set_cache(server: LocalServer, enabled: bool) -> None:
    """Turn InvokeAI's invocation cache on or off (an administrator's call)."""
    with InvokeAIClient.from_url(server.url, api_key=server.admin_token()) as admin:
        switch = "enable" if enabled else "disable"
        admin.http.request("PUT", f"/api/v1/app/invocation_cache/{switch}")


def test_the_invocation_cache_is_shared_between_users(mu_server: LocalServer) -> None:
    """InvokeAI 6.14.2: another user's cached node output is an image this user may not read.

    The cache key is the node and its inputs, not the user, so user B's run of the graph
    user A just ran gets A's cached ``blank_image`` output, and B's ``img_blur`` may not load
    A's image. The client reports it as the failed item it is; with the cache off (what the
    docs advise for multi-user servers) the same run completes.
    """
    width = 300 + (uuid.uuid4().int % 200)  # inputs no other test of this module runs
    tokens = [mu_server.user_token(f"cache-{n}@example.com") for n in "ab"]
    clients = [InvokeAIClient.from_url(mu_server.url, api_key=t) for t in tokens]
    try:
        handles = [c.workflow_repo.create_workflow_from_file(str(BLUR)) for c in clients]
        for h in handles:
            h.set("Width", width)
        handles[0].submit_sync()
        assert handles[0].wait_for_completion_sync(timeout=60)["status"] == "completed"
        handles[1].submit_sync()
        with pytest.raises(JobFailedError, match="not authorized to access this image"):
            handles[1].wait_for_completion_sync(timeout=60)
        _set_cache(mu_server, False)
        try:
            handles[1].submit_sync()
            assert handles[1].wait_for_completion_sync(timeout=60)["status"] == "completed"
        finally:
            _set_cache(mu_server, True)
    finally:
        for c in clients:
            c.close()


# --------------------------------------------------------------------------- the docs


def test_docs_multiuser_section_runs(
    mu_server: LocalServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The python blocks of docs/running-and-events.md#multi-user-servers, on this server.

    The docs test runs every page against a single-user server, so these blocks are marked
    skip there and run here: the URL points at this server, Alice gets a password through
    ``INVOKEAI_PASSWORD``, and ``LocalServer(multiuser=True)`` is this module's server
    (a second one would only cost start-up time).
    """
    text = DOCS_PAGE.read_text(encoding="utf-8")
    section = text.split("## Multi-user servers", 1)[1].split("\n## ", 1)[0]
    blocks = [b.code for b in extract_blocks(section) if b.lang == "python"]
    assert len(blocks) == 3
    password = "Docs-" + uuid.uuid4().hex
    mu_server.user_token("alice@example.com", password)
    monkeypatch.setenv("INVOKEAI_PASSWORD", password)
    shutil.copytree(REPO / "examples" / "workflows", tmp_path / "examples" / "workflows")
    monkeypatch.chdir(tmp_path)

    @contextlib.contextmanager
    def this_server() -> Iterator[LocalServer]:
        yield mu_server

    namespace: dict[str, Any] = {"__name__": "__docs__", "_this_server": this_server}
    _set_cache(mu_server, False)  # as the page advises (other users ran blur.json here)
    try:
        for code in blocks:
            code = code.replace(DOC_URL, mu_server.url)
            code = code.replace("LocalServer(multiuser=True)", "_this_server()")
            exec(compile(code, str(DOCS_PAGE), "exec"), namespace)
    finally:
        _set_cache(mu_server, True)
        for value in list(namespace.values()):
            if isinstance(value, InvokeAIClient):
                value.close()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "completed"
    assert out[1] == f"InvokeAIClient({mu_server.url!r}, api_key=***)"
    assert out[2] == "True" and out[3].startswith("401 ") and "api_key=" in out[3]
    assert out[4] == "0"
