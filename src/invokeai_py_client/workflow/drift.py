"""Input index drift: save the index -> input map of a workflow, and compare later.

Indices are the stable handle only while the Form is unchanged. Export the map next to a
script that hard-codes indices; verify it after re-exporting the workflow from the GUI.

Example::

    wf.export_input_index_map("t2i.index.json")
    report = wf.verify_input_index_map("t2i.index.json")
    report["moved"]     # [{"jsonpath": ..., "old_index": 3, "new_index": 4, ...}]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invokeai_py_client.exceptions import WorkflowError

if TYPE_CHECKING:
    from invokeai_py_client.workflow.handle import WorkflowHandle

__all__ = [
    "MAP_FORMAT_VERSION",
    "export_input_index_map",
    "input_index_map",
    "verify_input_index_map",
]

MAP_FORMAT_VERSION = 1


def input_index_map(handle: WorkflowHandle) -> dict[str, Any]:
    """The map as a JSON-ready dict."""
    return {
        "format": MAP_FORMAT_VERSION,
        "workflow": handle.definition.name,
        "inputs": [
            {
                "input_index": inp.input_index,
                "label": inp.label,
                "node_id": inp.node_id,
                "field_name": inp.field_name,
                "node_name": inp.node_name,
                "field_type": type(inp.field).__name__,
                "jsonpath": inp.jsonpath,
            }
            for inp in handle.list_inputs()
        ],
    }


def export_input_index_map(handle: WorkflowHandle, path: str | Path) -> Path:
    """Write :func:`input_index_map` to ``path``; returns the path."""
    p = Path(path)
    p.write_text(json.dumps(input_index_map(handle), indent=2) + "\n", encoding="utf-8")
    return p


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkflowError(f"cannot read input index map {path}: {exc}") from None
    entries = data.get("inputs") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("jsonpath"), str)
        and isinstance(e.get("input_index"), int)
        for e in entries
    ):
        raise WorkflowError(
            f"{path} is not an input index map (expected 'inputs' with jsonpath and "
            "input_index per entry; write one with export_input_index_map)"
        )
    return entries


def verify_input_index_map(
    handle: WorkflowHandle, path: str | Path
) -> dict[str, list[dict[str, Any]]]:
    """Compare the saved map with the handle's inputs (identity = the input's jsonpath).

    Returns ``{"unchanged": [...], "moved": [...], "missing": [...], "new": [...]}``;
    moved entries carry ``old_index`` and ``new_index``.
    """
    old = _load(Path(path))
    current = input_index_map(handle)["inputs"]
    now = {e["jsonpath"]: e for e in current}
    before = {e["jsonpath"]: e for e in old}
    report: dict[str, list[dict[str, Any]]] = {
        "unchanged": [],
        "moved": [],
        "missing": [],
        "new": [],
    }
    for jp, e in before.items():
        cur = now.get(jp)
        if cur is None:
            report["missing"].append(dict(e))
        elif cur["input_index"] == e["input_index"]:
            report["unchanged"].append(dict(cur))
        else:
            report["moved"].append(
                {**cur, "old_index": e["input_index"], "new_index": cur["input_index"]}
            )
    report["new"] = [dict(e) for jp, e in now.items() if jp not in before]
    return report
