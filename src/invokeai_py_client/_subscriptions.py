"""Subscriptions to the hub's events: a thread-safe queue, an asyncio queue, or a callback.

:class:`Subscription` and :class:`AsyncSubscription` are made by
:meth:`~invokeai_py_client.events.EventHub.subscribe` / ``asubscribe`` and are re-exported
from :mod:`invokeai_py_client.events`; this module also holds the shape of an event
(:func:`as_event`) and the hub's synthetic events.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue as _queue
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._closing import ClosesOnExit

if TYPE_CHECKING:
    from .events import EventHub

__all__ = [
    "HUB_DISCONNECTED",
    "HUB_RECONNECTED",
    "WAKE",
    "AsyncSubscription",
    "EventCallback",
    "EventDict",
    "EventFilter",
    "Subscription",
    "as_event",
]

log = logging.getLogger("invokeai_py_client.events")

EventDict = dict[str, Any]
EventCallback = Callable[[EventDict], None]
#: A predicate run in the hub's thread before an event is queued: False drops the event.
EventFilter = Callable[[EventDict], bool]

#: Synthetic events the hub delivers to every subscription.
HUB_DISCONNECTED = "hub_disconnected"
HUB_RECONNECTED = "hub_reconnected"
#: The event :meth:`AsyncSubscription.wake` queues (never sent by the server).
WAKE = "wake"


def as_event(event: str, data: Any) -> EventDict:
    """The event dict subscribers receive: ``event_type`` plus the server's payload."""
    evt: EventDict = {"event_type": event}
    if isinstance(data, Mapping):
        evt.update(data)
    elif data is not None:
        evt["data"] = data
    if event == "invocation_progress" and "progress" not in evt:
        evt["progress"] = evt.get("percentage")
    return evt


class Subscription(ClosesOnExit):
    """Events of some items / batches (or all events), delivered to a queue or a callback.

    Create with :meth:`EventHub.subscribe`. Without a callback, read with :meth:`get`. Use it
    as a context manager, or call :meth:`close`, to stop delivery.

    Example::

        with client.events.subscribe(item_ids=[42]) as sub:
            evt = sub.get(timeout=5)  # None on timeout
    """

    def __init__(
        self,
        hub: EventHub,
        item_ids: Iterable[int] = (),
        batch_ids: Iterable[str] = (),
        *,
        all_events: bool = False,
        callback: EventCallback | None = None,
        keep_queue: bool = False,
        event_filter: EventFilter | None = None,
    ) -> None:
        self._hub = hub
        self._filter = event_filter
        self.keep_queue = keep_queue or callback is None
        self.item_ids: set[int] = {int(i) for i in item_ids}
        self.batch_ids: set[str] = {str(b) for b in batch_ids}
        self.all_events = all_events
        self._callback = callback
        self._queue: _queue.SimpleQueue[EventDict] = _queue.SimpleQueue()
        self.closed = False

    # -- called by the hub thread; must not block
    def _deliver(self, evt: EventDict) -> None:
        if self.closed:
            return
        if self._filter is not None and not self._filter(evt):
            return
        if self._callback is not None:
            try:
                self._callback(evt)
            except Exception:  # a user callback must not kill the hub's socket loop
                log.exception("event callback failed for %s", evt.get("event_type"))
        if self.keep_queue:
            self._queue.put(evt)

    def add_items(self, item_ids: Iterable[int]) -> None:
        """Also receive the events of these item ids."""
        self._hub._index_add(self, item_ids=[int(i) for i in item_ids])

    def add_batches(self, batch_ids: Iterable[str]) -> None:
        """Also receive the events of these batch ids."""
        self._hub._index_add(self, batch_ids=[str(b) for b in batch_ids])

    def get(self, timeout: float | None = None) -> EventDict | None:
        """The next event, or ``None`` after ``timeout`` seconds (blocking; sync callers)."""
        try:
            return self._queue.get(timeout=timeout)
        except _queue.Empty:
            return None

    def get_nowait(self) -> EventDict | None:
        """The next event if one is waiting, else ``None``."""
        try:
            return self._queue.get_nowait()
        except _queue.Empty:
            return None

    def close(self) -> None:
        """Stop receiving events (idempotent)."""
        if not self.closed:
            self.closed = True
            self._hub._index_remove(self)


class AsyncSubscription(Subscription):
    """A :class:`Subscription` whose events land in an ``asyncio.Queue`` of the caller's loop.

    Create with :meth:`EventHub.asubscribe` (inside a running loop); read with ``await get()``.
    A ``callback`` runs in the caller's loop (a coroutine function is scheduled as a task).
    """

    def __init__(
        self,
        hub: EventHub,
        item_ids: Iterable[int] = (),
        batch_ids: Iterable[str] = (),
        *,
        all_events: bool = False,
        callback: Callable[[EventDict], Any] | None = None,
        keep_queue: bool = False,
        event_filter: EventFilter | None = None,
    ) -> None:
        super().__init__(
            hub,
            item_ids,
            batch_ids,
            all_events=all_events,
            keep_queue=keep_queue or callback is None,
            event_filter=event_filter,
        )
        self._loop = asyncio.get_running_loop()
        self._aqueue: asyncio.Queue[EventDict] = asyncio.Queue()
        self._acallback = callback
        self._tasks: set[asyncio.Task[Any]] = set()
        # events handed over by the hub's thread, moved to the loop in bursts: one wake-up of
        # the caller's loop per burst instead of one per event
        self._inbox: collections.deque[EventDict] = collections.deque()
        self._flush_scheduled = False

    def _deliver(self, evt: EventDict) -> None:
        if self.closed:
            return
        if self._filter is not None and not self._filter(evt):
            return
        self._inbox.append(evt)
        if self._flush_scheduled:
            return  # the scheduled flush (it resets the flag before draining) takes it
        self._flush_scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._flush)
        except RuntimeError:  # the caller's loop is closed: nobody is listening any more
            self.close()

    def _flush(self) -> None:
        self._flush_scheduled = False
        inbox = self._inbox
        while inbox:
            self._on_loop(inbox.popleft())

    def _on_loop(self, evt: EventDict) -> None:
        if self.closed:
            return
        if self.keep_queue:
            self._aqueue.put_nowait(evt)
        if self._acallback is None:
            return
        try:
            result = self._acallback(evt)
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except Exception:  # a user callback must not break the caller's loop
            log.exception("event callback failed for %s", evt.get("event_type"))

    async def get(self, timeout: float | None = None) -> EventDict | None:  # type: ignore[override]
        """The next event, or ``None`` after ``timeout`` seconds."""
        if not self._aqueue.empty():  # no timer, no task when an event is already there
            return self._aqueue.get_nowait()
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the event when the
        # caller is cancelled in the same loop turn that the event arrives, losing the cancel
        # (a Ctrl-C of a run was swallowed that way)
        try:
            async with asyncio.timeout(timeout):
                return await self._aqueue.get()
        except TimeoutError:
            return None

    def wake(self) -> None:
        """Make a waiting :meth:`get` return now, with a ``{"event_type": "wake"}`` event.

        For a consumer that waits for events *or* for news of its own (call it from the
        loop that reads this subscription).

        Example::

            sub.wake()  # e.g. a download finished: re-check whether the run is done
        """
        if not self.closed:
            self._aqueue.put_nowait({"event_type": WAKE})

    def get_nowait(self) -> EventDict | None:
        """The next event if one is waiting, else ``None``."""
        try:
            return self._aqueue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def __aenter__(self) -> AsyncSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
