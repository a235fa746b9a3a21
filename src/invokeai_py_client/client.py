"""The connection to one InvokeAI server, and the repositories hanging off it.

Example::

    from invokeai_py_client import InvokeAIClient

    with InvokeAIClient.from_url("http://127.0.0.1:9090") as client:
        if client.health_check():
            print("InvokeAI", client.server_version)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from ._closing import ClosesOnExit
from ._http import AsyncHttpTransport, BearerToken, HttpTransport
from .exceptions import (
    APIError,
    AuthenticationError,
    InvokeAIConnectionError,
    InvokeAIError,
    NotFoundError,
)

if TYPE_CHECKING:
    import socketio

    from .board import BoardRepository
    from .dnn_model import DnnModelRepository
    from .events import EventHub
    from .images import ImageRepository
    from .queue import QueueClient
    from .quick import QuickClient
    from .workflow import WorkflowRepository
    from .workflow.schema import NodeSchemaIndex

__all__ = ["InvokeAIClient"]

API_PREFIX = "/api/v1"


def _split_base_path(base_path: str) -> str:
    """Return the URL prefix in front of ``/api/v1`` (``""`` for a server at the root)."""
    path = "/" + base_path.strip("/") if base_path.strip("/") else ""
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    elif path.endswith("/api/v2"):
        path = path[: -len("/api/v2")]
    return path.rstrip("/")


class InvokeAIClient(ClosesOnExit):
    """A client for one InvokeAI server.

    Args:
        host: server host name or address.
        port: server port.
        use_https: use ``https://``.
        timeout: seconds per HTTP request.
        base_path: where the API lives, ``/api/v1`` by default; a server behind a reverse
            proxy under ``/invoke`` uses ``/invoke/api/v1`` (or just ``/invoke``).
        api_key: token for multi-user servers, sent as ``Authorization: Bearer``. It never
            appears in ``repr``, logs or error messages.
        verify_ssl: verify TLS certificates.
        max_retries: retries for requests that cannot create work twice.

    Example::

        client = InvokeAIClient(host="192.168.1.100", port=9090, use_https=True, timeout=60.0)
        client = InvokeAIClient.from_url("https://invoke.example.com/invoke")
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 9090,
        use_https: bool = False,
        timeout: float = 30.0,
        base_path: str = API_PREFIX,
        api_key: str | None = None,
        verify_ssl: bool = True,
        max_retries: int = 3,
    ) -> None:
        self.host = host
        self.port = int(port)
        self.use_https = use_https
        self.timeout = float(timeout)
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.verify_ssl = verify_ssl
        self.max_retries = max_retries
        self._token = BearerToken(api_key)  # renewed by the server (see BearerToken)
        scheme = "https" if use_https else "http"
        host_part = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self._root = f"{scheme}://{host_part}:{self.port}{_split_base_path(self.base_path)}"
        self._transport_kwargs: dict[str, Any] = {
            "timeout": self.timeout,
            "token": self._token,
            "verify_ssl": verify_ssl,
            "max_retries": max_retries,
        }
        self.http = HttpTransport(self._root, **self._transport_kwargs)
        # a client dropped, or still open at interpreter exit, without close(): its pooled
        # sockets are closed anyway (the event socket's hub closes itself at exit)
        self._http_finalizer = weakref.finalize(self, HttpTransport.close, self.http)
        # per event loop: the transport and the async generator that closes it when the loop
        # shuts down (see async_http)
        self._async_transports: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncHttpTransport, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
        self._close_tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}
        self._closed = False

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> InvokeAIClient:
        """Create a client from a URL such as ``http://localhost:9090``.

        The scheme sets ``use_https``; a missing port means 80 / 443 for an explicit
        scheme, and 9090 (InvokeAI's default) for a bare ``host[:port]``. A path becomes the
        ``base_path`` prefix (``/api/v1`` is appended unless the path already ends with it).
        Other keyword arguments go to the constructor.

        Example::

            InvokeAIClient.from_url("http://127.0.0.1:9090")
            InvokeAIClient.from_url("https://gpu-box.lan/invoke", api_key="...")
        """
        text = url.strip()
        if not text:
            raise InvokeAIError("empty server URL; expected e.g. http://127.0.0.1:9090")
        has_scheme = "://" in text
        parts = urlsplit(text if has_scheme else f"http://{text}")
        if parts.scheme not in ("http", "https"):
            raise InvokeAIError(
                f"unsupported URL scheme {parts.scheme!r} in {url!r}; use http:// or https://"
            )
        if not parts.hostname:
            raise InvokeAIError(f"no host in server URL {url!r}; expected e.g. http://host:9090")
        try:
            explicit_port = parts.port
        except ValueError as exc:
            raise InvokeAIError(f"invalid port in server URL {url!r}") from exc
        use_https = parts.scheme == "https"
        if explicit_port is not None:
            port = explicit_port
        elif has_scheme:
            port = 443 if use_https else 80
        else:
            port = 9090
        path = parts.path.rstrip("/")
        if not path:
            base_path = API_PREFIX
        elif path.endswith(API_PREFIX):
            base_path = path
        else:
            base_path = path + API_PREFIX
        kwargs.setdefault("base_path", base_path)
        return cls(host=parts.hostname, port=port, use_https=use_https, **kwargs)

    # ------------------------------------------------------------------ URLs

    @property
    def base_url(self) -> str:
        """The v1 API root, e.g. ``http://localhost:9090/api/v1``."""
        return self._root + API_PREFIX

    @property
    def server_url(self) -> str:
        """The server root (scheme, host, port and any proxy prefix)."""
        return self._root

    @property
    def api_key(self) -> str | None:
        """The token sent to the server (kept out of ``repr``).

        It starts as the ``api_key`` given and follows the server's renewals: a multi-user
        InvokeAI answers each successful change (POST, PUT, PATCH, DELETE) with a token of
        fresh expiry, which the client adopts for its next requests and event socket.
        """
        return self._token.value

    # ------------------------------------------------------------------ logging in

    def login(self, email: str, password: str, *, remember_me: bool = False) -> None:
        """Log in to a multi-user InvokeAI server; the client uses that user's token from now on.

        Asks the server whether it is multi-user (``GET /api/v1/auth/status``), then logs in
        (``POST /api/v1/auth/login``). The token it answers with becomes :attr:`api_key`:
        every HTTP request (sync and asyncio) sends it, and the event socket reconnects with
        it at once if it was already open (or refused without one). The token lasts a day
        (a week with ``remember_me=True``) and slides with use, like any ``api_key``.
        Neither the password nor the token ever appears in ``repr``, logs or errors.

        Args:
            email: the user's email address.
            password: the user's password (sent once, to the login endpoint, and not kept).
            remember_me: ask for a token that lasts 7 days instead of 1.

        Raises:
            AuthenticationError: wrong email or password (HTTP 401), or a disabled account
                (403).
            InvokeAIError: the server is single-user (it needs no login) or has no login at
                all (InvokeAI before 6.12).
            InvokeAIConnectionError: the server cannot be reached.

        Example::

            import os

            client = InvokeAIClient.from_url("http://127.0.0.1:9090")
            client.login("alice@example.com", os.environ["INVOKEAI_PASSWORD"])
            print(client.queue.queue_status()["queue"]["pending"])
        """
        try:
            status = self.http.get_json(f"{API_PREFIX}/auth/status")
        except NotFoundError:
            status = None
        _require_multiuser(self.server_url, status)
        try:
            resp = self.http.request(
                "POST",
                f"{API_PREFIX}/auth/login",
                json={"email": email, "password": password, "remember_me": remember_me},
                retry=True,  # creates no work: only a token
            )
        except APIError as exc:
            raise _login_error(exc, self.server_url, email, password) from None
        self._use_token(_token_of(resp))

    async def alogin(self, email: str, password: str, *, remember_me: bool = False) -> None:
        """:meth:`login` for asyncio code (the same checks, errors and effect).

        Example::

            async with InvokeAIClient.from_url("http://127.0.0.1:9090") as client:
                await client.alogin("alice@example.com", password)
                boards = await client.board_repo.alist_boards()
        """
        http = self.async_http()
        try:
            status = await http.get_json(f"{API_PREFIX}/auth/status")
        except NotFoundError:
            status = None
        _require_multiuser(self.server_url, status)
        try:
            resp = await http.request(
                "POST",
                f"{API_PREFIX}/auth/login",
                json={"email": email, "password": password, "remember_me": remember_me},
                retry=True,
            )
        except APIError as exc:
            raise _login_error(exc, self.server_url, email, password) from None
        self._use_token(_token_of(resp))

    def logout(self) -> None:
        """Stop using the token: later requests and socket connects go without one.

        Tells the server (``POST /api/v1/auth/logout``, which ends its media cookie) and
        forgets :attr:`api_key`, whatever the server answers. InvokeAI 6.14.2 keeps no
        sessions, so the token itself stays valid until it expires: whoever holds a copy of it
        (``INVOKEAI_API_KEY``, say) can go on using it. A client without a token does
        nothing.

        Raises:
            InvokeAIConnectionError: the server cannot be reached (the token is forgotten
                all the same).

        Example::

            client.login("alice@example.com", password)
            ...
            client.logout()
        """
        if not self._token.value:
            return
        try:
            self.http.request("POST", f"{API_PREFIX}/auth/logout", retry=False)
        except AuthenticationError:
            pass  # expired or revoked already: nothing left to end on the server
        finally:
            self._use_token(None)

    async def alogout(self) -> None:
        """:meth:`logout` for asyncio code."""
        if not self._token.value:
            return
        try:
            await self.async_http().request("POST", f"{API_PREFIX}/auth/logout", retry=False)
        except AuthenticationError:
            pass
        finally:
            self._use_token(None)

    def _use_token(self, token: str | None) -> None:
        """Send ``token`` from now on (HTTP and the event socket, which reconnects with it)."""
        self._token.value = token or None  # shared by every transport of this client
        with self._lock:
            hub = self._cache.get("events")
        if hub is not None:
            hub.reconnect()

    # ------------------------------------------------------------------ basics

    def health_check(self) -> bool:
        """True if the server answers ``/api/v1/app/version``; never raises.

        Example::

            if not client.health_check():
                raise SystemExit("InvokeAI is not reachable")
        """
        try:
            resp = self.http.request("GET", f"{API_PREFIX}/app/version", retry=False)
            return bool(resp.json().get("version"))
        except Exception:  # health_check's contract: a bool, whatever went wrong
            return False

    @contextlib.asynccontextmanager
    async def socketio_session(
        self, queue_id: str | None = None
    ) -> AsyncIterator[socketio.AsyncClient]:
        """A socket.io connection of your own to the server's events (the seeds' raw access).

        Yields a connected :class:`socketio.AsyncClient` (websocket transport, the client's
        token as auth) and disconnects it on exit. With ``queue_id`` it has already joined that
        queue's room; else emit ``subscribe_queue`` yourself, as the seeds do. For waiting on
        items, :attr:`events` (one shared connection that reconnects itself, with the server as
        the authority) is usually the better tool.

        Raises :class:`~invokeai_py_client.exceptions.InvokeAIConnectionError` when the socket
        cannot connect (server down, or a multi-user server refusing the token).

        Example::

            async with client.socketio_session() as sio:
                sio.on("queue_item_status_changed", lambda data: print(data["status"]))
                await sio.emit("subscribe_queue", {"queue_id": "default"})
                await asyncio.sleep(10)
        """
        import socketio  # kept out of import time, like the event hub

        from .events import close_socket, connect_socket, refused_hint, socket_target

        sio = socketio.AsyncClient(reconnection=False, ssl_verify=self.verify_ssl, logger=False)
        origin, path = socket_target(self.server_url)
        try:
            try:
                await connect_socket(sio, origin, path, self.api_key)
                if queue_id is not None:
                    await sio.call("subscribe_queue", {"queue_id": queue_id}, timeout=10)
            except (socketio.exceptions.SocketIOError, OSError) as exc:
                hint = refused_hint(self.api_key) if "namespaces failed" in str(exc) else ""
                raise InvokeAIConnectionError(
                    f"cannot open an event socket to {origin}{path}: {exc}{hint}"
                ) from None
            yield sio
        finally:
            await close_socket(sio)

    @property
    def server_version(self) -> str:
        """The server's InvokeAI version string, e.g. ``"6.14.2"`` (asked once, then cached)."""
        if "version" not in self._cache:
            self._cache["version"] = str(self.http.get_json(f"{API_PREFIX}/app/version")["version"])
        return str(self._cache["version"])

    def node_schema(
        self, refresh: bool = False, node_types: Iterable[str] | None = None
    ) -> NodeSchemaIndex:
        """The node-type schemas that workflows are typed and checked against.

        The server's ``/openapi.json`` is a few MB and its first request costs the server
        about two seconds, so when the server runs the InvokeAI version of the packaged
        snapshot and the snapshot knows every type in ``node_types``, the snapshot is used.
        Otherwise (another version, custom nodes, or ``refresh=True``) the server's schema is
        fetched once and cached.

        Example::

            schema = client.node_schema(node_types={"blank_image", "save_image"})
            server_schema = client.node_schema(refresh=True)   # always the live one
        """
        from .workflow.schema import NodeSchemaIndex

        with self._lock:
            cached = self._cache.get("node_schema")
            if cached is not None and not refresh:
                return cached  # type: ignore[no-any-return]
            if not refresh:
                offline = NodeSchemaIndex.offline()
                known = all(t in offline for t in (node_types or ()))
                if known and offline.version == self.server_version:
                    return offline
            openapi = self.http.get_json("/openapi.json")
            live = NodeSchemaIndex.from_openapi(openapi)
            self._cache["node_schema"] = live
            return live

    def async_http(self) -> AsyncHttpTransport:
        """The asyncio transport for the running event loop (one per loop).

        It is closed by :meth:`close` / :meth:`aclose`, or else when its loop shuts down
        (``asyncio.run`` ending): its connections never outlive the loop they belong to.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._async_transports.get(loop)
            if entry is None:
                transport = AsyncHttpTransport(self._root, **self._transport_kwargs)
                entry = (transport, _closer_at_loop_shutdown(transport))
                self._async_transports[loop] = entry
            return entry[0]

    # ------------------------------------------------------------------ repositories

    def _lazy(self, name: str, factory: Any) -> Any:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = factory(self)
            return self._cache[name]

    @property
    def workflow_repo(self) -> WorkflowRepository:
        """Create workflow handles: ``client.workflow_repo.create_workflow(definition)``."""
        from .workflow import WorkflowRepository

        return self._lazy("workflow_repo", WorkflowRepository)  # type: ignore[no-any-return]

    @property
    def board_repo(self) -> BoardRepository:
        """Boards and their images."""
        from .board import BoardRepository

        return self._lazy("board_repo", BoardRepository)  # type: ignore[no-any-return]

    @property
    def dnn_model_repo(self) -> DnnModelRepository:
        """Installed models (v2 API)."""
        from .dnn_model import DnnModelRepository

        return self._lazy("dnn_model_repo", DnnModelRepository)  # type: ignore[no-any-return]

    @property
    def images(self) -> ImageRepository:
        """Image records, uploads and downloads, independent of boards."""
        from .images import ImageRepository

        return self._lazy("images", ImageRepository)  # type: ignore[no-any-return]

    @property
    def queue(self) -> QueueClient:
        """The session queue (enqueue, item reads, cancel, retry)."""
        from .queue import QueueClient

        return self._lazy("queue", QueueClient)  # type: ignore[no-any-return]

    @property
    def quick(self) -> QuickClient:
        """High-level helpers (copy an image to a board, SDXL text-to-image)."""
        from .quick import QuickClient

        return self._lazy("quick", QuickClient)  # type: ignore[no-any-return]

    @property
    def events(self) -> EventHub:
        """The one socket.io connection this client uses for every subscription."""
        from .events import EventHub

        with self._lock:
            hub = self._cache.get("events")
            if hub is None:
                hub = self._cache["events"] = EventHub(self)
                # a client dropped without close(): its hub (which only holds a weak reference
                # to it) disconnects when the client is garbage-collected
                weakref.finalize(self, hub.close)
            return hub

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close connections (HTTP pools and the event socket). Safe to call twice.

        Inside a running event loop the loop's async transport is closed by a task; prefer
        ``await client.aclose()`` (or ``async with``) there, which waits for it.
        """
        if self._closed:
            return
        self._closed = True
        hub = self._cache.get("events")
        if hub is not None and hasattr(hub, "close"):
            hub.close()
        self._http_finalizer()  # self.http.close(), once
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, (_transport, closer) in list(self._async_transports.items()):
            if loop.is_closed():
                continue  # its shutdown closed the transport already (see async_http)
            if running is loop:
                task = loop.create_task(closer.aclose())
                self._close_tasks.add(task)  # the loop keeps only a weak reference
                task.add_done_callback(self._close_tasks.discard)
            elif loop.is_running():  # another thread's loop: hand it over, do not wait
                asyncio.run_coroutine_threadsafe(closer.aclose(), loop)
            else:
                loop.run_until_complete(closer.aclose())
        self._async_transports.clear()

    async def aclose(self) -> None:
        """:meth:`close` for asyncio code: also waits for the loop's async transport to close.

        Example::

            async with InvokeAIClient.from_url(url) as client:
                await client.queue.aqueue_status()
        """
        loop = asyncio.get_running_loop()
        entry = self._async_transports.pop(loop, None)
        self.close()
        if entry is not None:
            await entry[1].aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        auth = ", api_key=***" if self._token.value else ""
        return f"InvokeAIClient({self.server_url!r}{auth})"


