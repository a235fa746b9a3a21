"""Queue events over one socket.io connection per client, usable from threads and asyncio.

:class:`EventHub` (``client.events``) owns a single ``python-socketio`` ``AsyncClient``
running in a daemon thread with its own event loop. It connects with the websocket transport
(InvokeAI answers long-polling with HTTP 500) to ``/ws/socket.io``, sends the api key as
socket auth and as ``Authorization: Bearer`` when the client has one, and joins the queue's
room (``subscribe_queue``) after every (re)connect. When the socket drops it reconnects by
itself with capped exponential backoff.

Callers subscribe to the events of some item ids and/or batch ids (dispatch is a dict lookup,
so thousands of items on one connection cost nothing extra) and receive them in a thread-safe
queue, an asyncio queue, or a callback. Every event is a ``dict`` with an ``event_type`` key
plus the server's payload (``item_id``, ``batch_id``, ``status``...); ``invocation_progress``
events also get ``progress`` (the server's ``percentage``). The hub adds two synthetic events:
``hub_disconnected`` and ``hub_reconnected``, delivered to every subscription.

Waiting for items (:meth:`EventHub.iter_finished` / :meth:`EventHub.aiter_finished`) follows
the rule "events wake, the server decides": a ``queue_item_status_changed`` event with a final
status wakes the waiter, which then reads the item from the server; a slow safety poll (cheap
summaries, never full items) covers missed events, and when the socket is down the waiter
polls with backoff until it is back. Subscribe before enqueueing and nothing is missed.

This module holds the connection and the dispatch; the subscriptions live in
``_subscriptions.py`` and the waiting logic in ``_waiting.py`` (both re-exported or used from
here).

Example::

    hub = client.events
    with hub.subscribe(batch_ids=[batch_id]) as sub:
        result = client.queue.enqueue_batch(body)
        for item in hub.iter_finished(result["item_ids"], subscription=sub, timeout=60):
            print(item["item_id"], item["status"])
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import json
import logging
import random
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import _waiting
from ._subscriptions import (
    HUB_DISCONNECTED,
    HUB_RECONNECTED,
    AsyncSubscription,
    EventCallback,
    EventDict,
    EventFilter,
    Subscription,
    as_event,
)

if TYPE_CHECKING:
    import socketio

    from .client import InvokeAIClient

__all__ = ["AsyncSubscription", "EventHub", "Subscription"]

log = logging.getLogger(__name__)

#: Seconds allowed for a clean socket close (the websocket close handshake).
_CLOSE_TIMEOUT = 2.0

#: Hubs whose thread was started and not yet closed; closed at interpreter exit.
_LIVE_HUBS: weakref.WeakSet[EventHub] = weakref.WeakSet()


def _close_live_hubs() -> None:
    """``atexit``: close the hubs of clients that were never closed.

    Their daemon threads would otherwise be frozen mid-connection at shutdown, leaving the
    socket's ``aiohttp`` session open ("Unclosed client session").
    """
    for hub in list(_LIVE_HUBS):
        with contextlib.suppress(Exception):
            hub.close(timeout=_CLOSE_TIMEOUT + 1.0)


atexit.register(_close_live_hubs)


class EventHub:
    """One socket.io connection for a client; subscriptions and waits by item / batch id.

    The connection is opened lazily (first subscribe or wait) in a daemon thread and closed by
    :meth:`close`: ``client.close()`` calls it, and so do a client being garbage-collected
    without it and interpreter exit, so no socket (nor its aiohttp session) is left open.
    ``socketio`` / ``aiohttp`` are imported by that thread, on first use.

    Attributes:
        stats: counters (``connects``, ``disconnects``, ``events``, ``polls``) for diagnostics.
        reconnect_delay: first delay before reconnecting (doubles up to ``reconnect_delay_max``).
    """

    def __init__(self, client: InvokeAIClient, queue_id: str = "default") -> None:
        # a weak reference: the hub's thread must not keep a dropped client alive (the client
        # closes its hub when it is garbage-collected, see InvokeAIClient.events)
        self._client: InvokeAIClient = weakref.proxy(client)
        # what the socket needs, read now: the hub's thread never touches the client
        self._server_url = client.server_url
        self._token = client.http.token  # shared: renewed tokens reach the next connect
        self._verify_ssl = client.verify_ssl
        self.queue_id = queue_id
        self.reconnect_delay = 0.25
        self.reconnect_delay_max = 5.0
        self.stats: dict[str, int] = {"connects": 0, "disconnects": 0, "events": 0, "polls": 0}
        self._lock = threading.Lock()
        self._by_item: dict[int, set[Subscription]] = {}
        self._by_batch: dict[str, set[Subscription]] = {}
        self._all: set[Subscription] = set()
        self._rooms: dict[str, tuple[str, dict[str, Any]]] = {}  # extra rooms, re-joined
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sio: socketio.AsyncClient | None = None
        self._connected = threading.Event()
        self._attempted = threading.Event()  # set once the first connection attempt ended
        self._closing = False
        self._stop_sent = False
        self._dropped: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None  # ends a wait between connection attempts
        self._generation = 0  # bumped by reconnect(): an older attempt's outcome is stale
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        """True while the socket is up and subscribed to the queue's room."""
        return self._connected.is_set()

    def start(self) -> None:
        """Start the background thread and connect (returns at once; idempotent)."""
        with self._lock:
            if self._thread is not None or self._closing:
                return
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._thread = threading.Thread(
                target=self._thread_main, name="invokeai-events", daemon=True
            )
            _LIVE_HUBS.add(self)
            self._thread.start()

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Start if needed and wait up to ``timeout`` s for the socket; True when connected."""
        self.start()
        return self._connected.wait(timeout)

    def wait_ready(self, timeout: float = 2.0) -> bool:
        """Like :meth:`wait_connected`, but only the first connection attempt is waited for.

        Once an attempt has failed (e.g. a proxy that refuses websockets) this returns at
        once, so callers do not pay the timeout again and again; they poll meanwhile.
        """
        self.start()
        if self._connected.is_set() or self._attempted.is_set():
            return self._connected.is_set()
        self._attempted.wait(timeout)
        return self._connected.is_set()

    def _thread_main(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        self._task = loop.create_task(self._supervise())
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            log.debug("event hub stopped")
        except Exception:  # the supervisor must not die silently; the waiters poll meanwhile
            log.exception("event hub stopped after an unexpected error")
        finally:
            try:
                _finish_loop(loop)
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                _LIVE_HUBS.discard(self)

    def _socket_target(self) -> tuple[str, str]:
        return socket_target(self._server_url)

    async def _supervise(self) -> None:
        import socketio  # first use of the events: keeps socket.io / aiohttp out of import

        delay: float | None = None  # None: the next wait is the first after a connection
        origin, path = self._socket_target()
        verify_ssl = self._verify_ssl
        self._wake = wake = asyncio.Event()
        while not self._closing:
            wake.clear()  # a reconnect() asked before this point is served by this attempt
            generation = self._generation
            api_key = self._token.value  # the latest renewal or login (see BearerToken)
            sio = socketio.AsyncClient(reconnection=False, ssl_verify=verify_ssl, logger=False)
            self._dropped = asyncio.Event()
            sio.on("*", self._on_any)
            sio.on("disconnect", self._make_on_disconnect(self._dropped))
            self._sio = sio
            try:
                await connect_socket(sio, origin, path, api_key)
                try:
                    await sio.call("subscribe_queue", {"queue_id": self.queue_id}, timeout=5)
                except socketio.exceptions.TimeoutError:
                    await sio.emit("subscribe_queue", {"queue_id": self.queue_id})
                for message, payload in list(self._rooms.values()):
                    await _join(sio, message, payload)
                self.stats["connects"] += 1
                self.last_error = None
                delay = None
                self._connected.set()
                self._attempted.set()
                self._broadcast(as_event(HUB_RECONNECTED, None))
                await self._dropped.wait()
            except (TimeoutError, socketio.exceptions.SocketIOError, OSError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if "namespaces failed to connect" in str(exc):
                    # the server's connect handler said no: on InvokeAI that is a multi-user
                    # server without (or refusing) the token
                    self.last_error += refused_hint(api_key)
                log.debug("event socket connect failed: %s", self.last_error)
                if generation == self._generation:  # else wait_ready waits for the next try
                    self._attempted.set()
            finally:
                if self._connected.is_set():
                    self._connected.clear()
                    self.stats["disconnects"] += 1
                    self._broadcast(as_event(HUB_DISCONNECTED, None))
                # also after a failed or cancelled connect: engine.io has opened its aiohttp
                # session by then, and only a disconnect closes it
                await close_socket(sio)
                self._sio = None
            if self._closing:
                break
            delay = (
                self.reconnect_delay if delay is None else min(delay * 2, self.reconnect_delay_max)
            )
            with contextlib.suppress(TimeoutError):  # reconnect() cuts the wait short
                await asyncio.wait_for(wake.wait(), delay * random.uniform(0.8, 1.2))

    def join_room(
        self, message: str, payload: Mapping[str, Any]
    ) -> concurrent.futures.Future[None]:
        """Join one more socket.io room now and again after every reconnect.

        ``message`` is the server's join message (e.g. ``"subscribe_bulk_download"``) and
        ``payload`` its argument. Joining the same room twice does nothing more. The returned
        future is done once the server acknowledged the join (at once when the socket is
        down: the join then happens right after the next connect, before ``connected``).

        Example::

            hub.join_room("subscribe_bulk_download", {"bulk_download_id": "default"}).result(5)
        """
        key = f"{message} {json.dumps(dict(payload), sort_keys=True, default=str)}"
        joined: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            known = key in self._rooms
            self._rooms[key] = (message, dict(payload))
        self.start()
        loop, sio = self._loop, self._sio
        if known or loop is None or sio is None or not self._connected.is_set():
            joined.set_result(None)
            return joined
        return asyncio.run_coroutine_threadsafe(_join(sio, message, dict(payload)), loop)

    def _make_on_disconnect(self, dropped: asyncio.Event) -> Callable[..., None]:
        def on_disconnect(*_args: Any) -> None:
            dropped.set()

        return on_disconnect

    async def _on_any(self, event: str, data: Any = None) -> None:
        self.stats["events"] += 1
        evt = as_event(event, data)
        if event == "queue_cleared":
            self._broadcast(evt)
            return
        item_ids: list[Any] = [evt.get("item_id")]
        # cancel_by_batch_ids / retry announce many items at once, without item_id / batch_id
        for key in ("canceled_item_ids", "retried_item_ids"):
            extra = evt.get(key)
            if isinstance(extra, list):
                item_ids.extend(extra)
        batch_id = evt.get("batch_id")
        with self._lock:
            targets = set(self._all)
            for item_id in item_ids:
                if item_id is not None:
                    targets.update(self._by_item.get(item_id, ()))
            if batch_id is not None:
                targets.update(self._by_batch.get(batch_id, ()))
        for sub in targets:
            sub._deliver(evt)

    def _broadcast(self, evt: EventDict) -> None:
        with self._lock:
            subs: set[Subscription] = set(self._all)
            for group in self._by_item.values():
                subs.update(group)
            for group in self._by_batch.values():
                subs.update(group)
        for sub in subs:
            sub._deliver(evt)

    def drop_connection(self) -> None:
        """Close the socket abruptly, as a network failure would; the hub reconnects itself.

        Meant for testing fault handling. Waiters fall back to polling meanwhile.
        """
        loop, sio = self._loop, self._sio
        if loop is None or sio is None or not self.connected:
            return

        async def _drop() -> None:
            await sio.eio.disconnect(abort=True)
            if self._dropped is not None:
                self._dropped.set()

        asyncio.run_coroutine_threadsafe(_drop(), loop).result(timeout=5)

    def reconnect(self) -> None:
        """Connect again now, presenting the client's current token (returns at once).

        :meth:`InvokeAIClient.login` and :meth:`~InvokeAIClient.logout` call it: a socket
        opened with the old token (or none, which a multi-user server refuses) is closed and
        a new one opened with the new token at once, without the backoff wait. The next
        :meth:`wait_ready` waits for that new attempt. A hub not started yet does nothing:
        its first connect reads the token anyway.
        """
        with self._lock:
            if self._closing:
                return
            self._generation += 1
            self._attempted.clear()
            loop = self._loop

        def _kick() -> None:
            if self._dropped is not None:  # ends a connection's wait: it closes and retries
                self._dropped.set()
            if self._wake is not None:  # ends a wait between attempts
                self._wake.set()

        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has finished (closed hub)
                loop.call_soon_threadsafe(_kick)

    def close(self, timeout: float = 5.0) -> None:
        """Disconnect and stop the background thread (idempotent).

        Waits up to ``timeout`` seconds for the socket to close (not when called from the
        hub's own thread, e.g. in a callback: the thread then stops once the callback
        returns).
        """
        self._closing = True
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():

            def _stop() -> None:
                if self._task is not None:
                    self._task.cancel()

            with self._lock:  # cancel once: a second cancel would cut the socket's clean close
                send, self._stop_sent = not self._stop_sent, True
            if send:
                with contextlib.suppress(RuntimeError):  # loop already finished
                    loop.call_soon_threadsafe(_stop)
            if thread is not threading.current_thread():
                thread.join(timeout=timeout)
        self._connected.clear()

    # ------------------------------------------------------------------ subscriptions

    def _index_add(
        self, sub: Subscription, item_ids: Iterable[int] = (), batch_ids: Iterable[str] = ()
    ) -> None:
        with self._lock:
            if sub.closed:
                return
            for i in item_ids:
                sub.item_ids.add(i)
                self._by_item.setdefault(i, set()).add(sub)
            for b in batch_ids:
                sub.batch_ids.add(b)
                self._by_batch.setdefault(b, set()).add(sub)
            if sub.all_events:
                self._all.add(sub)

    def _index_remove(self, sub: Subscription) -> None:
        with self._lock:
            for i in sub.item_ids:
                group = self._by_item.get(i)
                if group is not None:
                    group.discard(sub)
                    if not group:
                        del self._by_item[i]
            for b in sub.batch_ids:
                bgroup = self._by_batch.get(b)
                if bgroup is not None:
                    bgroup.discard(sub)
                    if not bgroup:
                        del self._by_batch[b]
            self._all.discard(sub)

    def subscribe(
        self,
        item_ids: Iterable[int] = (),
        batch_ids: Iterable[str] = (),
        *,
        all_events: bool = False,
        callback: EventCallback | None = None,
        keep_queue: bool = False,
        event_filter: EventFilter | None = None,
    ) -> Subscription:
        """Receive the events of these items / batches (or every event with ``all_events``).

        Without ``callback`` (or with ``keep_queue=True``) events queue up for
        :meth:`Subscription.get`; a ``callback`` runs in the hub's thread and must return
        quickly. ``event_filter`` also runs in the hub's thread, before anything else: events
        it returns False for are dropped (cheap: no queueing, no cross-thread hand-over).
        Starts the connection if needed.
        """
        sub = Subscription(
            self,
            all_events=all_events,
            callback=callback,
            keep_queue=keep_queue,
            event_filter=event_filter,
        )
        self._index_add(sub, [int(i) for i in item_ids], [str(b) for b in batch_ids])
        self.start()
        return sub

    def asubscribe(
        self,
        item_ids: Iterable[int] = (),
        batch_ids: Iterable[str] = (),
        *,
        all_events: bool = False,
        callback: Callable[[EventDict], Any] | None = None,
        keep_queue: bool = False,
        event_filter: EventFilter | None = None,
    ) -> AsyncSubscription:
        """Like :meth:`subscribe`, for asyncio: events go to the running loop (in bursts)."""
        sub = AsyncSubscription(
            self,
            all_events=all_events,
            callback=callback,
            keep_queue=keep_queue,
            event_filter=event_filter,
        )
        self._index_add(sub, [int(i) for i in item_ids], [str(b) for b in batch_ids])
        self.start()
        return sub

    # ------------------------------------------------------------------ waiting

    def iter_finished(
        self,
        item_ids: Iterable[int],
        *,
        timeout: float | None = None,
        poll_interval: float = 2.0,
        fetch_full: bool = False,
        subscription: Subscription | None = None,
        on_event: EventCallback | None = None,
        batch_ids: Iterable[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Yield each item once it is completed, failed or canceled (in finishing order).

        Yields summaries (``item_id``, ``status``, ``batch_id``, timestamps), or full queue
        items with ``fetch_full=True``. ``poll_interval`` is the safety poll while the socket is
        up; while it is down the server is polled with backoff starting at 50 ms. ``on_event``
        sees every event of those items, in the caller's thread. Items the server no longer
        has are yielded as ``{"item_id": id, "status": "missing"}``. Give the items'
        ``batch_ids`` when waiting on many items: safety polls then read each batch's counts
        (``b/{id}/status``) and skip the item summaries when nothing new finished.

        Raises:
            JobTimeoutError: ``timeout`` seconds passed with items still unfinished.
        """
        return _waiting.iter_finished(
            self,
            self._client.queue,
            item_ids,
            timeout=timeout,
            poll_interval=poll_interval,
            fetch_full=fetch_full,
            subscription=subscription,
            on_event=on_event,
            batch_ids=batch_ids,
        )

    def aiter_finished(
        self,
        item_ids: Iterable[int],
        *,
        timeout: float | None = None,
        poll_interval: float = 2.0,
        fetch_full: bool = False,
        subscription: AsyncSubscription | None = None,
        on_event: Callable[[EventDict], Any] | None = None,
        batch_ids: Iterable[str] = (),
    ) -> AsyncIterator[dict[str, Any]]:
        """Asyncio twin of :meth:`iter_finished` (HTTP through ``client.async_http()``)."""
        return _waiting.aiter_finished(
            self,
            self._client.queue,
            item_ids,
            timeout=timeout,
            poll_interval=poll_interval,
            fetch_full=fetch_full,
            subscription=subscription,
            on_event=on_event,
            batch_ids=batch_ids,
        )

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"EventHub({self._server_url!r}, {state})"


