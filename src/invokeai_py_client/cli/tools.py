"""``ivk sheet`` (contact sheets of a run) and ``ivk serve`` (a local InvokeAI server)."""

from __future__ import annotations

# typer declares options as argument defaults:
# ruff: noqa: B008
import signal
import threading
from pathlib import Path

import typer

from ._common import STATE, CliError, emit, info, summary


def sheet(
    run_dir: Path = typer.Argument(..., help="The output directory of a run (ivk run --out)."),
    x: str | None = typer.Option(
        None, "--x", help="Input for the columns: index, label or node_id.field."
    ),
    y: str | None = typer.Option(
        None, "--y", help="Input for the rows: index, label or node_id.field."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="PNG to write (default DIR/sheet.png; pages: sheet-001.png...)."
    ),
    cell: int | None = typer.Option(None, "--cell", min=32, help="Cell size in pixels."),
    max_cols: int = typer.Option(12, "--max-cols", min=1, help="Columns per page."),
    max_rows: int = typer.Option(12, "--max-rows", min=1, help="Rows per page."),
    json_out: bool = typer.Option(False, "--json", help="One JSON line per sheet, then a summary."),
) -> None:
    """Make a contact sheet PNG of a run (XY grid of two swept inputs, else labelled grid).

    Large runs are paged into several sheets.
    """
    from ..sheet import make_contact_sheets

    STATE.json_mode = json_out
    if not run_dir.is_dir():
        raise CliError(f"no such run directory: {run_dir}")
    pages = make_contact_sheets(
        run_dir, x=x, y=y, out=out, cell=cell, max_cols=max_cols, max_rows=max_rows
    )
    for page in pages:
        if json_out:
            emit({"type": "sheet", **page.to_json()})
        else:
            what = (
                f"{page.rows} x {page.cols} grid: rows {page.y_axis}, columns {page.x_axis}"
                if page.kind == "xy"
                else f"{page.images} images"
            )
            info(f"[bold]sheet[/] {page.path}  ({what})")
    summary(True, sheets=[str(p.path) for p in pages], out_dir=str(run_dir))


def serve(
    root: Path = typer.Option(
        Path("out/.invokeai-root"), "--root", help="InvokeAI root directory (created if missing)."
    ),
    port: int | None = typer.Option(None, "--port", help="Port (default: a free one)."),
    fast: bool = typer.Option(
        False, "--fast", help="Freeze the app out of the per-item gc.collect() (much faster)."
    ),
) -> None:
    """Run a local InvokeAI server (LocalServer) in the foreground until Ctrl-C."""
    from ..local_server import LocalServer

    info(f"starting InvokeAI (root {root}) ...")
    stop = threading.Event()
    # a fresh log per start (LocalServer reads the port from it; an old one names an old port)
    (root / "invokeai-web.log").unlink(missing_ok=True)
    server = LocalServer(root, port=port, fast=fast)
    server.start()
    try:
        info(f"[bold green]InvokeAI running at {server.url}[/]  (log: {server.log_path})")
        info(f"use it with: export INVOKEAI_URL={server.url}   -- Ctrl-C to stop")
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.wait(0.5):
            if not server.is_running():
                raise CliError(
                    f"the server exited; log tail:\n{server.log_tail(10)}",
                    exit_code=1,
                    code="server_exited",
                )
    except KeyboardInterrupt:
        info("stopping ...")
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    """Add ``sheet`` and ``serve`` to the app."""
    app.command("sheet")(sheet)
    app.command("serve")(serve)
