"""The session queue: enqueue batches, read items, cancel, retry (sync and asyncio).

Everything lives under ``/api/v1/queue/{queue_id}/``; results are plain ``dict`` objects as
the server sends them (a queue item supports ``item.get("status")``).

Rules this module keeps:

- ``enqueue_batch`` is never retried. The body always carries a client-chosen ``batch_id``;
  when the POST fails without a usable answer (connection reset, timeout) the server is asked
  about that batch (``GET b/{batch_id}/status``) before anything is raised, so a caller never
  enqueues the same work twice nor believes work was lost when it was not.
- ``enqueued < requested`` (the queue was full) raises :class:`EnqueueError` unless the caller
  says it handles partial enqueues (``allow_partial=True``).
- Reads that go through POST (``items_by_ids``, ``item_summaries``) are marked retryable.
- ``item_summaries`` is the cheap status read used for polling: it carries status and
  timestamps but not the session graph.

Example::

    q = client.queue
    result = q.enqueue_batch({"prepend": False, "batch": {"graph": graph, "runs": 1}})
    print(q.batch_status(result["batch"]["batch_id"]))
    item = q.get_item(result["item_ids"][0])
    print(item["status"])
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .exceptions import EnqueueError, NotFoundError, TransportError

if TYPE_CHECKING:
    from .client import InvokeAIClient

__all__ = [
    "ACTIVE_STATUSES",
    "MAX_IDS_PER_REQUEST",
    "TERMINAL_STATUSES",
    "QueueClient",
    "is_terminal",
]

#: A queue item in one of these states will not change any more.
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "canceled"})
#: States of an item that is still queued or running.
ACTIVE_STATUSES: frozenset[str] = frozenset({"pending", "in_progress", "waiting"})
#: The server's cap on ids per ``items_by_ids`` / ``item_summaries_by_ids`` request.
MAX_IDS_PER_REQUEST = 1000


def is_terminal(status: object) -> bool:
    """True for ``completed``, ``failed`` and ``canceled``."""
    return status in TERMINAL_STATUSES


def _chunks(ids: Sequence[int], size: int = MAX_IDS_PER_REQUEST) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield [int(i) for i in ids[start : start + size]]


def prepare_enqueue_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``body`` whose batch carries a ``batch_id`` (a new uuid4 if none).

    The caller's mapping is not modified. Raises :class:`EnqueueError` when there is no
    ``batch`` object.
    """
    batch = body.get("batch")
    if not isinstance(batch, Mapping):
        raise EnqueueError("enqueue body has no 'batch' object: {'prepend': ..., 'batch': {...}}")
    new_batch = dict(batch)
    if not new_batch.get("batch_id"):
        new_batch["batch_id"] = str(uuid.uuid4())
    out = dict(body)
    out["batch"] = new_batch
    out.setdefault("prepend", False)
    return out


def check_enqueue_result(result: Mapping[str, Any], *, allow_partial: bool) -> None:
    """Raise :class:`EnqueueError` when the server took fewer items than requested."""
    enqueued = int(result.get("enqueued", 0))
    requested = int(result.get("requested", enqueued))
    if enqueued < requested and not allow_partial:
        batch = result.get("batch") or {}
        raise EnqueueError(
            f"the server enqueued {enqueued} of {requested} items for batch "
            f"{batch.get('batch_id')!r} (its queue is full); wait for room and enqueue the "
            "rest, or pass allow_partial=True to handle partial enqueues yourself"
        )


def _recovered_result(
    queue_id: str, prepared: Mapping[str, Any], total: int, item_ids: list[int]
) -> dict[str, Any]:
    """The enqueue result rebuilt from the server's view of a batch after a lost answer."""
    return {
        "queue_id": queue_id,
        "enqueued": total,
        "requested": total,
        "batch": copy.deepcopy(dict(prepared["batch"])),
        "priority": 1 if prepared.get("prepend") else 0,
        "item_ids": item_ids,
        "recovered": True,
    }