def refused_hint(api_key: str | None) -> str:
    """Why a socket.io connect may have been refused (never the key itself)."""
    if api_key:
        return " (the server refused the event socket's api_key: wrong, expired or revoked?)"
    return " (a multi-user server refuses an event socket without an api_key)"


def socket_target(server_url: str) -> tuple[str, str]:
    """The socket.io origin and path of a server root (a proxy prefix is kept in the path)."""
    parts = urlsplit(server_url)
    prefix = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}", f"{prefix}/ws/socket.io"


async def connect_socket(
    sio: socketio.AsyncClient, origin: str, path: str, api_key: str | None
) -> None:
    """Connect ``sio`` the way InvokeAI 6.14.2 accepts: websocket transport (its long-polling
    transport answers 500), the token as socket.io auth and as ``Authorization: Bearer``."""
    await sio.connect(
        origin,
        socketio_path=path,
        transports=["websocket"],
        headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
        auth={"token": api_key} if api_key else None,
        wait_timeout=10,
    )


async def _join(sio: socketio.AsyncClient, message: str, payload: dict[str, Any]) -> None:
    """Send a room-join message; a server that does not acknowledge it is not waited for."""
    with contextlib.suppress(Exception):
        await sio.call(message, payload, timeout=5)


async def close_socket(sio: socketio.AsyncClient) -> None:
    """Disconnect ``sio`` and close engine.io's aiohttp session, whatever state it is in.

    Bounded by :data:`_CLOSE_TIMEOUT`; safe while the calling task is being cancelled.
    """

    async def _close() -> None:
        if sio.connected:
            await sio.disconnect()
        # a connect that failed or was cancelled half-way leaves engine.io "connected" or
        # "disconnected" with its session open; its disconnect() resets (closes) the session
        # in every state
        await sio.eio.disconnect(abort=True)

    try:
        await asyncio.wait_for(_close(), _CLOSE_TIMEOUT)
    except (Exception, asyncio.CancelledError) as exc:  # the hub must close all the same
        log.debug("event socket close: %s: %s", type(exc).__name__, exc)
        http = getattr(sio.eio, "http", None)
        if http is not None and not http.closed:
            with contextlib.suppress(Exception):
                await http.close()


def _finish_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks socket.io left on the hub's loop and let them end (as ``asyncio.run``).

    A loop closed with pending tasks prints "Task was destroyed but it is pending!".
    """
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
