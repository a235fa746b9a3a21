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
import contextlib
import logging
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import socketio

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
    from .client import InvokeAIClient

__all__ = ["AsyncSubscription", "EventHub", "Subscription"]

log = logging.getLogger(__name__)


class EventHub:
    """One socket.io connection for a client; subscriptions and waits by item / batch id.

    The connection is opened lazily (first subscribe or wait) in a daemon thread and closed by
    :meth:`close` (``client.close()`` calls it).

    Attributes:
        stats: counters (``connects``, ``disconnects``, ``events``, ``polls``) for diagnostics.
        reconnect_delay: first delay before reconnecting (doubles up to ``reconnect_delay_max``).
    """

    def __init__(self, client: InvokeAIClient, queue_id: str = "default") -> None:
        self._client = client
        self.queue_id = queue_id
        self.reconnect_delay = 0.25
        self.reconnect_delay_max = 5.0
        self.stats: dict[str, int] = {"connects": 0, "disconnects": 0, "events": 0, "polls": 0}
        self._lock = threading.Lock()
        self._by_item: dict[int, set[Subscription]] = {}
        self._by_batch: dict[str, set[Subscription]] = {}
        self._all: set[Subscription] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sio: socketio.AsyncClient | None = None
        self._connected = threading.Event()
        self._attempted = threading.Event()  # set once the first connection attempt ended
        self._closing = False
        self._dropped: asyncio.Event | None = None
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
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self._supervise())
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            log.debug("event hub stopped")
        finally:
            self._loop.close()

    def _socket_target(self) -> tuple[str, str]:
        parts = urlsplit(self._client.server_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        prefix = parts.path.rstrip("/")
        return origin, f"{prefix}/ws/socket.io"

    async def _supervise(self) -> None:
        delay: float | None = None  # None: the next wait is the first after a connection
        origin, path = self._socket_target()
        api_key = self._client.api_key
        while not self._closing:
            sio = socketio.AsyncClient(
                reconnection=False, ssl_verify=self._client.verify_ssl, logger=False
            )
            self._dropped = asyncio.Event()
            sio.on("*", self._on_any)
            sio.on("disconnect", self._make_on_disconnect(self._dropped))
            self._sio = sio
            try:
                await sio.connect(
                    origin,
                    socketio_path=path,
                    transports=["websocket"],
                    headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
                    auth={"token": api_key} if api_key else None,
                    wait_timeout=10,
                )
                try:
                    await sio.call("subscribe_queue", {"queue_id": self.queue_id}, timeout=5)
                except socketio.exceptions.TimeoutError:
                    await sio.emit("subscribe_queue", {"queue_id": self.queue_id})
                self.stats["connects"] += 1
                self.last_error = None
                delay = None
                self._connected.set()
                self._attempted.set()
                self._broadcast(as_event(HUB_RECONNECTED, None))
                await self._dropped.wait()
            except (TimeoutError, socketio.exceptions.SocketIOError, OSError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.debug("event socket connect failed: %s", self.last_error)
                self._attempted.set()
            finally:
                if self._connected.is_set():
                    self._connected.clear()
                    self.stats["disconnects"] += 1
                    self._broadcast(as_event(HUB_DISCONNECTED, None))
                if sio.connected:
                    await sio.disconnect()
            if self._closing:
                break
            delay = (
                self.reconnect_delay if delay is None else min(delay * 2, self.reconnect_delay_max)
            )
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))

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

    def close(self) -> None:
        """Disconnect and stop the background thread (idempotent)."""
        self._closing = True
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():

            def _stop() -> None:
                if self._task is not None:
                    self._task.cancel()

            with contextlib.suppress(RuntimeError):  # loop already finished
                loop.call_soon_threadsafe(_stop)
            thread.join(timeout=5)
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
        return f"EventHub({self._client.server_url!r}, {state})"
