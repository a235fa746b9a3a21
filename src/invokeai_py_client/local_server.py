"""Run a real InvokeAI server (``invokeai-web``) on loopback, for tests, benchmarks and demos.

The server comes from the ``server`` extra (``pip install 'invokeai-py-client[server]'``). It is
started in a subprocess of the current interpreter, on a free ``127.0.0.1`` port, with its own
root directory (a temporary one unless you give one), and its log written to a file.

Example::

    from invokeai_py_client import InvokeAIClient
    from invokeai_py_client.local_server import LocalServer

    with LocalServer() as server:
        client = InvokeAIClient.from_url(server.url)
        print(client.health_check(), client.server_version)

A multi-user server (InvokeAI's ``multiuser`` setting) wants a token on every request and on
the event socket; :meth:`LocalServer.admin_token` / :meth:`LocalServer.user_token` get one
through the server's own HTTP API::

    with LocalServer(multiuser=True) as server:
        client = InvokeAIClient.from_url(server.url, api_key=server.admin_token())
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from .exceptions import AuthenticationError, InvokeAIError, ServerStartError

__all__ = ["LocalServer", "find_free_port"]

_RUNNING_RE = re.compile(r"running on (https?://[\w.\-]+:(\d+))", re.IGNORECASE)

#: The administrator :meth:`LocalServer.admin_token` creates on a fresh multi-user server.
DEFAULT_ADMIN_EMAIL = "admin@example.com"


def find_free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """A real ``invokeai-web`` in a subprocess, bound to ``127.0.0.1`` only.

    Args:
        root: InvokeAI root directory (models, databases, outputs). A temporary directory,
            removed on :meth:`stop`, when not given.
        port: port to listen on; a free one when not given.
        fast: freeze the app's objects out of the garbage collector once after start-up, so
            the per-item ``gc.collect()`` of the stock server costs milliseconds instead of
            about half a second (a stand-in for a fast GPU server).
        config: extra InvokeAI settings, passed as ``INVOKEAI_<NAME>`` environment variables
            (for example ``{"max_queue_size": 20}``).
        startup_timeout: seconds to wait for ``/api/v1/app/version`` to answer.
        stop_grace: seconds between SIGINT and SIGKILL on :meth:`stop`.
        log_path: where the server's output goes (default ``<root>/invokeai-web.log``).
        multiuser: start InvokeAI in multi-user mode (its ``multiuser`` setting): every API
            request except a few (``/api/v1/app/version``, ``/api/v1/auth/...``) and the
            event socket then need a token, which :meth:`admin_token` / :meth:`user_token`
            provide.

    Attributes:
        url: ``http://127.0.0.1:<port>`` once started.
        log_path: the log file.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        fast: bool = False,
        config: Mapping[str, Any] | None = None,
        startup_timeout: float = 120.0,
        stop_grace: float = 15.0,
        log_path: str | os.PathLike[str] | None = None,
        multiuser: bool = False,
    ) -> None:
        self._given_root = Path(root) if root is not None else None
        self._given_port = port
        self.fast = fast
        self.config = dict(config or {})
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self._given_log = Path(log_path) if log_path is not None else None
        self.multiuser = multiuser
        # email -> password of the accounts made by admin_token / user_token (kept out of repr)
        self._passwords: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp_root: str | None = None
        self._log_file: IO[bytes] | None = None
        self._log_offset = 0
        self.root: Path | None = None
        self.port: int | None = None
        self.log_path: Path | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL of the running server, e.g. ``http://127.0.0.1:50123``."""
        if self.port is None:
            raise ServerStartError("LocalServer is not started; call start() first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the server, or None when it is not running."""
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> LocalServer:
        """Start the server and wait until it answers. Returns ``self``.

        Raises:
            ServerStartError: InvokeAI is not installed, the process died, or it did not
                answer within ``startup_timeout`` seconds (the message ends with the log tail).
        """
        if self.is_running():
            return self
        try:
            import invokeai  # noqa: F401
        except ImportError as exc:
            raise ServerStartError(
                "InvokeAI is not installed in this environment; install the server extra: "
                "pip install 'invokeai-py-client[server]'"
            ) from exc

        if self._given_root is not None:
            self.root = self._given_root
            self.root.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp_root = tempfile.mkdtemp(prefix="invokeai-root-")
            self.root = Path(self._tmp_root)
        self.port = self._given_port or find_free_port()
        self.log_path = self._given_log or (self.root / "invokeai-web.log")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

        env = dict(os.environ)
        env.update(
            {
                "INVOKEAI_ROOT": str(self.root),
                "INVOKEAI_HOST": "127.0.0.1",
                "INVOKEAI_PORT": str(self.port),
                "PYTHONUNBUFFERED": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "HF_HUB_OFFLINE": "1",
                # The server stops itself when this process dies (see _launch.py).
                "IVK_PARENT_PID": str(os.getpid()),
            }
        )
        if self.multiuser:
            env["INVOKEAI_MULTIUSER"] = "true"
        for key, value in self.config.items():
            env[f"INVOKEAI_{key.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else (str(value))
            )
        cmd = [sys.executable, "-m", "invokeai_py_client._launch"]
        if self.fast:
            cmd.append("--fast")
        cmd += ["--", "--root", str(self.root)]
        # A reused root keeps older runs' lines: only read what this start writes.
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        checked_port = False
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while True:
                assert self._proc is not None
                code = self._proc.poll()
                if code is not None:
                    raise ServerStartError(
                        f"InvokeAI exited with code {code} during start-up.\n"
                        f"Log ({self.log_path}):\n{self.log_tail()}"
                    )
                if not checked_port:
                    # InvokeAI silently moves to the next port if ours was taken meanwhile.
                    match = _RUNNING_RE.search(self._read_log())
                    if match:
                        self.port = int(match.group(2))
                        checked_port = True
                try:
                    resp = http.get(f"http://127.0.0.1:{self.port}/api/v1/app/version")
                    if resp.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"InvokeAI did not answer within {self.startup_timeout:.0f} s.\n"
                        f"Log ({self.log_path}):\n{self.log_tail()}"
                    )
                time.sleep(0.2)

    def _read_log(self) -> str:
        """The log written since the current start."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as fh:
            fh.seek(self._log_offset)
            return fh.read().decode("utf-8", errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log."""
        return "\n".join(self._read_log().splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server: SIGINT, then SIGKILL after ``stop_grace`` seconds.

        Removes the temporary root if this object created it. Safe to call twice.
        """
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tmp_root is not None:
            shutil.rmtree(self._tmp_root, ignore_errors=True)
            self._tmp_root = None

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would. The root is kept."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def restart(self) -> LocalServer:
        """Stop (keeping the root and port) and start again."""
        root, port = self.root, self.port
        tmp = self._tmp_root
        self._tmp_root = None  # keep the directory across the restart
        self.stop()
        self._tmp_root = tmp
        self._given_root = root
        self._given_port = port
        return self.start()

    # ------------------------------------------------------------------ multi-user tokens

    def admin_token(self, email: str = DEFAULT_ADMIN_EMAIL, password: str | None = None) -> str:
        """A token (the client's ``api_key``) for the administrator of a multi-user server.

        On a server that has no administrator yet, the first call creates it through the
        server's own setup endpoint (``POST /api/v1/auth/setup``, which only works while no
        administrator exists) with ``password``, or a random one this object remembers.
        Every call then logs in (``POST /api/v1/auth/login``) and returns a fresh token,
        valid for a day. Only the server's HTTP API is used.

        Raises:
            InvokeAIError: the server was not started with ``multiuser=True``.
            AuthenticationError: an administrator already exists and the password is unknown
                or wrong.

        Example::

            with LocalServer(multiuser=True) as server:
                client = InvokeAIClient.from_url(server.url, api_key=server.admin_token())
        """
        with self._auth_http() as http:
            status = self._json(http.get("/api/v1/auth/status"))
            if not status.get("multiuser_enabled"):
                raise InvokeAIError(
                    f"{self.url} is a single-user server: it needs no token "
                    "(start it with LocalServer(multiuser=True) for one that does)"
                )
            if status.get("setup_required"):
                password = password or self._passwords.get(email) or _new_password()
                body = {"email": email, "display_name": "Administrator", "password": password}
                self._json(http.post("/api/v1/auth/setup", json=body))
                self._passwords[email] = password
            return self._login(http, email, password)

    def user_token(self, email: str, password: str | None = None, *, admin: bool = False) -> str:
        """A token for the (non-administrator, unless ``admin``) user ``email``.

        The first call for an email the server does not know creates the account, as the
        administrator (:meth:`admin_token`), through ``POST /api/v1/auth/users``; every call
        then logs in as that user and returns a fresh token.

        Example::

            token = server.user_token("alice@example.com")
            alice = InvokeAIClient.from_url(server.url, api_key=token)
        """
        admin_key = self.admin_token()
        with self._auth_http() as http:
            headers = {"Authorization": f"Bearer {admin_key}"}
            users = self._json(http.get("/api/v1/auth/users", headers=headers))
            if not any(str(u.get("email", "")).lower() == email.lower() for u in users):
                password = password or self._passwords.get(email) or _new_password()
                body = {"email": email, "password": password, "is_admin": admin}
                self._json(http.post("/api/v1/auth/users", json=body, headers=headers))
                self._passwords[email] = password
            return self._login(http, email, password)

    def _auth_http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, trust_env=False)

    @staticmethod
    def _json(resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            from ._http import error_from_response

            raise error_from_response(resp)
        return resp.json()

    def _login(self, http: httpx.Client, email: str, password: str | None) -> str:
        password = password or self._passwords.get(email)
        if password is None:
            raise AuthenticationError(
                f"the account {email!r} already exists on {self.url} and its password is "
                "unknown to this LocalServer: pass password=",
                status_code=401,
                method="POST",
                url=f"{self.url}/api/v1/auth/login",
            )
        resp = http.post("/api/v1/auth/login", json={"email": email, "password": password})
        if resp.status_code == 401:
            raise AuthenticationError(
                f"{self.url} refused the password for {email!r}",
                status_code=401,
                method="POST",
                url=str(resp.request.url),
            )
        token = self._json(resp)["token"]
        self._passwords[email] = password
        return str(token)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        url = f"http://127.0.0.1:{self.port}" if self.port else None
        mode = ", multiuser=True" if self.multiuser else ""
        return f"LocalServer(url={url!r}, {state}, fast={self.fast}{mode})"


def _new_password() -> str:
    """A random password that also passes InvokeAI's strict checking (upper, lower, digit)."""
    return "Ivk-" + secrets.token_urlsafe(18) + "-a1B"
