"""Waiting for queue items: "events wake, the server decides".

A ``queue_item_status_changed`` event with a final status wakes the waiter, which then reads
the item from the server; a slow safety poll (cheap summaries, never full items) covers missed
events, and when the socket is down the waiter polls with backoff until it is back. With many
items, safety polls read each batch's counts first and skip the summaries when nothing new
finished (batch gating).

:class:`_WaitState` and the functions around it are the sans-I/O core; :func:`iter_finished`
and :func:`aiter_finished` are the blocking and asyncio shells behind
:meth:`EventHub.iter_finished <invokeai_py_client.events.EventHub.iter_finished>` and
:meth:`EventHub.aiter_finished <invokeai_py_client.events.EventHub.aiter_finished>`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ._subscriptions import (
    HUB_DISCONNECTED,
    HUB_RECONNECTED,
    AsyncSubscription,
    EventCallback,
    EventDict,
    Subscription,
)
from .exceptions import JobTimeoutError
from .queue import TERMINAL_STATUSES

if TYPE_CHECKING:
    from .events import EventHub
    from .queue import QueueClient

__all__ = ["BATCH_GATE_MIN_ITEMS", "STATUS_CHANGED", "aiter_finished", "iter_finished"]

STATUS_CHANGED = "queue_item_status_changed"
_FINAL_COUNT_KEYS = ("completed", "failed", "canceled", "total")
#: With at least this many unfinished items, safety polls read the batch counts first.
BATCH_GATE_MIN_ITEMS = 2


class _WaitState:
    """Sans-I/O bookkeeping for waiting on many items: what to check and when."""

    def __init__(self, item_ids: Iterable[int], poll_interval: float) -> None:
        self.pending: set[int] = {int(i) for i in item_ids}
        self.poll_interval = max(0.05, float(poll_interval))
        self.to_confirm: set[int] = set()
        self.check_all = True  # the job may have ended before we subscribed
        self._backoff = 0.05
        self.batch_baseline: dict[str, int] | None = None

    def batches_unchanged(self, statuses: Iterable[Mapping[str, Any]]) -> bool:
        """True when no item of these batches finished since the last summary read.

        Counts are read before the summaries, so an item finishing in between still shows up
        as a change at the next poll.
        """
        counts = {
            str(st.get("batch_id")): sum(int(st.get(k) or 0) for k in _FINAL_COUNT_KEYS)
            for st in statuses
        }
        if counts == self.batch_baseline:
            return True
        self.batch_baseline = counts
        return False

    def on_event(self, evt: Mapping[str, Any]) -> None:
        etype = evt.get("event_type")
        if etype in (HUB_RECONNECTED, HUB_DISCONNECTED):
            self.check_all = True
            self._backoff = 0.05
        elif etype == STATUS_CHANGED and evt.get("status") in TERMINAL_STATUSES:
            item_id = evt.get("item_id")
            if isinstance(item_id, int) and item_id in self.pending:
                self.to_confirm.add(item_id)
        elif etype == "queue_items_canceled":
            ids = evt.get("canceled_item_ids")
            if isinstance(ids, list):
                self.to_confirm.update(i for i in ids if i in self.pending)
        elif etype == "queue_cleared":
            self.check_all = True

    def next_wait(self, connected: bool) -> float:
        """Seconds to wait for an event before polling the server again."""
        if connected:
            self._backoff = 0.05
            return self.poll_interval
        wait = self._backoff
        self._backoff = min(self._backoff * 2, self.poll_interval)
        return wait * random.uniform(0.8, 1.2)

    def take_checks(self) -> tuple[list[int], bool]:
        """Ids to read from the server now, and whether events said they are all final."""
        confirmed = not self.check_all
        ids = sorted(self.pending) if self.check_all else sorted(self.to_confirm & self.pending)
        self.check_all = False
        self.to_confirm.clear()
        return ids, confirmed

    def note(self, evt: EventDict, on_event: Callable[[EventDict], Any] | None) -> Any:
        """Record an event and pass it on to ``on_event`` (not the hub's own events).

        Returns what ``on_event`` returned, so an async caller can await a coroutine.
        """
        self.on_event(evt)
        if on_event is not None and evt["event_type"] not in (HUB_DISCONNECTED, HUB_RECONNECTED):
            return on_event(evt)
        return None

    @staticmethod
    def read_counts_first(ids: list[int], confirmed: bool, gate: list[str]) -> bool:
        """Whether a safety poll should read the batches' counts before the item summaries."""
        return bool(ids) and not confirmed and bool(gate) and len(ids) >= BATCH_GATE_MIN_ITEMS

    def finish(self, ids: list[int], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The final rows among ``rows`` (read for ``ids``); they stop being pending.

        Ids the server did not return are final too, as ``{"item_id": id, "status": "missing"}``.
        """
        seen: set[int] = set()
        done: list[dict[str, Any]] = []
        for row in rows:
            item_id = int(row["item_id"])
            seen.add(item_id)
            if row.get("status") in TERMINAL_STATUSES and item_id in self.pending:
                self.pending.discard(item_id)
                done.append(row)
        for item_id in ids:
            if item_id not in seen and item_id in self.pending:
                self.pending.discard(item_id)
                done.append({"item_id": item_id, "status": "missing"})
        return done

    def wait_before_poll(
        self, connected: bool, remaining: float | None, timeout: float | None
    ) -> float:
        """Seconds to wait for an event now; raises when the deadline has passed.

        Raises:
            JobTimeoutError: ``remaining`` (seconds to the deadline) is used up.
        """
        wait = self.next_wait(connected)
        if remaining is None:
            return wait
        if remaining <= 0:
            first = min(self.pending)
            raise JobTimeoutError(
                f"{len(self.pending)} item(s) not finished after {timeout}s (first: {first})",
                item_id=first,
            )
        return min(wait, remaining)


def summaries_to_fetch(done: list[dict[str, Any]]) -> list[int]:
    """Ids of finished rows that are summaries, not full queue items."""
    return [r["item_id"] for r in done if "session" not in r]


def with_full_items(
    done: list[dict[str, Any]], fulls: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``done`` with each summary replaced by its full item from ``fulls`` when there is one."""
    by_id = {int(r["item_id"]): r for r in fulls}
    return [by_id.get(int(r["item_id"]), r) for r in done]


def iter_finished(
    hub: EventHub,
    queue: QueueClient,
    item_ids: Iterable[int],
    *,
    timeout: float | None,
    poll_interval: float,
    fetch_full: bool,
    subscription: Subscription | None,
    on_event: EventCallback | None,
    batch_ids: Iterable[str],
) -> Iterator[dict[str, Any]]:
    """The blocking shell of :meth:`EventHub.iter_finished` (documented there)."""
    state = _WaitState(item_ids, poll_interval)
    own = subscription is None
    sub = subscription if subscription is not None else hub.subscribe(item_ids=state.pending)
    if not own:
        sub.add_items(state.pending)
    hub.start()
    gate = sorted({str(b) for b in batch_ids})
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while state.pending:
            evt = sub.get_nowait()  # events already queued go first (and to on_event)
            while evt is not None:
                state.note(evt, on_event)
                evt = sub.get_nowait()
            ids, confirmed = state.take_checks()
            if state.read_counts_first(ids, confirmed, gate):
                hub.stats["polls"] += 1
                if state.batches_unchanged(queue.batch_status(b) for b in gate):
                    ids = []
            if ids:
                hub.stats["polls"] += 1
                # events said these ended: read the full items at once (one request);
                # otherwise a cheap summary read, and full items only for finished ones
                rows = (
                    queue.items_by_ids(ids)
                    if fetch_full and confirmed
                    else queue.item_summaries(ids)
                )
                done = state.finish(ids, rows)
                if fetch_full:
                    needed = summaries_to_fetch(done)
                    done = with_full_items(done, queue.items_by_ids(needed) if needed else [])
                yield from done
                if not state.pending:
                    break
            remaining = None if deadline is None else deadline - time.monotonic()
            evt = sub.get(timeout=state.wait_before_poll(hub.connected, remaining, timeout))
            if evt is None:
                state.check_all = True
                continue
            state.note(evt, on_event)
    finally:
        if own:
            sub.close()


async def aiter_finished(
    hub: EventHub,
    queue: QueueClient,
    item_ids: Iterable[int],
    *,
    timeout: float | None,
    poll_interval: float,
    fetch_full: bool,
    subscription: AsyncSubscription | None,
    on_event: Callable[[EventDict], Any] | None,
    batch_ids: Iterable[str],
) -> AsyncIterator[dict[str, Any]]:
    """The asyncio shell of :meth:`EventHub.aiter_finished` (same steps, awaited I/O)."""
    state = _WaitState(item_ids, poll_interval)
    own = subscription is None
    sub = subscription if subscription is not None else hub.asubscribe(item_ids=state.pending)
    if not own:
        sub.add_items(state.pending)
    hub.start()
    loop = asyncio.get_running_loop()
    gate = sorted({str(b) for b in batch_ids})
    deadline = None if timeout is None else loop.time() + timeout
    try:
        while state.pending:
            aevt = sub.get_nowait()  # events already queued go first (and to on_event)
            while aevt is not None:
                await _awaited(state.note(aevt, on_event))
                aevt = sub.get_nowait()
            ids, confirmed = state.take_checks()
            if state.read_counts_first(ids, confirmed, gate):
                hub.stats["polls"] += 1
                statuses = [await queue.abatch_status(b) for b in gate]
                if state.batches_unchanged(statuses):
                    ids = []
            if ids:
                hub.stats["polls"] += 1
                if fetch_full and confirmed:
                    rows = await queue.aitems_by_ids(ids)
                else:
                    rows = await queue.aitem_summaries(ids)
                done = state.finish(ids, rows)
                if fetch_full:
                    needed = summaries_to_fetch(done)
                    done = with_full_items(
                        done, await queue.aitems_by_ids(needed) if needed else []
                    )
                for row in done:
                    yield row
                if not state.pending:
                    break
            remaining = None if deadline is None else deadline - loop.time()
            evt = await sub.get(timeout=state.wait_before_poll(hub.connected, remaining, timeout))
            if evt is None:
                state.check_all = True
                continue
            await _awaited(state.note(evt, on_event))
    finally:
        if own:
            sub.close()


async def _awaited(result: Any) -> None:
    if asyncio.iscoroutine(result):
        await result
