"""Contender "ours": this repository's library, one sweep of N values, every image to disk.

Two paths, chosen by what the library offers when the script runs (``result["mode"]``):

* ``batchrun`` -- the contender: ``invokeai_py_client.run.BatchRun`` (issue 5) with a
  ``Sweep().axis(3, radii)``, writing ``images/`` + manifest + ledger under ``--out``.
  Completion-notice latency is measured by wrapping the engine's internal ``_on_status``
  (measurement only; see bench/README.md).
* ``low-level`` -- fallback while ``BatchRun`` is absent: the library's own transport,
  queue, events and images. One ``client.queue.enqueue_batch`` for the whole sweep; a
  ``client.events`` subscription whose save-node ``invocation_complete`` starts the download
  at once (4 threads); ``client.events.iter_finished`` to learn of each completion;
  ``client.images.download_image``. The payload comes from ``wf.build_payload(data=...)``
  when the library has it, else from the server-limit contender's hand-built graph.

If neither works the script prints ``{"pending": true, ...}`` and exits with status 3, and
compare.py reports the contender as pending instead of failing the whole benchmark.
"""

from __future__ import annotations

import sys
import threading
import traceback
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import (
    BLUR_NODE_ID,
    RADIUS_INDEX,
    SAVE_NODE_ID,
    count_pngs,
    emit,
    now,
    parse_args,
    parse_server_ts,
    radius_values,
)

DOWNLOAD_THREADS = 4
#: how the run is followed, for the notes ("events"; ``ours_poll.py``, a prototype, "poll")
FOLLOW = "events"


class Outcome:
    """What a path reports back; times are epoch seconds (:func:`_common.now`)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.first_image_at: float | None = None
        self.latencies_ms: list[float] = []
        self.errors: list[str] = []
        self.notes: list[str] = []


def run_batchrun(url: str, workflow: Path, values: list[int], out: Path) -> Outcome:
    """The library's batch run (issue 5): ``BatchRun(client, wf, Sweep().axis(...), out)``."""
    from invokeai_py_client import InvokeAIClient
    from invokeai_py_client.run import BatchRun, Progress
    from invokeai_py_client.sweep import Sweep

    outcome = Outcome("batchrun")
    _hook_completion_notice(outcome)
    client = InvokeAIClient.from_url(url)
    wf = client.workflow_repo.create_workflow_from_file(workflow)

    def on_progress(progress: Progress) -> None:
        if progress.images and outcome.first_image_at is None:
            outcome.first_image_at = now()

    run = BatchRun(client, wf, Sweep().axis(RADIUS_INDEX, values), out, on_progress=on_progress)
    result = run.run()
    engine = getattr(run, "_engine", None)
    stats = getattr(getattr(engine, "fetcher", None), "stats", None)
    if stats:
        outcome.notes.append(f"follow={FOLLOW} downloads {stats}")
    if not result.ok:
        outcome.errors.append(
            f"completed {result.completed}/{result.total}, failed {result.failed}, "
            f"canceled {result.canceled}, images {result.images}"
        )
    client.close()
    return outcome


def _hook_completion_notice(outcome: Outcome) -> None:
    """Measurement only: note when the run's engine first learns that an item completed.

    Wraps the internal ``Engine._on_status`` (called from the event handler, or from a
    reconciliation poll) without changing what it does. If the internals moved, the latency
    is reported as missing instead of failing the run.
    """
    try:
        from invokeai_py_client.run import _engine
    except ImportError:
        outcome.notes.append("notice latency: no hook (run._engine not found)")
        return
    original = getattr(_engine.Engine, "_on_status", None)
    if original is None:
        outcome.notes.append("notice latency: no hook (Engine._on_status not found)")
        return
    seen: set[int] = set()

    def on_status(self: Any, row: Any, data: Any, *, from_event: bool) -> None:
        if row.status == "completed" and row.item_id not in seen:
            seen.add(row.item_id)
            completed_at = parse_server_ts(getattr(row, "completed_at", None))
            if completed_at is not None:
                outcome.latencies_ms.append((now() - completed_at) * 1000.0)
        original(self, row, data, from_event=from_event)

    _engine.Engine._on_status = on_status  # type: ignore[method-assign]


