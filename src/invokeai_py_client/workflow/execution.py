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

The mixin is assembled from ``_submit.py`` (submit / wait / stream), ``_attach.py`` (attach /
cancel) and ``_downloads.py`` (outputs / downloads) over the sans-I/O core in ``_job.py``.
"""

from __future__ import annotations

from invokeai_py_client.workflow._attach import _AttachMixin
from invokeai_py_client.workflow._downloads import _OutputsMixin
from invokeai_py_client.workflow._submit import _SubmitMixin

__all__ = ["WorkflowExecutionMixin"]


class WorkflowExecutionMixin(_SubmitMixin, _AttachMixin, _OutputsMixin):
    """Execution API of :class:`~invokeai_py_client.workflow.handle.WorkflowHandle`.

    The handle provides ``definition``, ``client``, ``schema``, ``list_inputs()``,
    ``validate_inputs()``, ``build_payload(...)`` and ``output_nodes()``.
    """