class QueueClient:
    """Queue endpoints of one client (``client.queue``).

    Args:
        client: the :class:`~invokeai_py_client.client.InvokeAIClient`.
        queue_id: InvokeAI's queue id; always ``"default"`` on current servers.

    Example::

        status = client.queue.queue_status()
        print(status["queue"]["pending"], "pending")
    """

    def __init__(self, client: InvokeAIClient, queue_id: str = "default") -> None:
        self._client = client
        self.queue_id = queue_id

    def _path(self, tail: str) -> str:
        return f"/api/v1/queue/{self.queue_id}/{tail}"

    # ------------------------------------------------------------------ enqueue

    def enqueue_batch(
        self, body: Mapping[str, Any], *, allow_partial: bool = False
    ) -> dict[str, Any]:
        """POST ``enqueue_batch`` once and return the server's result.

        ``body`` is ``{"prepend": bool, "batch": {...}}``; a ``batch_id`` is added when
        missing. The request is never retried: on a transport failure the batch's status is
        read back, and when the server holds items of that batch a result with
        ``"recovered": True`` is returned (``item_ids`` found by scanning the newest queue
        items). When it holds none, the original error is raised: nothing was enqueued.

        Raises:
            EnqueueError: fewer items enqueued than requested (unless ``allow_partial``).
            RequestValidationError: the server rejected the graph (422).
            TransportError: the server could not be reached and holds nothing of the batch.

        Example::

            res = client.queue.enqueue_batch({"batch": {"graph": g, "runs": 3}})
            assert res["enqueued"] == 3
        """
        prepared = prepare_enqueue_body(body)
        batch_id = str(prepared["batch"]["batch_id"])
        try:
            resp = self._client.http.request(
                "POST", self._path("enqueue_batch"), json=prepared, retry=False
            )
            result: dict[str, Any] = resp.json()
        except TransportError:
            recovered = self._recover_enqueue(batch_id, prepared)
            if recovered is None:
                raise
            result = recovered
        check_enqueue_result(result, allow_partial=allow_partial)
        return result

    def _recover_enqueue(self, batch_id: str, prepared: Mapping[str, Any]) -> dict[str, Any] | None:
        try:
            status = self.batch_status(batch_id)
        except (TransportError, NotFoundError):
            return None
        total = int(status.get("total", 0))
        if total <= 0:
            return None
        found = self.find_batch_item_ids(batch_id, expected=total)
        return _recovered_result(self.queue_id, prepared, total, found)

    def find_batch_item_ids(self, batch_id: str, expected: int | None = None) -> list[int]:
        """Item ids of ``batch_id``, newest first, found by scanning recent queue items.

        The server has no "items of a batch" listing; this reads all queue item ids and then
        their light summaries, newest first, stopping once ``expected`` items were found.
        Use it to recover from an ambiguous enqueue or to re-attach to a batch.
        """
        ids = self._client.http.get_json(self._path("item_ids"), params={"order_dir": "DESC"})
        all_ids: list[int] = [int(i) for i in ids.get("item_ids", [])]
        found: list[int] = []
        for chunk in _chunks(all_ids):
            for summary in self.item_summaries(chunk):
                if summary.get("batch_id") == batch_id:
                    found.append(int(summary["item_id"]))
            if expected is not None and len(found) >= expected:
                break
        return found

    # ------------------------------------------------------------------ reads

    def get_item(self, item_id: int) -> dict[str, Any]:
        """The full queue item (status, errors, timestamps, session with results).

        It is large: poll :meth:`item_summaries` or :meth:`batch_status` instead.
        """
        result: dict[str, Any] = self._client.http.get_json(self._path(f"i/{int(item_id)}"))
        return result

    def items_by_ids(self, item_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Full queue items for ``item_ids`` in that order (1000 ids per request)."""
        return self._read_by_ids("items_by_ids", item_ids)

    def item_summaries(self, item_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Light summaries (``item_id``, ``status``, ``batch_id``, timestamps) for ``item_ids``.

        This is the cheap read used for polling; items the server no longer has are omitted.
        """
        return self._read_by_ids("item_summaries_by_ids", item_ids)

    def _read_by_ids(self, endpoint: str, item_ids: Sequence[int]) -> list[dict[str, Any]]:
        # a read through POST, so it is marked retryable; the server caps ids per request
        out: list[dict[str, Any]] = []
        for chunk in _chunks(list(item_ids)):
            resp = self._client.http.request(
                "POST", self._path(endpoint), json={"item_ids": chunk}, retry=True
            )
            out.extend(resp.json())
        return out

    def batch_status(self, batch_id: str) -> dict[str, Any]:
        """Counts of a batch's items by status (``pending`` ... ``canceled``, ``total``)."""
        result: dict[str, Any] = self._client.http.get_json(self._path(f"b/{batch_id}/status"))
        return result

    def queue_status(self) -> dict[str, Any]:
        """``{"queue": {counts, current item}, "processor": {...}}``."""
        result: dict[str, Any] = self._client.http.get_json(self._path("status"))
        return result

    # ------------------------------------------------------------------ changes

    def cancel_item(self, item_id: int) -> dict[str, Any]:
        """Cancel one item; returns the item as the server answers it."""
        resp = self._client.http.request("PUT", self._path(f"i/{int(item_id)}/cancel"))
        result: dict[str, Any] = resp.json()
        return result

    def cancel_by_batch_ids(self, batch_ids: Sequence[str]) -> dict[str, Any]:
        """Cancel every pending or running item of these batches (``{"canceled": n}``)."""
        resp = self._client.http.request(
            "PUT", self._path("cancel_by_batch_ids"), json={"batch_ids": list(batch_ids)}
        )
        result: dict[str, Any] = resp.json()
        return result

    def retry_items_by_id(self, item_ids: Sequence[int]) -> dict[str, Any]:
        """Re-queue failed or canceled items (``{"retried_item_ids": [...]}``)."""
        resp = self._client.http.request(
            "PUT", self._path("retry_items_by_id"), json=[int(i) for i in item_ids]
        )
        result: dict[str, Any] = resp.json()
        return result

    def prune(self) -> dict[str, Any]:
        """Delete finished items from the queue (``{"deleted": n}``)."""
        resp = self._client.http.request("PUT", self._path("prune"))
        result: dict[str, Any] = resp.json()
        return result

    # ------------------------------------------------------------------ asyncio twins

    async def aenqueue_batch(
        self, body: Mapping[str, Any], *, allow_partial: bool = False
    ) -> dict[str, Any]:
        """Asyncio twin of :meth:`enqueue_batch` (same single-shot and recovery rules)."""
        prepared = prepare_enqueue_body(body)
        batch_id = str(prepared["batch"]["batch_id"])
        http = self._client.async_http()
        try:
            resp = await http.request(
                "POST", self._path("enqueue_batch"), json=prepared, retry=False
            )
            result: dict[str, Any] = resp.json()
        except TransportError:
            recovered = await self._arecover_enqueue(batch_id, prepared)
            if recovered is None:
                raise
            result = recovered
        check_enqueue_result(result, allow_partial=allow_partial)
        return result

    async def _arecover_enqueue(
        self, batch_id: str, prepared: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        try:
            status = await self.abatch_status(batch_id)
        except (TransportError, NotFoundError):
            return None
        total = int(status.get("total", 0))
        if total <= 0:
            return None
        http = self._client.async_http()
        ids = await http.get_json(self._path("item_ids"), params={"order_dir": "DESC"})
        found: list[int] = []
        for chunk in _chunks([int(i) for i in ids.get("item_ids", [])]):
            for summary in await self.aitem_summaries(chunk):
                if summary.get("batch_id") == batch_id:
                    found.append(int(summary["item_id"]))
            if len(found) >= total:
                break
        return _recovered_result(self.queue_id, prepared, total, found)

    async def aget_item(self, item_id: int) -> dict[str, Any]:
        """Asyncio twin of :meth:`get_item`."""
        result: dict[str, Any] = await self._client.async_http().get_json(
            self._path(f"i/{int(item_id)}")
        )
        return result

    async def aitems_by_ids(self, item_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Asyncio twin of :meth:`items_by_ids`."""
        return await self._aread_by_ids("items_by_ids", item_ids)

    async def aitem_summaries(self, item_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Asyncio twin of :meth:`item_summaries`."""
        return await self._aread_by_ids("item_summaries_by_ids", item_ids)

    async def _aread_by_ids(self, endpoint: str, item_ids: Sequence[int]) -> list[dict[str, Any]]:
        http = self._client.async_http()
        out: list[dict[str, Any]] = []
        for chunk in _chunks(list(item_ids)):
            resp = await http.request(
                "POST", self._path(endpoint), json={"item_ids": chunk}, retry=True
            )
            out.extend(resp.json())
        return out

    async def abatch_status(self, batch_id: str) -> dict[str, Any]:
        """Asyncio twin of :meth:`batch_status`."""
        result: dict[str, Any] = await self._client.async_http().get_json(
            self._path(f"b/{batch_id}/status")
        )
        return result

    async def aqueue_status(self) -> dict[str, Any]:
        """Asyncio twin of :meth:`queue_status`."""
        result: dict[str, Any] = await self._client.async_http().get_json(self._path("status"))
        return result

    async def acancel_item(self, item_id: int) -> dict[str, Any]:
        """Asyncio twin of :meth:`cancel_item`."""
        resp = await self._client.async_http().request(
            "PUT", self._path(f"i/{int(item_id)}/cancel")
        )
        result: dict[str, Any] = resp.json()
        return result

    async def acancel_by_batch_ids(self, batch_ids: Sequence[str]) -> dict[str, Any]:
        """Asyncio twin of :meth:`cancel_by_batch_ids`."""
        resp = await self._client.async_http().request(
            "PUT", self._path("cancel_by_batch_ids"), json={"batch_ids": list(batch_ids)}
        )
        result: dict[str, Any] = resp.json()
        return result

    async def aretry_items_by_id(self, item_ids: Sequence[int]) -> dict[str, Any]:
        """Asyncio twin of :meth:`retry_items_by_id`."""
        resp = await self._client.async_http().request(
            "PUT", self._path("retry_items_by_id"), json=[int(i) for i in item_ids]
        )
        result: dict[str, Any] = resp.json()
        return result

    async def aprune(self) -> dict[str, Any]:
        """Asyncio twin of :meth:`prune`."""
        resp = await self._client.async_http().request("PUT", self._path("prune"))
        result: dict[str, Any] = resp.json()
        return result

    def __repr__(self) -> str:
        return f"QueueClient({self._client.server_url!r}, queue_id={self.queue_id!r})"
