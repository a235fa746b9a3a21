"""Submit, wait, stream, cancel and map outputs: the execution half of ``WorkflowHandle``.

:class:`WorkflowExecutionMixin` adds the seeds' execution API to a workflow handle:

- ``submit_sync()`` -> ``{"batch_id", "item_ids", "enqueued", "session_id", ...}``
- ``wait_for_completion_sync(poll_interval=2.0, timeout=300.0, progress_callback=None)``
  -> the final queue item (a dict)
- ``await submit(subscribe_events=True, on_invocation_started=..., ...)`` and
  ``await wait_for_completion(timeout=...)``
- ``async for evt in submit_sync_monitor_async(): ...`` (events, then a ``final_status`` event)
- ``attach(item_id=... | batch_id=...)``, ``cancel()``
- ``list_outputs()``, ``map_outputs_to_images(queue_item)``, ``download_outputs(...)``,
  ``download_image(name)``

Completion is noticed through the client's one event socket (``client.events``): the
``queue_item_status_changed`` event wakes the waiter, which reads the final item from the
server (the authority). ``poll_interval`` is only the safety poll, with a cheap status read;
when the socket is down the waiter polls with backoff instead.

Errors: a failed item raises :class:`~invokeai_py_client.exceptions.JobFailedError` with the
server's ``error_type``/``error_message``/``error_traceback``; a canceled one
:class:`~invokeai_py_client.exceptions.JobCanceledError`; running out of time
:class:`~invokeai_py_client.exceptions.JobTimeoutError` (the message says how to re-attach).
With several items (``runs > 1``) every item is waited for, the first failure raises, and the
last item to finish is returned; all of them are in ``handle.finished_items``.

Example::

    wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file("blur.json"))
    submission = wf.submit_sync()
    item = wf.wait_for_completion_sync(timeout=60)
    for m in wf.map_outputs_to_images(item):
        print(m["node_id"], m["tier"], m["image_names"])
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invokeai_py_client.exceptions import (
    JobCanceledError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    NoSubmissionError,
    WorkflowError,
)
from invokeai_py_client.workflow.outputs import map_outputs

if TYPE_CHECKING:
    from invokeai_py_client.client import InvokeAIClient
    from invokeai_py_client.events import AsyncSubscription, Subscription
    from invokeai_py_client.workflow.definition import WorkflowDefinition
    from invokeai_py_client.workflow.handle import IvkWorkflowInput, OutputNode
    from invokeai_py_client.workflow.schema import NodeSchemaIndex

__all__ = ["WorkflowExecutionMixin"]

EventCallback = Callable[[dict[str, Any]], Any]

#: Seconds a submit waits for the event socket on first use (then it relies on polling).
CONNECT_WAIT = 2.0

_INVOCATION_EVENTS = {
    "invocation_started": "on_invocation_started",
    "invocation_progress": "on_invocation_progress",
    "invocation_complete": "on_invocation_complete",
    "invocation_error": "on_invocation_error",
}
_STATUS_KEYS = (
    "item_id",
    "batch_id",
    "session_id",
    "status",
    "error_type",
    "error_message",
    "error_traceback",
    "started_at",
    "completed_at",
)
_PROGRESS_EVENTS = {
    "queue_item_status_changed",
    "invocation_started",
    "invocation_progress",
    "invocation_complete",
    "invocation_error",
}


@dataclass
class _Execution:
    """What a handle last submitted or attached to."""

    batch_id: str
    item_ids: list[int]
    sub: Subscription | None = None
    asub: AsyncSubscription | None = None
    finished: list[dict[str, Any]] = field(default_factory=list)

    def close(self) -> None:
        if self.sub is not None:
            self.sub.close()
            self.sub = None
        if self.asub is not None:
            self.asub.close()
            self.asub = None


def _raise_for_item(item: Mapping[str, Any]) -> None:
    """Raise the error matching a final queue item's status (nothing for ``completed``)."""
    status = item.get("status")
    item_id = item.get("item_id")
    batch_id = item.get("batch_id")
    iid = int(item_id) if isinstance(item_id, int) else None
    bid = str(batch_id) if batch_id is not None else None
    if status == "completed":
        return
    if status == "failed":
        etype, emsg = item.get("error_type"), item.get("error_message")
        raise JobFailedError(
            f"queue item {item_id} failed: {etype}: {emsg}",
            error_type=etype,
            error_message=emsg,
            error_traceback=item.get("error_traceback"),
            item_id=iid,
            batch_id=bid,
            item=item,
        )
    if status == "canceled":
        raise JobCanceledError(
            f"queue item {item_id} was canceled", item_id=iid, batch_id=bid, item=item
        )
    raise JobError(
        f"queue item {item_id} ended with status {status!r} (the server no longer has it?)",
        item_id=iid,
        batch_id=bid,
        item=item,
    )


