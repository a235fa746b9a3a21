"""``client.login`` / ``alogin`` / ``logout`` and ``ivk login`` against real servers.

The multi-user server is the session's ``mu_server`` (conftest.py); its users are created by
the administrator (``LocalServer.user_token(email, password)``) with passwords these tests
know, then log in the way a person would: with their email and password.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from _cli_helpers import run_ivk
from invokeai_py_client import AuthenticationError, InvokeAIClient
from invokeai_py_client.exceptions import InvokeAIError
from invokeai_py_client.local_server import LocalServer

REPO = Path(__file__).resolve().parents[1]
BLUR = REPO / "examples" / "workflows" / "blur.json"

pytestmark = [pytest.mark.server, pytest.mark.slow]


def _password() -> str:
    return "Login-" + uuid.uuid4().hex + "-a1B"


def _new_user(server: LocalServer) -> tuple[str, str]:
    """A fresh regular user on ``server``: (email, password)."""
    email, password = f"login-{uuid.uuid4().hex[:8]}@example.com", _password()
    server.user_token(email, password)  # the administrator creates the account
    return email, password


def _unique_width() -> int:
    # inputs no other test runs: InvokeAI's invocation cache is shared between users, and
    # another user's cached output is an image this user may not read
    return 700 + uuid.uuid4().int % 200


def _run_blur_by_events(client: InvokeAIClient) -> None:
    """Run blur.json and prove its completion came by the socket (no safety poll)."""
    hub = client.events
    assert hub.wait_connected(15), hub.last_error
    wf = client.workflow_repo.create_workflow_from_file(str(BLUR))
    wf.set("Width", _unique_width())
    seen: list[dict[str, Any]] = []
    wf.submit_sync()
    item = wf.wait_for_completion_sync(
        timeout=60, poll_interval=30.0, progress_callback=seen.append
    )
    assert item["status"] == "completed"
    assert "invocation_complete" in [e["event_type"] for e in seen]  # only the socket says so
    # the read when the wait starts and the one the completion event asked for
    assert hub.stats["polls"] <= 2
    assert wf.map_outputs_to_images(item)[0]["image_names"]


# --------------------------------------------------------------------------- the library


def test_login_then_run_a_workflow_with_socket_events(mu_server: LocalServer) -> None:
    email, password = _new_user(mu_server)
    with InvokeAIClient.from_url(mu_server.url) as c:
        assert c.api_key is None
        c.login(email, password)
        token = c.api_key
        assert token and token not in repr(c) and password not in repr(c)
        assert c.queue.queue_status()["queue"]["queue_id"] == "default"
        board = c.board_repo.create_board(f"login-{uuid.uuid4().hex[:8]}")
        assert board.board_id
        _run_blur_by_events(c)
        assert c.events.stats["connects"] == 1


def test_login_after_the_socket_was_refused_reconnects_with_the_token(
    mu_server: LocalServer,
) -> None:
    email, password = _new_user(mu_server)
    with InvokeAIClient.from_url(mu_server.url) as c:
        hub = c.events
        hub.reconnect_delay = hub.reconnect_delay_max = 30.0  # only login may end the wait
        assert not hub.wait_ready(10)  # anonymous: the multi-user server refuses the socket
        assert hub.last_error and "api_key" in hub.last_error
        c.login(email, password)
        assert hub.wait_connected(10), hub.last_error  # at once, not after the 30 s backoff
        assert hub.stats["connects"] == 1
        _run_blur_by_events(c)


def test_login_as_another_user_moves_an_open_socket_to_that_user(mu_server: LocalServer) -> None:
    (first, first_pw), (second, second_pw) = _new_user(mu_server), _new_user(mu_server)
    with InvokeAIClient.from_url(mu_server.url) as c:
        c.login(first, first_pw)
        hub = c.events
        assert hub.wait_connected(15), hub.last_error
        first_key = c.api_key
        c.login(second, second_pw, remember_me=True)
        assert c.api_key and c.api_key != first_key
        # the socket reconnects with the new token: else the second user's events, which go
        # to that user's room only, would never arrive and the wait below would poll
        _run_blur_by_events(c)
        assert hub.stats["connects"] == 2


def test_wrong_password_is_an_authentication_error_without_the_password(
    mu_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="invokeai_py_client")
    email, password = _new_user(mu_server)
    wrong = "Wrong-" + uuid.uuid4().hex
    with InvokeAIClient.from_url(mu_server.url) as c:
        with pytest.raises(AuthenticationError) as info:
            c.login(email, wrong)
        exc = info.value
        assert exc.status_code == 401
        text = str(exc)
        assert "incorrect email or password" in text and email in text
        shown = [text, repr(exc), json.dumps(exc.detail, default=str), repr(c), caplog.text]
        assert exc.__cause__ is None and exc.__suppress_context__
        for s in shown:
            assert wrong not in s and password not in s
        assert c.api_key is None  # nothing changed
        # an unknown user reads the same (the server does not say which one was wrong)
        with pytest.raises(AuthenticationError, match="incorrect email or password"):
            c.login(f"nobody-{uuid.uuid4().hex[:6]}@example.com", password)
        # a malformed email is refused by the server's validation: still no password shown
        with pytest.raises(InvokeAIError) as bad:
            c.login("not an email", wrong)
        assert wrong not in str(bad.value) + json.dumps(bad.value.__dict__, default=str)


def test_logout_forgets_the_token(mu_server: LocalServer) -> None:
    email, password = _new_user(mu_server)
    with InvokeAIClient.from_url(mu_server.url) as c:
        c.login(email, password)
        assert c.queue.queue_status()
        c.logout()
        assert c.api_key is None and "api_key" not in repr(c)
        with pytest.raises(AuthenticationError):
            c.queue.queue_status()
        c.logout()  # without a token: nothing to do


def test_login_on_a_single_user_server_says_it_needs_none(server: LocalServer) -> None:
    password = _password()
    with InvokeAIClient.from_url(server.url) as c:
        with pytest.raises(InvokeAIError, match="single-user") as info:
            c.login("alice@example.com", password)
        assert not isinstance(info.value, AuthenticationError)
        assert "needs no login" in str(info.value) and password not in str(info.value)
        assert c.api_key is None
        assert c.queue.queue_status()  # the client works as it is


def test_alogin_under_asyncio(mu_server: LocalServer, server: LocalServer) -> None:
    email, password = _new_user(mu_server)

    async def main() -> None:
        async with InvokeAIClient.from_url(mu_server.url) as c:
            with pytest.raises(AuthenticationError):
                await c.board_repo.alist_boards()
            await c.alogin(email, password)
            assert c.api_key
            assert await c.board_repo.alist_boards() is not None
            assert c.queue.queue_status()  # the sync side has the token too
            with pytest.raises(AuthenticationError, match="incorrect email or password"):
                await c.alogin(email, "Wrong-" + uuid.uuid4().hex)
            await c.alogout()
            assert c.api_key is None
        async with InvokeAIClient.from_url(server.url) as single:
            with pytest.raises(InvokeAIError, match="single-user"):
                await single.alogin(email, password)

    asyncio.run(main())


# --------------------------------------------------------------------------- ivk login


def _ivk(
    *args: str, password: str | None = None, stdin: str = "", config: Path | None = None
) -> Any:
    env = {"INVOKEAI_PASSWORD": password} if password is not None else {}
    if config is not None:
        env["IVK_CONFIG_DIR"] = str(config)
    return run_ivk(*args, env=env, stdin=stdin, timeout=120)


def test_ivk_login_prints_a_usable_token(mu_server: LocalServer, tmp_path: Path) -> None:
    email, password = _new_user(mu_server)
    config = tmp_path / "config"
    done = _ivk(
        "login", "--print-token", "--server", mu_server.url, "--email", email,
        password=password, config=config,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert done.stdout == token + "\n"  # the token and nothing else: $(ivk login ...)
    assert password not in done.stdout + done.stderr
    assert not (config / "tokens.json").exists()  # printed, not saved
    with InvokeAIClient.from_url(mu_server.url, api_key=token) as c:
        assert c.board_repo.list_boards() is not None
    boards = _ivk("--api-key", token, "boards", "list", "--server", mu_server.url, "--json")
    assert boards.returncode == 0, boards.stderr
    assert json.loads(boards.stdout.strip().splitlines()[-1])["ok"] is True

    remembered = _ivk(
        "login", "--server", mu_server.url, "--email", email, "--remember-me", "--print-token",
        password=password, config=config,
    )  # fmt: skip
    assert remembered.returncode == 0, remembered.stderr
    assert remembered.stdout.strip() and remembered.stdout.strip() != token


def test_ivk_login_wrong_password_is_one_line(mu_server: LocalServer) -> None:
    email, _ = _new_user(mu_server)
    wrong = "Wrong-" + uuid.uuid4().hex
    bad = _ivk("login", "--server", mu_server.url, "--email", email, password=wrong)
    assert bad.returncode == 1
    assert bad.stdout == ""
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ivk: error: not authorized: login"), lines
    assert "incorrect email or password" in lines[0]
    assert "Traceback" not in bad.stderr and wrong not in bad.stderr


def test_ivk_login_without_a_password_or_on_a_single_user_server(
    mu_server: LocalServer, server: LocalServer
) -> None:
    email, password = _new_user(mu_server)
    # no INVOKEAI_PASSWORD and no terminal to ask on (stdin at its end)
    none = _ivk("login", "--server", mu_server.url, "--email", email)
    assert none.returncode == 2 and none.stdout == ""
    lines = none.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ivk: error: no password: set INVOKEAI_PASSWORD"), lines

    single = _ivk("login", "--server", server.url, "--email", email, password=password)
    assert single.returncode == 1 and single.stdout == ""
    lines = single.stderr.strip().splitlines()
    assert len(lines) == 1 and "single-user" in lines[0] and "needs no login" in lines[0]
    assert password not in single.stderr