def _payload(url: str, workflow: Path, values: list[int], batch_id: str, outcome: Outcome) -> Any:
    """The sweep as one batch: from the library's workflow handle when it can, else by hand."""
    items = [float(v) for v in values]
    datum = [{"node_path": BLUR_NODE_ID, "field_name": "radius", "items": items}]
    try:
        from invokeai_py_client import InvokeAIClient
        from invokeai_py_client.workflow import WorkflowDefinition

        client = InvokeAIClient.from_url(url)
        wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file(workflow))
        body = wf.build_payload(data=[datum])
        body = dict(body)
        body.setdefault("batch", {})["batch_id"] = batch_id
        outcome.notes.append("payload from wf.build_payload")
        return body
    except Exception as exc:  # the workflow layer is not there yet
        from server_limit import build_batch

        outcome.notes.append(f"payload hand-built ({type(exc).__name__}: {exc})"[:200])
        return build_batch(len(values), batch_id)


def run_low_level(url: str, workflow: Path, values: list[int], out: Path) -> Outcome:
    from invokeai_py_client import InvokeAIClient

    outcome = Outcome("low-level")
    batch_id = f"bench-ours-{uuid.uuid4()}"
    body = _payload(url, workflow, values, batch_id, outcome)
    client = InvokeAIClient.from_url(url)
    pool = ThreadPoolExecutor(DOWNLOAD_THREADS)
    lock = threading.Lock()
    downloads: dict[int, Future[None]] = {}

    def download(item_id: int, name: str) -> None:
        data = client.images.download_image(name, full_resolution=True)
        (out / f"{item_id:06d}_{name}").write_bytes(data)
        with lock:
            if outcome.first_image_at is None:
                outcome.first_image_at = now()

    def want(item_id: int, name: str) -> None:
        with lock:
            if item_id not in downloads:
                downloads[item_id] = pool.submit(download, item_id, name)

    def on_event(evt: dict[str, Any]) -> None:  # runs in the events thread: stay short
        if evt.get("event_type") != "invocation_complete":
            return
        if evt.get("invocation_source_id") != SAVE_NODE_ID:
            return
        image = (evt.get("result") or {}).get("image") or {}
        if image.get("image_name"):
            want(int(evt["item_id"]), image["image_name"])

    try:
        sub = client.events.subscribe(batch_ids=[batch_id], callback=on_event)
        client.events.wait_connected(timeout=10.0)
        result = client.queue.enqueue_batch(body)
        item_ids = [int(i) for i in result["item_ids"]]
        for row in client.events.iter_finished(item_ids, timeout=3600):
            t_known = now()
            completed_at = parse_server_ts(row.get("completed_at"))
            if row.get("status") == "completed" and completed_at is not None:
                outcome.latencies_ms.append((t_known - completed_at) * 1000.0)
            elif row.get("status") != "completed":
                outcome.errors.append(f"item {row.get('item_id')}: {row.get('status')}")
        sub.close()
        # Reconcile: the queue item is the authority for anything an event did not announce.
        missing = [i for i in item_ids if i not in downloads]
        if missing:
            outcome.notes.append(f"{len(missing)} image(s) found by reconciliation")
            for item in client.queue.items_by_ids(missing):
                session = item.get("session") or {}
                mapping = session.get("prepared_source_mapping") or {}
                for prepared, res in (session.get("results") or {}).items():
                    name = ((res or {}).get("image") or {}).get("image_name")
                    if name and mapping.get(prepared) == SAVE_NODE_ID:
                        want(int(item["item_id"]), name)
        with lock:
            futures = list(downloads.values())
        for fut in futures:
            try:
                fut.result()
            except Exception as exc:
                outcome.errors.append(f"download: {type(exc).__name__}: {exc}"[:300])
    finally:
        pool.shutdown()
        client.close()
    return outcome


def main() -> None:
    args = parse_args(__doc__ or "")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    values = radius_values(args.n)
    t0 = now()
    try:
        from invokeai_py_client.run import BatchRun  # noqa: F401

        runner = run_batchrun
    except ImportError:
        runner = run_low_level
    try:
        outcome = runner(args.url, args.workflow, values, out)
    except Exception as exc:
        emit(
            {
                "contender": "ours",
                "pending": True,
                "n": args.n,
                "errors": [f"{runner.__name__}: {type(exc).__name__}: {exc}"[:500]],
                "traceback": traceback.format_exc()[-2000:],
            }
        )
        sys.exit(3)
    wall_s = now() - t0
    emit(
        {
            "contender": "ours",
            "mode": outcome.mode,
            "n": args.n,
            "wall_s": wall_s,
            "first_image_s": (outcome.first_image_at - t0) if outcome.first_image_at else None,
            "images_on_disk": count_pngs(out) + count_pngs(out / "images"),
            "notice_latencies_ms": outcome.latencies_ms,
            "notes": outcome.notes,
            "errors": outcome.errors[:20],
        }
    )


if __name__ == "__main__":
    main()
