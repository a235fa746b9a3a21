"""``ivk inputs`` (the Form inputs of a workflow) and ``ivk index export|verify`` (drift)."""

from __future__ import annotations

# typer declares options as argument defaults:
# ruff: noqa: B008
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from ._common import EXIT_FAILED as EXIT_FAILED
from ._common import (
    STATE,
    CliError,
    emit,
    field_kind,
    info,
    make_client,
    server_urls,
    stdout,
    summary,
)

if TYPE_CHECKING:
    from ..client import InvokeAIClient
    from ..workflow import WorkflowHandle

SERVER_HELP = "InvokeAI server URL (default: INVOKEAI_URL, then http://127.0.0.1:9090)."


def load_workflow(path: Path, client: InvokeAIClient | None = None) -> WorkflowHandle:
    """Read a GUI-exported workflow file into a handle (the server's schema when connected,
    else the offline InvokeAI 6.14.2 snapshot)."""
    from ..workflow import WorkflowDefinition, WorkflowRepository

    if not path.exists():
        raise CliError(f"no such workflow file: {path}", code="file_not_found")
    if path.is_dir():
        raise CliError(f"{path} is a directory, not a workflow JSON file", code="file_not_found")
    definition = WorkflowDefinition.from_file(path)
    return WorkflowRepository(client).create_workflow(definition)


def explicit_server(given: list[str] | None) -> str | None:
    """The server to ask for node schemas when the user named one (--server / INVOKEAI_URL)."""
    if given or os.environ.get("INVOKEAI_URL", "").strip():
        return server_urls(given)[0]
    return None


def constraints(field_obj: Any) -> str:
    """Bounds or choices of a field, as a short text (``0..255``, ``box|gaussian``)."""
    parts: list[str] = []
    lo = getattr(field_obj, "minimum", None)
    hi = getattr(field_obj, "maximum", None)
    xlo = getattr(field_obj, "exclusive_minimum", None)
    xhi = getattr(field_obj, "exclusive_maximum", None)
    left = f"{lo:g}" if lo is not None else (f">{xlo:g}" if xlo is not None else None)
    right = f"{hi:g}" if hi is not None else (f"<{xhi:g}" if xhi is not None else None)
    if left is not None and right is not None:
        parts.append(f"{left}..{right}")
    elif left is not None:
        parts.append(left if left.startswith(">") else f">={left}")
    elif right is not None:
        parts.append(right if right.startswith("<") else f"<={right}")
    mult = getattr(field_obj, "multiple_of", None)
    if mult:
        parts.append(f"step {mult:g}")
    for attr in ("choices", "options"):
        vals = getattr(field_obj, attr, None)
        if vals and len(vals) <= 12:
            parts.append("|".join(str(v) for v in vals))
        elif vals:
            parts.append("|".join(str(v) for v in vals[:12]) + f"|... ({len(vals)})")
    for attr in ("allowed_bases", "allowed_types"):
        vals = getattr(field_obj, attr, None)
        if vals:
            parts.append(f"{attr.split('_')[1]}: " + ",".join(str(v) for v in vals))
    return "; ".join(parts)


def input_rows(handle: WorkflowHandle) -> list[dict[str, Any]]:
    """One JSON-ready dict per Form input."""
    from .._sheet_data import format_value

    rows = []
    for inp in handle.list_inputs():
        f = inp.field
        value = f.display_value()
        rows.append(
            {
                "index": inp.input_index,
                "label": inp.label,
                "node_id": inp.node_id,
                "node_name": inp.node_name,
                "node_type": inp.node_type,
                "field_name": inp.field_name,
                "field_type": field_kind(f),
                "field_class": type(f).__name__,
                "required": inp.required,
                "connected": inp.connected,
                "value": value,
                "value_text": "" if value is None else format_value(value),
                "constraints": constraints(f),
            }
        )
    return rows


