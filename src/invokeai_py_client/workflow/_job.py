"""The sans-I/O core of running a workflow: what a handle submitted, progress views, errors.

Shared by the blocking and asyncio shells in ``_submit.py`` and ``_attach.py``; nothing here
does I/O. :class:`_HandleJob` is the base of the execution mixins: it declares what the
handle provides and keeps the handle's last submission (:class:`_Execution`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invokeai_py_client.exceptions import (
    JobCanceledError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    NoSubmissionError,
    WorkflowError,
)

if TYPE_CHECKING:
    from invokeai_py_client.client import InvokeAIClient
    from invokeai_py_client.events import AsyncSubscription, Subscription
    from invokeai_py_client.workflow.definition import WorkflowDefinition
    from invokeai_py_client.workflow.handle import IvkWorkflowInput, OutputNode
    from invokeai_py_client.workflow.schema import NodeSchemaIndex

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

    @property
    def all_finished(self) -> bool:
        """True once the last wait saw every item end."""
        return bool(self.finished) and len(self.finished) == len(self.item_ids)

    def wait_options(self, timeout: float, poll_interval: float) -> dict[str, Any]:
        """Keyword arguments of ``EventHub.iter_finished`` / ``aiter_finished`` for a wait."""
        return {
            "timeout": timeout,
            "poll_interval": poll_interval,
            "fetch_full": True,
            "batch_ids": [self.batch_id],
        }

    def final_item(self) -> dict[str, Any]:
        """The last item to finish; raises for the first failed / canceled one (by id)."""
        self.close()  # every item is final: no more events to follow
        for item in sorted(self.finished, key=lambda i: int(i["item_id"])):
            _raise_for_item(item)
        if not self.finished:
            raise JobError(f"batch {self.batch_id} has no queue items", batch_id=self.batch_id)
        return self.finished[-1]

    def timeout_error(self, timeout: float, exc: JobTimeoutError) -> JobTimeoutError:
        """The error for a wait that ran out of time, saying how to re-attach."""
        item_id = exc.item_id
        if item_id is None and self.item_ids:
            item_id = self.item_ids[0]
        return JobTimeoutError(
            f"queue item {item_id} (batch {self.batch_id}) did not finish within {timeout}s; "
            f"it keeps running on the server. Re-attach later with "
            f"wf.attach(item_id={item_id}) or wf.attach(batch_id={self.batch_id!r}), then "
            "wait_for_completion_sync() again; or stop it with wf.cancel().",
            item_id=item_id,
            batch_id=self.batch_id,
        )

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

    def report(self, evt: Mapping[str, Any], callback: EventCallback | None) -> Any:
        """Pass the view of ``evt`` to ``callback``; returns what it returned (or None)."""
        view = self.view(evt)
        if callback is not None and view is not None:
            return callback(view)
        return None

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


def enqueued_item_ids(result: Mapping[str, Any]) -> list[int]:
    """The item ids of an ``enqueue_batch`` answer, in run order (oldest first)."""
    return sorted(int(i) for i in result.get("item_ids", []))


def submission_result(
    result: Mapping[str, Any], session_id: str | None, item_ids: list[int]
) -> dict[str, Any]:
    """What ``submit_sync()`` / ``submit()`` return."""
    return {
        "batch_id": result["batch"]["batch_id"],
        "item_ids": item_ids,
        "item_id": item_ids[0] if item_ids else None,
        "enqueued": result.get("enqueued"),
        "requested": result.get("requested"),
        "session_id": session_id,
    }


def final_status_event(item: Mapping[str, Any]) -> dict[str, Any]:
    """The ``final_status`` event the monitor stream yields for a finished item."""
    return {
        "event_type": "final_status",
        "status": item.get("status"),
        "item_id": item.get("item_id"),
        "batch_id": item.get("batch_id"),
        "error_type": item.get("error_type"),
        "error_message": item.get("error_message"),
        "error_traceback": item.get("error_traceback"),
        "queue_item": item,
    }


def canceled_count(item: Mapping[str, Any]) -> dict[str, Any]:
    """``cancel()``'s answer for one item after ``cancel_item`` (0 when it had finished)."""
    return {"canceled": int(item.get("status") == "canceled")}


class _HandleJob:
    """What the execution mixins need from the handle, and the handle's last submission.

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
