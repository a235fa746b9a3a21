"""``ivk run`` (a workflow, a sweep, a batch run), ``ivk resume``, ``ivk status``, ``ivk cancel``.

Everything the user typed is checked before anything is sent (exit 2). A run is a
:class:`~invokeai_py_client.run.BatchRun` writing into ``--out``: images, ``manifest.jsonl``
/ ``.csv``, ``run.json`` and the ledger that makes ``ivk resume`` possible.
"""

from __future__ import annotations

# typer declares options as argument defaults:
# ruff: noqa: B008
import json
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    STATE,
    CliError,
    connected,
    emit,
    info,
    server_urls,
    stdout,
    summary,
)
from .inputs import explicit_server, load_workflow
from .plan import RunSpec, build_sweep, plan_summary

if TYPE_CHECKING:
    from ..client import InvokeAIClient
    from ..sweep import SweepPlan
    from ..workflow import WorkflowHandle


def default_out_dir(workflow: Path) -> Path:
    """``out/<workflow stem>-<YYYYmmdd-HHMMSS>`` (a new directory per run)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", workflow.stem).strip("-") or "run"
    return Path("out") / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _board_inputs(handle: WorkflowHandle) -> list[int]:
    return [i.input_index for i in handle.list_inputs() if i.field_name == "board"]


def _print_plan(plan: SweepPlan, out_dir: Path, servers: list[str], board: str | None) -> None:
    s = plan_summary(plan)
    info(f"[bold]{s['count']} run(s)[/] = {s['combinations']} combination(s) x {s['runs']} run(s)")
    for a in s["axes"]:
        vals = ", ".join(a["values"][:12]) + (" ..." if len(a["values"]) > 12 else "")
        where = f"[{a['index']}] " if a["index"] is not None else ""
        zipped = " (zipped)" if a["zipped"] else ""
        info(f"  {where}{a['name']}{zipped}: {len(a['values'])} values: {vals}")
    info(
        f"  output: {out_dir}   server(s): {', '.join(servers)}"
        + (f"   board: {board}" if board else "")
    )


def run(
    workflow: Path = typer.Argument(..., help="Workflow JSON exported from the InvokeAI GUI."),
    set_: list[str] = typer.Option(
        [], "--set", help="KEY=VALUE: set an input (KEY: index, label or node_id.field)."
    ),
    sweep: list[str] = typer.Option(
        [], "--sweep", help="KEY=V1,V2,... | KEY=@file (one per line) | KEY=START:STOP:STEP."
    ),
    zip_: list[str] = typer.Option([], "--zip", help="KEY,KEY: swept inputs that move together."),
    runs: int = typer.Option(1, "--runs", help="Repeat the whole set N times."),
    seeds: str | None = typer.Option(
        None, "--seeds", help="N random seeds into the seed input (or KEY=N to name it)."
    ),
    images: list[str] = typer.Option(
        [], "--images", help="KEY=GLOB: sweep local image files (uploaded once each)."
    ),
    board: str | None = typer.Option(
        None, "--board", help="Save the images to this board (created if missing)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output directory (default out/<workflow>-<time>)."
    ),
    server: list[str] = typer.Option(
        [], "--server", help="Server URL; repeat to share the run between servers."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan and the exact payload; send nothing."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="JSON lines: plan, progress, items, summary."
    ),
    detach: bool = typer.Option(
        False, "--detach", help="Submit and exit; finish later with `ivk resume DIR`."
    ),
) -> None:
    """Run a workflow once, or a sweep of it, and download every image with a manifest."""
    STATE.json_mode = json_out
    spec = RunSpec(sets=set_, sweeps=sweep, zips=zip_, runs=runs, seeds=seeds, images=images)
    servers = server_urls(server)
    out_dir = out if out is not None else default_out_dir(workflow)
    if not dry_run and (out_dir / "ledger.sqlite").exists():
        raise CliError(
            f"{out_dir} already holds a run; resume it (ivk resume {out_dir}) or pick a new --out"
        )

    if dry_run:
        url = explicit_server(server)
        if url is None:
            handle = load_workflow(workflow)
            _dry_run(handle, spec, out_dir, servers, board)
            return
        with connected(url) as client:
            handle = load_workflow(workflow, client)
            _dry_run(handle, spec, out_dir, servers, board, client)
        return

    # checked offline first, so a user mistake never waits for (or touches) a server
    build_sweep(load_workflow(workflow), spec)
    with connected(servers[0]) as client:
        handle = load_workflow(workflow, client)
        if board is not None:
            board_id = client.board_repo.get_or_create_board(board).board_id
            for idx in _board_inputs(handle):
                handle.set(idx, board_id)
        sweep_obj, plan = build_sweep(handle, spec)
        if json_out:
            emit(
                {"type": "plan", **plan_summary(plan), "out_dir": str(out_dir), "servers": servers}
            )
        else:
            _print_plan(plan, out_dir, servers, board)
        from ._execute import execute_run

        execute_run(
            client, handle, sweep_obj, plan, out_dir, servers, detach=detach, json_mode=json_out
        )


def _dry_run(
    handle: WorkflowHandle,
    spec: RunSpec,
    out_dir: Path,
    servers: list[str],
    board: str | None,
    client: InvokeAIClient | None = None,
) -> None:
    board_note = None
    if board is not None:
        found = None
        if client is not None:
            hits = client.board_repo.find_boards_by_name(board)
            found = hits[0].board_id if hits else None
        board_id = found or f"<board {board!r}, created at run time>"
        board_note = board_id
        for idx in _board_inputs(handle):
            handle.set(idx, board_id)
    _sweep, plan = build_sweep(handle, spec)
    payload = plan.payload(batch_id="<chosen at run time>")
    if STATE.json_mode:
        emit({"type": "plan", **plan_summary(plan), "out_dir": str(out_dir), "servers": servers})
        emit({"type": "payload", "payload": payload})
        summary(True, dry_run=True, count=plan.count, out_dir=str(out_dir), board=board_note)
        return
    _print_plan(plan, out_dir, servers, board)
    info("[bold]payload[/] (POST /api/v1/queue/default/enqueue_batch):")
    stdout.print_json(json.dumps(payload, default=str))
    info(f"[dim]dry run: nothing was sent ({plan.count} run(s) would be enqueued)[/]")


def resume(
    run_dir: Path = typer.Argument(..., help="The output directory of a run."),
    server: list[str] = typer.Option(
        [], "--server", help="Server URL(s) to use instead of the ones the run used."
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Also retry items the server failed."
    ),
    json_out: bool = typer.Option(False, "--json", help="JSON lines output."),
) -> None:
    """Finish a run that was interrupted, detached or killed: nothing lost, nothing twice."""
    STATE.json_mode = json_out
    _require_run_dir(run_dir)
    from ._execute import resume_run

    resume_run(run_dir, server or None, retry_failed=retry_failed, json_mode=json_out)


def _require_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise CliError(f"no such run directory: {run_dir}", code="file_not_found")
    if not (run_dir / "ledger.sqlite").is_file():
        raise CliError(
            f"{run_dir} is not a run directory (no ledger.sqlite); give the --out of an ivk run",
            code="file_not_found",
        )


def _ledger_state(run_dir: Path) -> dict[str, Any]:
    from ..run.ledger import Ledger

    ledger = Ledger.open(run_dir)
    try:
        items = ledger.items(include_superseded=False)
        counts: dict[str, int] = {}
        for it in items:
            counts[it.status] = counts.get(it.status, 0) + 1
        batches = ledger.batches()
        planned = ledger.get_meta("count")
        if planned is None:
            plan = ledger.get_meta("plan") or {}
            planned = plan.get("count") if isinstance(plan, dict) else None
        return {
            "planned": planned,
            "items": len(items),
            "counts": counts,
            "files": len(ledger.files()),
            "batch_ids": [b.batch_id for b in batches if b.state != "absent"],
            "server": ledger.get_meta("server") or ledger.get_meta("servers"),
            "run_id": ledger.get_meta("run_id"),
        }
    finally:
        ledger.close()


def _run_servers(state: dict[str, Any], given: list[str] | None) -> list[str]:
    if given:
        return given
    s = state.get("server")
    if isinstance(s, list):
        return [str(x) for x in s]
    if isinstance(s, str) and s:
        return [s]
    return server_urls(None)


def status(
    run_dir: Path = typer.Argument(..., help="The output directory of a run."),
    server: list[str] = typer.Option([], "--server", help="Ask this server instead."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines output."),
) -> None:
    """Where a run stands: the ledger's counts, and the server's for the run's batches."""
    STATE.json_mode = json_out
    _require_run_dir(run_dir)
    state = _ledger_state(run_dir)
    server_counts: dict[str, int] = {}
    reachable: list[str] = []
    for url in _run_servers(state, server or None):
        try:
            with connected(url) as client:
                for bid in state["batch_ids"]:
                    st = client.queue.batch_status(bid)
                    for k in ("pending", "in_progress", "completed", "failed", "canceled"):
                        server_counts[k] = server_counts.get(k, 0) + int(st.get(k, 0) or 0)
                reachable.append(url)
        except CliError:
            continue
    if json_out:
        emit({"type": "status", **state, "server_counts": server_counts, "reachable": reachable})
        summary(
            True, out_dir=str(run_dir), **{"planned": state["planned"], "files": state["files"]}
        )
        return
    c = state["counts"]
    info(f"[bold]{run_dir}[/]: {state['planned']} planned, {state['items']} on the server")
    info(
        "  ledger: "
        + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
        + f"; files {state['files']}"
    )
    if reachable:
        info("  server: " + ", ".join(f"{k} {v}" for k, v in server_counts.items()))
    else:
        info("  server: unreachable")