def inputs(
    workflow: Path = typer.Argument(..., help="Workflow JSON exported from the InvokeAI GUI."),
    json_out: bool = typer.Option(False, "--json", help="One JSON line per input, then a summary."),
    server: str | None = typer.Option(
        None, "--server", help="Read node types from this server instead of the offline schema."
    ),
) -> None:
    """List the Form inputs of a workflow: index, label, node, field, type, value, bounds."""
    STATE.json_mode = json_out
    url = explicit_server([server] if server else None)
    client = make_client(url) if url else None
    try:
        handle = load_workflow(workflow, client)
        rows = input_rows(handle)
    finally:
        if client is not None:
            client.close()
    if json_out:
        for row in rows:
            emit({"type": "input", **row})
        summary(True, workflow=str(workflow), name=handle.definition.name, inputs=len(rows))
        return
    table = Table(title=f"{handle.definition.name or workflow.name}: {len(rows)} Form inputs")
    for col, kw in (
        ("#", {"justify": "right"}),
        ("label", {}),
        ("node", {}),
        ("field", {}),
        ("type", {}),
        ("value", {"overflow": "fold"}),
        ("bounds / choices", {"overflow": "fold"}),
    ):
        table.add_column(col, **kw)  # type: ignore[arg-type]
    for r in rows:
        label = r["label"] + (" *" if r["required"] and not r["value_text"] else "")
        table.add_row(
            str(r["index"]),
            label,
            r["node_name"] or r["node_id"],
            r["field_name"],
            r["field_type"],
            r["value_text"],
            r["constraints"],
        )
    stdout.print(table)
    info(
        "set one with --set KEY=VALUE, sweep with --sweep KEY=V1,V2 "
        "(KEY: the #, the label, or node_id.field)"
    )


index_app = typer.Typer(
    help="Save a workflow's input index map, and check later that indices did not drift.",
    no_args_is_help=True,
)


@index_app.command("export")
def index_export(
    workflow: Path = typer.Argument(..., help="Workflow JSON exported from the InvokeAI GUI."),
    file: Path = typer.Argument(..., help="Where to write the index map (JSON)."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines output."),
) -> None:
    """Write the index -> input map of WORKFLOW to FILE."""
    STATE.json_mode = json_out
    handle = load_workflow(workflow)
    path = handle.export_input_index_map(file)
    n = len(handle.list_inputs())
    info(f"wrote the index map of {n} inputs to {path}")
    summary(True, path=str(path), inputs=n)


@index_app.command("verify")
def index_verify(
    workflow: Path = typer.Argument(..., help="Workflow JSON exported from the InvokeAI GUI."),
    file: Path = typer.Argument(..., help="An index map written by `ivk index export`."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines output."),
) -> None:
    """Compare WORKFLOW's inputs with a saved map; exit 1 when inputs moved or vanished."""
    STATE.json_mode = json_out
    if not file.is_file():
        raise CliError(f"no such index map: {file}", code="file_not_found")
    handle = load_workflow(workflow)
    report = handle.verify_input_index_map(file)
    moved, missing, new = report["moved"], report["missing"], report["new"]
    ok = not moved and not missing
    if json_out:
        for kind in ("moved", "missing", "new"):
            for e in report[kind]:
                emit({"type": kind, **e})
        counts = {k: len(v) for k, v in report.items()}
        summary(ok, error_code=None if ok else "index_drift", counts=counts)
    else:
        for e in moved:
            info(f"[yellow]moved[/]   {e['label']!r}: index {e['old_index']} -> {e['new_index']}")
        for e in missing:
            info(f"[red]missing[/] [{e['input_index']}] {e['label']!r} ({e['jsonpath']})")
        for e in new:
            info(f"[green]new[/]     [{e['input_index']}] {e['label']!r}")
        verdict = "[green]no drift[/]" if ok else "[red]indices drifted[/]"
        info(
            f"{verdict}: {len(report['unchanged'])} unchanged, {len(moved)} moved, "
            f"{len(missing)} missing, {len(new)} new"
        )
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``inputs`` and the ``index`` group to the app."""
    app.command("inputs")(inputs)
    app.add_typer(index_app, name="index")
