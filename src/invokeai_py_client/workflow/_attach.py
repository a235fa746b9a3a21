"""Attach to existing queue items and cancel them (part of ``WorkflowExecutionMixin``)."""

from __future__ import annotations

from typing import Any

from invokeai_py_client.exceptions import JobError, WorkflowError
from invokeai_py_client.workflow._job import _Execution, _HandleJob, canceled_count


class _AttachMixin(_HandleJob):
    """``attach()``, ``cancel()`` and ``acancel()``."""

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
        if ex.all_finished:
            return {"canceled": 0}  # every item already ended
        if len(ex.item_ids) == 1:
            item = client.queue.cancel_item(ex.item_ids[0])  # a no-op on a finished item
            return canceled_count(item)
        return client.queue.cancel_by_batch_ids([ex.batch_id])

    async def acancel(self) -> dict[str, Any]:
        """Asyncio twin of :meth:`cancel`."""
        client = self._require_client()
        ex = self._require_execution("cancel")
        if ex.all_finished:
            return {"canceled": 0}
        if len(ex.item_ids) == 1:
            item = await client.queue.acancel_item(ex.item_ids[0])
            return canceled_count(item)
        return await client.queue.acancel_by_batch_ids([ex.batch_id])