def cancel(
    run_dir: Path = typer.Argument(..., help="The output directory of a run."),
    server: list[str] = typer.Option([], "--server", help="Cancel on this server instead."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines output."),
) -> None:
    """Cancel a run's pending and running items on the server (the directory is kept)."""
    STATE.json_mode = json_out
    _require_run_dir(run_dir)
    state = _ledger_state(run_dir)
    canceled = 0
    errors: list[str] = []
    for url in _run_servers(state, server or None):
        try:
            with connected(url) as client:
                if state["batch_ids"]:
                    res = client.queue.cancel_by_batch_ids(state["batch_ids"])
                    canceled += int(res.get("canceled", 0) or 0)
        except CliError as exc:
            errors.append(exc.message)
    if errors and not canceled:
        raise CliError(errors[0], exit_code=EXIT_FAILED, code="connection_error")
    info(f"canceled {canceled} item(s) of {run_dir}; `ivk resume {run_dir}` starts it again")
    summary(True, canceled=canceled, out_dir=str(run_dir))


def register(app: typer.Typer) -> None:
    """Add ``run``, ``resume``, ``status`` and ``cancel``."""
    app.command("run")(run)
    app.command("resume")(resume)
    app.command("status")(status)
    app.command("cancel")(cancel)


__all__ = ["EXIT_INTERRUPTED", "register"]