def _require_multiuser(server_url: str, status: Any) -> None:
    """Raise unless ``/api/v1/auth/status`` (``status``; None: no such route) says multi-user."""
    if status is None:
        raise InvokeAIError(
            f"{server_url} has no login (/api/v1/auth is missing: InvokeAI before 6.12?): "
            "it needs no login; use the client without one"
        )
    if not (isinstance(status, dict) and status.get("multiuser_enabled")):
        raise InvokeAIError(
            f"{server_url} is a single-user InvokeAI server: it needs no login (nor api_key); "
            "use the client without one"
        )


def _token_of(resp: Any) -> str:
    """The token of a login response."""
    try:
        token = resp.json().get("token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise InvokeAIError("the server answered the login without a token")
    return token


def _login_error(exc: APIError, server_url: str, email: str, password: str) -> APIError:
    """The error to raise for a refused login: clear, and never holding the password."""
    status = exc.status_code
    detail: Any = exc.detail
    if isinstance(exc, AuthenticationError):
        if status == 401:
            reason = "incorrect email or password"
        else:
            reason = f"refused: {detail}" if isinstance(detail, str) else "refused"
        message = f"login to {server_url} as {email!r} failed: {reason} (HTTP {status})"
    else:
        if isinstance(detail, list):  # validation errors echo the request's values: drop them
            detail = [
                {k: v for k, v in e.items() if k not in ("input", "ctx")}
                if isinstance(e, dict)
                else e
                for e in detail
            ]
        message = f"login to {server_url} as {email!r} failed: {exc}"
    if password:
        message = message.replace(password, "***")
        if password in repr(detail):
            detail = None
    return type(exc)(message, status_code=status, detail=detail, method=exc.method, url=exc.url)


def _closer_at_loop_shutdown(transport: AsyncHttpTransport) -> AsyncGenerator[None, None]:
    """An async generator, started now, whose ``finally`` closes ``transport``.

    The running loop tracks the async generators started in it and closes the unfinished
    ones when it shuts down (``loop.shutdown_asyncgens()``, which ``asyncio.run`` calls), so
    a transport the program never closed is still closed before its loop is: no
    connection is left to a closed loop ("unclosed transport" warnings). ``aclose()`` of the
    generator is also how :meth:`InvokeAIClient.close` closes it.
    """

    async def closer() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await transport.aclose()

    gen = closer()
    # run it to its ``yield`` right here: the body before it does not await, so one send()
    # finishes the step; starting it registers it with the running loop's shutdown hooks
    step = gen.asend(None)
    with contextlib.suppress(StopIteration):
        step.send(None)
    return gen