class _ProgressTracker:
    """Turns raw events into the dicts a ``progress_callback`` receives.

    Each view is the event plus ``status`` (last known item status), ``node_id`` (the
    workflow node) and ``progress``: always a number in [0, 1] (the server's ``percentage``
    when it sends one, 1.0 once the item completed, else the last value, starting at 0.0),
    so ``item.get("progress", 0) * 100`` is always valid.
    """

    def __init__(self) -> None:
        self.status: str | None = None
        self.progress = 0.0
        self.reported_final: set[Any] = set()

    def final_views(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Status views for final items whose last status change no event reported."""
        views: list[dict[str, Any]] = []
        for item in items:
            if item.get("item_id") in self.reported_final:
                continue
            evt = {
                "event_type": "queue_item_status_changed",
                **{k: item.get(k) for k in _STATUS_KEYS},
            }
            view = self.view(evt)
            if view is not None:
                views.append(view)
        return views

    def view(self, evt: Mapping[str, Any]) -> dict[str, Any] | None:
        etype = evt.get("event_type")
        if etype == "queue_item_status_changed":
            self.status = evt.get("status")
            if self.status in ("completed", "failed", "canceled"):
                self.reported_final.add(evt.get("item_id"))
            if self.status == "completed":
                self.progress = 1.0
        elif etype == "invocation_progress":
            pct = evt.get("percentage")
            if isinstance(pct, (int, float)) and not isinstance(pct, bool):
                self.progress = float(min(max(pct, 0.0), 1.0))
        if etype not in _PROGRESS_EVENTS:
            return None
        view = dict(evt)
        view["status"] = evt.get("status") or self.status
        view["progress"] = self.progress
        view.setdefault("node_id", evt.get("invocation_source_id"))
        return view


class WorkflowExecutionMixin:
    """Execution API of :class:`~invokeai_py_client.workflow.handle.WorkflowHandle`.

    The handle provides ``definition``, ``client``, ``schema``, ``list_inputs()``,
    ``validate_inputs()``, ``build_payload(...)`` and ``output_nodes()``.
    """

    if TYPE_CHECKING:
        definition: WorkflowDefinition
        client: InvokeAIClient | None
        schema: NodeSchemaIndex

        def list_inputs(self) -> list[IvkWorkflowInput]: ...

        def validate_inputs(self) -> None: ...

        def output_nodes(self) -> list[OutputNode]: ...

        def build_payload(
            self,
            *,
            batch_id: str | None = None,
            runs: int = 1,
            data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
            prepend: bool = False,
            origin: str | None = None,
            destination: str | None = None,
        ) -> dict[str, Any]: ...

    # ------------------------------------------------------------------ state

    @property
    def _execution(self) -> _Execution | None:
        value = self.__dict__.get("_ivk_execution")
        return value if isinstance(value, _Execution) else None

    def _set_execution(self, execution: _Execution | None) -> None:
        old = self._execution
        if old is not None:
            old.close()
        self.__dict__["_ivk_execution"] = execution

    def _require_client(self) -> InvokeAIClient:
        if self.client is None:
            raise WorkflowError(
                "this workflow handle has no client; create it with "
                "client.workflow_repo.create_workflow(definition) to submit it"
            )
        return self.client

    def _require_execution(self, what: str) -> _Execution:
        ex = self._execution
        if ex is None:
            raise NoSubmissionError(
                f"{what}: nothing submitted yet; call submit_sync() / await submit(), or "
                "attach(item_id=...) / attach(batch_id=...) to existing queue items"
            )
        return ex

    @property
    def batch_id(self) -> str | None:
        """The batch id of the last submission or attachment (None before)."""
        ex = self._execution
        return ex.batch_id if ex is not None else None

    @property
    def item_ids(self) -> list[int]:
        """Queue item ids of the last submission or attachment, in run order (oldest first)."""
        ex = self._execution
        return list(ex.item_ids) if ex is not None else []

    @property
    def finished_items(self) -> list[dict[str, Any]]:
        """Final queue items seen by the last wait, in finishing order."""
        ex = self._execution
        return list(ex.finished) if ex is not None else []

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
        return payload

    @staticmethod
    def _submission_result(
        result: Mapping[str, Any], session_id: str | None, item_ids: list[int]
    ) -> dict[str, Any]:
        return {
            "batch_id": result["batch"]["batch_id"],
            "item_ids": item_ids,
            "item_id": item_ids[0] if item_ids else None,
            "enqueued": result.get("enqueued"),
            "requested": result.get("requested"),
            "session_id": session_id,
        }

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
        item_ids = sorted(int(i) for i in result.get("item_ids", []))
        sub.add_items(item_ids)
        self._set_execution(_Execution(batch_id=bid, item_ids=item_ids, sub=sub))
        session_id = None
        if item_ids:
            session_id = client.queue.get_item(item_ids[0]).get("session_id")
        return self._submission_result(result, session_id, item_ids)

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
            view = tracker.view(evt)
            if progress_callback is not None and view is not None:
                progress_callback(view)

        ex.finished = []
        try:
            for item in client.events.iter_finished(
                ex.item_ids,
                timeout=timeout,
                poll_interval=poll_interval,
                fetch_full=True,
                subscription=ex.sub,
                on_event=on_event,
                batch_ids=[ex.batch_id],
            ):
                ex.finished.append(item)
        except JobTimeoutError as exc:
            raise self._timeout_error(ex, timeout, exc) from None
        if progress_callback is not None:
            for view in tracker.final_views(ex.finished):
                progress_callback(view)
        return self._final_item(ex)

    def _final_item(self, ex: _Execution) -> dict[str, Any]:
        ex.close()  # every item is final: no more events to follow
        for item in sorted(ex.finished, key=lambda i: int(i["item_id"])):
            _raise_for_item(item)
        if not ex.finished:
            raise JobError(f"batch {ex.batch_id} has no queue items", batch_id=ex.batch_id)
        return ex.finished[-1]

    def _timeout_error(
        self, ex: _Execution, timeout: float, exc: JobTimeoutError
    ) -> JobTimeoutError:
        item_id = exc.item_id
        if item_id is None and ex.item_ids:
            item_id = ex.item_ids[0]
        return JobTimeoutError(
            f"queue item {item_id} (batch {ex.batch_id}) did not finish within {timeout}s; it "
            f"keeps running on the server. Re-attach later with "
            f"wf.attach(item_id={item_id}) or wf.attach(batch_id={ex.batch_id!r}), then "
            "wait_for_completion_sync() again; or stop it with wf.cancel().",
            item_id=item_id,
            batch_id=ex.batch_id,
        )

    # ------------------------------------------------------------------ attach / cancel

    def attach(self, item_id: int | None = None, batch_id: str | None = None) -> dict[str, Any]:
        """Point this handle at queue items that already exist (e.g. after a restart).

        Give one item id, or a batch id (its items are found by scanning the queue). Returns
        ``{"batch_id", "item_ids", "item_id"}``; then wait, cancel or map outputs as usual.

        Example::

            wf.attach(batch_id=saved_batch_id)
            item = wf.wait_for_completion_sync(timeout=600)
        """
        client = self._require_client()
        if (item_id is None) == (batch_id is None):
            raise WorkflowError("attach() needs exactly one of item_id or batch_id")
        if item_id is not None:
            rows = client.queue.item_summaries([int(item_id)])
            if not rows:
                raise JobError(f"the server has no queue item {item_id}", item_id=int(item_id))
            bid = str(rows[0]["batch_id"])
            ids = [int(item_id)]
        else:
            bid = str(batch_id)
            total = int(client.queue.batch_status(bid).get("total", 0))
            if total == 0:
                raise JobError(f"the server has no queue items for batch {bid}", batch_id=bid)
            ids = sorted(client.queue.find_batch_item_ids(bid, expected=total))
        sub = client.events.subscribe(item_ids=ids)
        self._set_execution(_Execution(batch_id=bid, item_ids=ids, sub=sub))
        return {"batch_id": bid, "item_ids": ids, "item_id": ids[0] if ids else None}

    def cancel(self) -> dict[str, Any]:
        """Cancel the submitted (or attached) items that have not finished.

        Returns ``{"canceled": n}`` (0 when the item had already finished). A later wait
        raises :class:`JobCanceledError` for a canceled item.
        """
        client = self._require_client()
        ex = self._require_execution("cancel")
        if ex.finished and len(ex.finished) == len(ex.item_ids):
            return {"canceled": 0}  # every item already ended
        if len(ex.item_ids) == 1:
            item = client.queue.cancel_item(ex.item_ids[0])  # a no-op on a finished item
            return {"canceled": int(item.get("status") == "canceled")}
        return client.queue.cancel_by_batch_ids([ex.batch_id])

    async def acancel(self) -> dict[str, Any]:
        """Asyncio twin of :meth:`cancel`."""
        client = self._require_client()
        ex = self._require_execution("cancel")
        if ex.finished and len(ex.finished) == len(ex.item_ids):
            return {"canceled": 0}
        if len(ex.item_ids) == 1:
            item = await client.queue.acancel_item(ex.item_ids[0])
            return {"canceled": int(item.get("status") == "canceled")}
        return await client.queue.acancel_by_batch_ids([ex.batch_id])

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
        item_ids = sorted(int(i) for i in result.get("item_ids", []))
        asub.add_items(item_ids)
        self._set_execution(_Execution(batch_id=bid, item_ids=item_ids, asub=asub))
        session_id = None
        if item_ids:
            session_id = (await client.queue.aget_item(item_ids[0])).get("session_id")
        return self._submission_result(result, session_id, item_ids)

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
            view = tracker.view(evt)
            if progress_callback is not None and view is not None:
                result = progress_callback(view)
                if asyncio.iscoroutine(result):
                    await result

        ex.finished = []
        try:
            async for item in client.events.aiter_finished(
                ex.item_ids,
                timeout=timeout,
                poll_interval=poll_interval,
                fetch_full=True,
                subscription=asub,
                on_event=on_event,
                batch_ids=[ex.batch_id],
            ):
                ex.finished.append(item)
        except JobTimeoutError as exc:
            raise self._timeout_error(ex, timeout, exc) from None
        if progress_callback is not None:
            for view in tracker.final_views(ex.finished):
                result = progress_callback(view)
                if asyncio.iscoroutine(result):
                    await result
        return self._final_item(ex)

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

        async def pump() -> None:
            try:
                async for item in client.events.aiter_finished(
                    ex.item_ids,
                    timeout=timeout,
                    poll_interval=poll_interval,
                    fetch_full=True,
                    subscription=asub,
                    on_event=out.put_nowait,
                    batch_ids=[ex.batch_id],
                ):
                    ex.finished.append(item)
                    out.put_nowait(
                        {
                            "event_type": "final_status",
                            "status": item.get("status"),
                            "item_id": item.get("item_id"),
                            "batch_id": item.get("batch_id"),
                            "error_type": item.get("error_type"),
                            "error_message": item.get("error_message"),
                            "error_traceback": item.get("error_traceback"),
                            "queue_item": item,
                        }
                    )
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
                raise self._timeout_error(ex, timeout, exc) from None
            if exc is not None:
                raise exc
        finally:
            if not task.done():
                task.cancel()
            ex.close()

    # ------------------------------------------------------------------ outputs

    def list_outputs(self) -> list[IvkWorkflowInput]:
        """The Form's board inputs of output-capable nodes (``IvkWorkflowInput`` objects).

        Example::

            index_by_node = {o.node_id: o.input_index for o in wf.list_outputs()}
        """
        output_ids = {o.node_id for o in self.output_nodes()}
        return [
            inp
            for inp in self.list_inputs()
            if inp.field_name == "board" and inp.node_id in output_ids
        ]

    def map_outputs_to_images(self, queue_item: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One record per output node with the image names it produced in ``queue_item``.

        Keys: ``node_id``, ``node_type``, ``label``, ``input_index`` (its exposed board input,
        None when the board is not in the Form), ``board_id`` (``"none"`` = uncategorized),
        ``tier`` (``"output"`` or ``"intermediate"``), ``image_names``. See
        :mod:`invokeai_py_client.workflow.outputs`.

        Example::

            for m in wf.map_outputs_to_images(item):
                print(m["node_id"], m["board_id"], m["image_names"])
        """
        return map_outputs(queue_item, self.output_nodes())

    def download_image(self, image_name: str, full_resolution: bool = True) -> bytes:
        """One image file by name, in one request (no board listing)."""
        return self._require_client().images.download_image(image_name, full_resolution)

    def download_outputs(
        self,
        queue_item: Mapping[str, Any],
        dest_dir: str | Path,
        *,
        include_intermediate: bool = False,
    ) -> list[Path]:
        """Download the images of ``queue_item``'s output nodes into ``dest_dir``.

        One GET per image, by name; files keep the server's image names. Intermediate nodes
        are skipped unless ``include_intermediate``. Returns the written paths.

        Example::

            paths = wf.download_outputs(item, "out/")
        """
        client = self._require_client()
        target = Path(dest_dir)
        target.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []
        for rec in self.map_outputs_to_images(queue_item):
            if rec["tier"] != "output" and not include_intermediate:
                continue
            for name in rec["image_names"]:
                path = target / name
                path.write_bytes(client.images.download_image(name))
                paths.append(path)
        return paths
