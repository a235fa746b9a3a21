"""Submit, wait and stream: the blocking and asyncio shells of running a workflow.

Part of :class:`~invokeai_py_client.workflow.execution.WorkflowExecutionMixin`; the pure
parts (submission state, progress views, errors) are in ``_job.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from invokeai_py_client._waiting import STATUS_CHANGED
from invokeai_py_client.exceptions import JobTimeoutError
from invokeai_py_client.queue import TERMINAL_STATUSES
from invokeai_py_client.workflow._job import (
    _INVOCATION_EVENTS,
    CONNECT_WAIT,
    EventCallback,
    _Execution,
    _HandleJob,
    _ProgressTracker,
    enqueued_item_ids,
    final_status_event,
    submission_result,
)

#: How long a stream waits for an item's own final status event after the server said
#: the item is done (events can trail the server's answer).
STREAM_CATCH_UP = 1.0

if TYPE_CHECKING:
    from invokeai_py_client.events import AsyncSubscription


async def _awaited(result: Any) -> None:
    if asyncio.iscoroutine(result):
        await result


class _SubmitMixin(_HandleJob):
    """``submit_sync`` / ``submit``, the waits, and the monitor stream."""

    # ------------------------------------------------------------------ payload

    def _submission_payload(
        self,
        board_id: str | None,
        *,
        runs: int,
        data: Sequence[Sequence[Mapping[str, Any]]] | None,
        batch_id: str | None,
        prepend: bool,
        origin: str | None,
        destination: str | None,
    ) -> dict[str, Any]:
        self.validate_inputs()
        payload = self.build_payload(
            batch_id=batch_id or str(uuid.uuid4()),
            runs=runs,
            data=data,
            prepend=prepend,
            origin=origin,
            destination=destination,
        )
        self._inject_board(payload, board_id)
        return payload

    def _inject_board(self, payload: dict[str, Any], board_id: str | None) -> None:
        """Write ``board_id`` into every non-intermediate output node without a board."""
        if board_id and board_id not in ("none", "auto"):
            nodes = payload["batch"]["graph"]["nodes"]
            for out in self.output_nodes():
                gnode = nodes.get(out.node_id)
                if (
                    isinstance(gnode, dict)
                    and not gnode.get("is_intermediate", True)
                    and not gnode.get("board")
                ):
                    gnode["board"] = {"board_id": board_id}

    def _convert_to_api_format(self, board_id: str | None = None) -> dict[str, Any]:
        """The API graph ``submit_sync(board_id=...)`` would send, for inspection only.

        Private, kept for the seed docs' debugging recipe
        (``json.dump(wf._convert_to_api_format(board_id), f)``). Unlike a submission it does
        not validate the inputs first. :meth:`build_payload` is the public dry run and
        returns the whole request body; this is its ``["batch"]["graph"]``.
        """
        payload = self.build_payload()
        self._inject_board(payload, board_id)
        graph: dict[str, Any] = payload["batch"]["graph"]
        return graph

    # ------------------------------------------------------------------ sync

    def submit_sync(
        self,
        board_id: str | None = None,
        *,
        runs: int = 1,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        batch_id: str | None = None,
        prepend: bool = False,
        origin: str | None = None,
        destination: str | None = None,
    ) -> dict[str, Any]:
        """Validate, enqueue the workflow, and return the submission.

        Inputs are validated first: nothing is sent when one is invalid. The event
        subscription is made before the enqueue (on first use, after waiting up to
        ``CONNECT_WAIT`` seconds for the socket), so no event of the new items is missed.
        ``board_id`` (optional) is written into every non-intermediate output node that has
        no board of its own.

        Returns:
            ``{"batch_id", "item_ids" (run order), "item_id", "enqueued", "requested",
            "session_id"}`` (``session_id`` of the first item).

        Raises:
            InputValidationError: invalid inputs (before any request).
            EnqueueError: the queue took fewer items than requested.

        Example::

            submission = wf.submit_sync()
            print(submission["batch_id"], submission["item_ids"])
        """
        client = self._require_client()
        payload = self._submission_payload(
            board_id,
            runs=runs,
            data=data,
            batch_id=batch_id,
            prepend=prepend,
            origin=origin,
            destination=destination,
        )
        bid = str(payload["batch"]["batch_id"])
        sub = client.events.subscribe(batch_ids=[bid])
        if not client.events.connected:  # first use: let the socket join the queue's room
            client.events.wait_ready(CONNECT_WAIT)
        try:
            result = client.queue.enqueue_batch(payload)
        except BaseException:
            sub.close()
            raise
        item_ids = enqueued_item_ids(result)
        sub.add_items(item_ids)
        self._set_execution(_Execution(batch_id=bid, item_ids=item_ids, sub=sub))
        session_id = None
        if item_ids:
            session_id = client.queue.get_item(item_ids[0]).get("session_id")
        return submission_result(result, session_id, item_ids)

    def wait_for_completion_sync(
        self,
        poll_interval: float = 2.0,
        timeout: float = 300.0,
        progress_callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Block until the submitted item(s) finish; return the final queue item.

        Args:
            poll_interval: seconds between safety polls while the event socket is up
                (completion itself is noticed from events within milliseconds).
            timeout: seconds to wait before raising :class:`JobTimeoutError`.
            progress_callback: called in this thread with a dict for every status change
                and invocation event: the event plus ``status``, ``node_id`` and ``progress``
                (a number in [0, 1], 1.0 once completed).

        Raises:
            JobFailedError, JobCanceledError, JobTimeoutError, NoSubmissionError.

        Example::

            item = wf.wait_for_completion_sync(
                timeout=120, progress_callback=lambda p: print(p["event_type"], p["status"])
            )
        """
        client = self._require_client()
        ex = self._require_execution("wait_for_completion_sync")
        tracker = _ProgressTracker()

        def on_event(evt: dict[str, Any]) -> None:
            tracker.report(evt, progress_callback)

        ex.finished = []
        try:
            for item in client.events.iter_finished(
                ex.item_ids,
                subscription=ex.sub,
                on_event=on_event,
                **ex.wait_options(timeout, poll_interval),
            ):
                ex.finished.append(item)
        except JobTimeoutError as exc:
            raise ex.timeout_error(timeout, exc) from None
        if progress_callback is not None:
            for view in tracker.final_views(ex.finished):
                progress_callback(view)
        return ex.final_item()

    # ------------------------------------------------------------------ asyncio

    async def submit(
        self,
        subscribe_events: bool = False,
        on_invocation_started: EventCallback | None = None,
        on_invocation_progress: EventCallback | None = None,
        on_invocation_complete: EventCallback | None = None,
        on_invocation_error: EventCallback | None = None,
        *,
        board_id: str | None = None,
        runs: int = 1,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        batch_id: str | None = None,
        prepend: bool = False,
        origin: str | None = None,
        destination: str | None = None,
    ) -> dict[str, Any]:
        """Validate and enqueue without blocking the event loop; return the submission.

        With ``subscribe_events=True`` the ``on_invocation_*`` callbacks run in this loop for
        each matching event (a dict; progress events carry ``progress``). A callback may be a
        coroutine function. Subscribing happens before the enqueue.

        Example::

            await wf.submit(subscribe_events=True, on_invocation_complete=print)
            item = await wf.wait_for_completion(timeout=60)
        """
        client = self._require_client()
        payload = self._submission_payload(
            board_id,
            runs=runs,
            data=data,
            batch_id=batch_id,
            prepend=prepend,
            origin=origin,
            destination=destination,
        )
        bid = str(payload["batch"]["batch_id"])
        callbacks = {
            "on_invocation_started": on_invocation_started,
            "on_invocation_progress": on_invocation_progress,
            "on_invocation_complete": on_invocation_complete,
            "on_invocation_error": on_invocation_error,
        }

        def dispatch(evt: dict[str, Any]) -> Any:
            name = _INVOCATION_EVENTS.get(str(evt.get("event_type")))
            cb = callbacks.get(name) if name else None
            return cb(evt) if cb is not None else None

        asub = client.events.asubscribe(
            batch_ids=[bid], callback=dispatch if subscribe_events else None, keep_queue=True
        )
        if not client.events.connected:  # first use: let the socket join the queue's room
            await asyncio.to_thread(client.events.wait_ready, CONNECT_WAIT)
        try:
            result = await client.queue.aenqueue_batch(payload)
        except BaseException:
            asub.close()
            raise
        item_ids = enqueued_item_ids(result)
        asub.add_items(item_ids)
        self._set_execution(_Execution(batch_id=bid, item_ids=item_ids, asub=asub))
        session_id = None
        if item_ids:
            session_id = (await client.queue.aget_item(item_ids[0])).get("session_id")
        return submission_result(result, session_id, item_ids)

    def _async_subscription(self, ex: _Execution) -> AsyncSubscription:
        client = self._require_client()
        loop = asyncio.get_running_loop()
        if ex.asub is None or ex.asub.closed or ex.asub._loop is not loop:
            if ex.asub is not None:
                ex.asub.close()
            ex.asub = client.events.asubscribe(item_ids=ex.item_ids, keep_queue=True)
        return ex.asub

    async def wait_for_completion(
        self,
        timeout: float = 300.0,
        poll_interval: float = 2.0,
        progress_callback: EventCallback | None = None,
    ) -> dict[str, Any]:
        """Asyncio twin of :meth:`wait_for_completion_sync` (same errors and return value).

        Example::

            done = await wf.wait_for_completion(timeout=300)
            print(done.get("status"))
        """
        client = self._require_client()
        ex = self._require_execution("wait_for_completion")
        asub = self._async_subscription(ex)
        tracker = _ProgressTracker()

        async def on_event(evt: dict[str, Any]) -> None:
            await _awaited(tracker.report(evt, progress_callback))

        ex.finished = []
        try:
            async for item in client.events.aiter_finished(
                ex.item_ids,
                subscription=asub,
                on_event=on_event,
                **ex.wait_options(timeout, poll_interval),
            ):
                ex.finished.append(item)
        except JobTimeoutError as exc:
            raise ex.timeout_error(timeout, exc) from None
        if progress_callback is not None:
            for view in tracker.final_views(ex.finished):
                await _awaited(progress_callback(view))
        return ex.final_item()

    async def submit_sync_monitor_async(
        self,
        timeout: float = 300.0,
        poll_interval: float = 2.0,
        *,
        board_id: str | None = None,
        runs: int = 1,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Submit, then yield every event of the run as a dict until it finishes.

        Each event has an ``event_type`` (``queue_item_status_changed``,
        ``invocation_started``, ``invocation_progress``, ``invocation_complete``,
        ``invocation_error``...). The last one, per item, is
        ``{"event_type": "final_status", "status": ..., "item_id": ..., "queue_item": {...}}``
        read from the server (plus ``error_*`` for a failed item); the stream does not raise
        for failed or canceled items, it reports them.

        Example::

            async for evt in wf.submit_sync_monitor_async():
                print(evt.get("event_type"), evt.get("status") or "")
        """
        client = self._require_client()
        await self.submit(board_id=board_id, runs=runs, data=data)
        ex = self._require_execution("submit_sync_monitor_async")
        asub = self._async_subscription(ex)
        out: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        terminal_seen: set[int] = set()
        error_seen: set[int] = set()

        def relay(evt: dict[str, Any]) -> None:
            kind, item_id = evt.get("event_type"), evt.get("item_id", -1)
            if kind == STATUS_CHANGED and evt.get("status") in TERMINAL_STATUSES:
                terminal_seen.add(item_id)
            elif kind == "invocation_error":
                error_seen.add(item_id)
            out.put_nowait(evt)

        async def catch_up(item: Mapping[str, Any]) -> None:
            # The server may say an item is done before its events reached us (a fast job, a
            # busy client). Its final status event comes last, except that a failed item's
            # invocation_error follows it; relay what arrives until those are in, briefly.
            item_id = int(item.get("item_id", -1))
            last_seen = error_seen if item.get("status") == "failed" else terminal_seen
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STREAM_CATCH_UP
            while item_id not in last_seen:
                left = deadline - loop.time()
                evt = await asub.get(left) if left > 0 else None
                if evt is None:
                    return
                relay(evt)

        async def pump() -> None:
            try:
                async for item in client.events.aiter_finished(
                    ex.item_ids,
                    subscription=asub,
                    on_event=relay,
                    **ex.wait_options(timeout, poll_interval),
                ):
                    await catch_up(item)
                    ex.finished.append(item)
                    out.put_nowait(final_status_event(item))
            finally:
                out.put_nowait(None)

        ex.finished = []
        task = asyncio.ensure_future(pump())
        try:
            while True:
                evt = await out.get()
                if evt is None:
                    break
                yield evt
            exc = task.exception()
            if isinstance(exc, JobTimeoutError):
                raise ex.timeout_error(timeout, exc) from None
            if exc is not None:
                raise exc
        finally:
            if not task.done():
                task.cancel()
            ex.close()
