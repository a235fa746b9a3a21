"""Executing a planned run with :class:`~invokeai_py_client.run.BatchRun`, and resuming one.

Exit codes: 0 when every run completed and every image is on disk (or, with ``--detach``,
when everything was submitted); 1 when items failed or were canceled by someone else; 130
after Ctrl-C (the run's items are canceled on the server unless ``--detach``, and the
manifest is written for what finished).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ._common import EXIT_FAILED, EXIT_INTERRUPTED, STATE, emit, info, make_client, summary
from .progress import ProgressView

if TYPE_CHECKING:
    from ..client import InvokeAIClient
    from ..run import Progress, RunResult
    from ..sweep import Sweep, SweepPlan
    from ..workflow import WorkflowHandle

#: fields of a manifest row shown in ``--json`` item lines
ITEM_FIELDS = (
    "run_index",
    "item_id",
    "status",
    "params",
    "node_id",
    "image_name",
    "path",
    "error_type",
    "error_message",
)


def _on_progress(view: ProgressView) -> Callable[[Progress], None]:
    def callback(p: Progress) -> None:
        view.set_counts(
            total=p.total, done=p.done, failed=p.failed, canceled=p.canceled, images=p.images
        )
        if p.last is not None:
            view.item({k: p.last.get(k) for k in ITEM_FIELDS if k in p.last})

    return callback


def _node_events(
    client: InvokeAIClient, view: ProgressView, destination: str, labels: Mapping[str, str]
) -> Any:
    """Subscribe to node start/progress events of the run (for the 'current node' line)."""

    def on_event(evt: dict[str, Any]) -> None:
        kind = evt.get("event_type")
        if kind not in ("invocation_started", "invocation_progress"):
            return
        if evt.get("destination") != destination:
            return
        source = str(evt.get("invocation_source_id") or "")
        inv = evt.get("invocation") or {}
        name = labels.get(source) or str(inv.get("type") or source or "?")
        pct = evt.get("percentage", evt.get("progress"))
        view.node_progress(evt.get("item_id"), name, float(pct) if pct is not None else None)

    try:
        return client.events.subscribe(all_events=True, callback=on_event)
    except Exception:  # progress detail only: a run must not fail because of it
        return None


def _node_labels(handle: WorkflowHandle) -> dict[str, str]:
    return {nid: (n.label or n.type) for nid, n in handle.definition.nodes.items()}


def _finish(result: RunResult | None, out_dir: Path, *, detached: bool = False) -> None:
    """Print where things are; emit the summary; exit 1 when the run did not fully succeed."""
    if result is None:
        return
    fields: dict[str, Any] = {
        "out_dir": str(out_dir),
        "manifest": str(result.manifest),
        "total": result.total,
        "completed": result.completed,
        "failed": result.failed,
        "canceled": result.canceled,
        "remaining": result.remaining,
        "images": result.images,
    }
    if detached:
        info(
            f"[bold]detached[/]: {result.total} run(s) submitted; finish with: ivk resume {out_dir}"
        )
        summary(True, detached=True, **fields)
        return
    info(
        f"[bold]{result.completed}/{result.total} completed[/], {result.failed} failed, "
        f"{result.canceled} canceled, {result.images} image(s)"
    )
    info(f"images:   {out_dir / 'images'}")
    info(f"manifest: {result.manifest}  (and manifest.csv, run.json)")
    if result.ok:
        info(f"contact sheet: ivk sheet {out_dir}")
        summary(True, **fields)
        return
    if result.remaining and not result.failed:
        info(f"unfinished runs remain: ivk resume {out_dir}")
    elif result.failed:
        info(f"retry the failed runs: ivk resume --retry-failed {out_dir}")
    summary(False, error_code="items_failed" if result.failed else "incomplete", **fields)
    raise typer.Exit(EXIT_FAILED)


def _interrupted(out_dir: Path) -> None:
    counts: dict[str, Any] = {}
    run_json = out_dir / "run.json"
    if run_json.is_file():
        try:
            counts = dict(json.loads(run_json.read_text(encoding="utf-8")).get("counts") or {})
        except (OSError, json.JSONDecodeError):
            counts = {}
    if STATE.json_mode:
        emit({"type": "error", "error_code": "interrupted", "message": "interrupted by Ctrl-C"})
        summary(False, error_code="interrupted", out_dir=str(out_dir), counts=counts)
    else:
        info(
            f"[yellow]interrupted[/]: the run's items were canceled; what finished is in {out_dir}"
        )
        info(f"finish it later with: ivk resume {out_dir}")
    raise typer.Exit(EXIT_INTERRUPTED)


def execute_run(
    client: InvokeAIClient,
    handle: WorkflowHandle,
    sweep: Sweep,
    plan: SweepPlan,
    out_dir: Path,
    servers: list[str],
    *,
    detach: bool,
    json_mode: bool,
) -> None:
    """Run the plan with BatchRun, showing progress; exits 0, 1 or 130 (see module doc)."""
    from ..run import BatchRun

    clients: list[InvokeAIClient] = [client] + [make_client(u) for u in servers[1:]]
    view = ProgressView(plan.count, json_mode=json_mode, title=out_dir.name)
    batch = BatchRun(
        clients if len(clients) > 1 else client,
        handle,
        sweep,
        out_dir,
        on_progress=_on_progress(view),
    )
    sub = None if detach else _node_events(client, view, batch.destination, _node_labels(handle))
    result: RunResult | None = None
    try:
        with view:
            # detached: every run is sent and left queued; ``ivk resume DIR`` follows them
            result = batch.submit() if detach else batch.run()
    except KeyboardInterrupt:
        _interrupted(out_dir)
    finally:
        if sub is not None:
            sub.close()
        for c in clients[1:]:
            c.close()
    _finish(result, out_dir, detached=detach)


def resume_run(
    run_dir: Path,
    servers: list[str] | None,
    *,
    retry_failed: bool,
    json_mode: bool,
) -> None:
    """Finish an interrupted / detached / killed run; exits like :func:`execute_run`."""
    from ..run import Ledger, resume

    ledger = Ledger.open(run_dir)
    try:
        url = servers[0] if servers else str(ledger.get_meta("server") or "")
        plan = ledger.get_meta("plan") or {}
        total = int(plan.get("count") or 0) if isinstance(plan, dict) else 0
        destination = str(ledger.get_meta("destination") or "")
        # canceled runs (Ctrl-C, ivk cancel, a server restart): resume retries them itself
        requeued = sum(1 for r in ledger.items(include_superseded=False) if r.status == "canceled")
    finally:
        ledger.close()
    from ._common import connected

    with connected(url) as client:
        view = ProgressView(total, json_mode=json_mode, title=f"resume {run_dir.name}")
        if json_mode:
            emit({"type": "plan", "count": total, "out_dir": str(run_dir), "servers": [url]})
        else:
            info(f"resuming {run_dir} on {client.server_url} ({total} run(s) planned)")
            if requeued:
                info(f"re-running {requeued} canceled run(s)")
        sub = _node_events(client, view, destination, {})
        result: RunResult | None = None
        try:
            with view:
                result = resume(
                    run_dir,
                    retry_failed=retry_failed,
                    client=client,
                    on_progress=_on_progress(view),
                )
        except KeyboardInterrupt:
            _interrupted(run_dir)
        finally:
            if sub is not None:
                sub.close()
    _finish(result, run_dir)
