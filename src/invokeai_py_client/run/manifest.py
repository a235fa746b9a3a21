"""The manifest of a batch run: ``manifest.jsonl``, ``manifest.csv`` and ``run.json``.

Written into the output directory at the end of a run (and by ``resume``), from the ledger.
This format is stable; tools (the ``ivk`` CLI, contact sheets) read it.

``manifest.jsonl`` holds one JSON object per line, in run order: one row per produced image,
and one row per planned run that produced none (failed, canceled, or never finished), with
these keys (all present in every row; ``null`` when unknown):

==================  ===========================================================================
``run_index``       the run's position in the plan (0-based; ``runs`` outermost, then the
                    cartesian product of the axes, first axis slowest)
``item_id``         the server's queue item id (null if the run was never enqueued)
``batch_id``        the enqueue batch id
``server``          the server URL that made it
``status``          ``completed`` | ``failed`` | ``canceled`` | ``pending`` | ``in_progress`` |
                    ``not_sent``
``params``          every swept input by label, e.g. ``{"Width": 64, "Blur Radius": 4.0}``
                    (from the item's server-side ``field_values``; local images by file name)
``param_indices``   the same by Form input index: ``{"0": 64, "3": 4.0}``
``node_id``         the workflow node that produced the image
``node_label``      its label (the node's label, else its type's title)
``board_id``        the board the image went to (null = uncategorized)
``image_name``      the server's image name
``path``            the local file, relative to the output directory (``images/...``)
``started_at``      when the server started the item (server time)
``completed_at``    when the server finished it
``downloaded_at``   when the file was written (client UTC time)
``error_type``      the server's error type for a failed item
``error_message``   the server's error message
==================  ===========================================================================

``manifest.csv`` has the same columns; ``params`` and ``param_indices`` are JSON text, and
each axis also gets its own column named ``param:<label>``.

``run.json`` describes the run for layout tools::

    {
      "format": 1, "run_id": "...", "server": "http://...", "servers": ["http://..."],
      "workflow": "Example: ...",
      "count": 12, "runs": 1, "created_at": "...",
      "axes": [{"name": "Width", "label": "Width", "index": 0, "node_id": "...",
                "field_name": "width", "values": [32, 48, 64], "group": 0,
                "source": "sweep" | "workflow", "kind": "values" | "prompts" | "seeds" |
                "images"}, ...],
      "groups": [["Width"], ["Blur Radius"]],      # zipped axes share a group
      "output_nodes": [{"node_id": "...", "label": "Output", "board_id": null}],
      "counts": {"completed": 12, "failed": 0, ...},
      "manifest": "manifest.jsonl", "images_dir": "images"
    }

A run spread over several servers keeps one ledger per part under ``parts/NNN/`` (each an
ordinary single-server run directory without images); ``images/``, the manifest and
``run.json`` at the top merge them.

Example::

    import json
    rows = [json.loads(line) for line in open("out/manifest.jsonl")]
    grid = {(r["params"]["Width"], r["params"]["Blur Radius"]): r["path"] for r in rows}
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CSV_NAME",
    "MANIFEST_COLUMNS",
    "MANIFEST_NAME",
    "RUN_JSON_NAME",
    "read_manifest",
    "write_manifest",
    "write_run_json",
]

MANIFEST_NAME = "manifest.jsonl"
CSV_NAME = "manifest.csv"
RUN_JSON_NAME = "run.json"
FORMAT_VERSION = 1

MANIFEST_COLUMNS: tuple[str, ...] = (
    "run_index",
    "item_id",
    "batch_id",
    "server",
    "status",
    "params",
    "param_indices",
    "node_id",
    "node_label",
    "board_id",
    "image_name",
    "path",
    "started_at",
    "completed_at",
    "downloaded_at",
    "error_type",
    "error_message",
)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(
    out_dir: str | Path, rows: Iterable[Mapping[str, Any]], axis_names: Sequence[str]
) -> Path:
    """Write ``manifest.jsonl`` and ``manifest.csv`` (atomically); returns the JSONL path."""
    out = Path(out_dir)
    materialized = [{k: row.get(k) for k in MANIFEST_COLUMNS} for row in rows]
    lines = [json.dumps(r, ensure_ascii=False, default=str) for r in materialized]
    jsonl = out / MANIFEST_NAME
    _atomic_write(jsonl, "\n".join(lines) + ("\n" if lines else ""))

    tmp = out / (CSV_NAME + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*MANIFEST_COLUMNS, *(f"param:{n}" for n in axis_names)])
        for r in materialized:
            params = r.get("params") or {}
            cells = [
                json.dumps(r[c], ensure_ascii=False)
                if c in ("params", "param_indices")
                else ("" if r[c] is None else r[c])
                for c in MANIFEST_COLUMNS
            ]
            extra = ["" if params.get(n) is None else params.get(n) for n in axis_names]
            writer.writerow([*cells, *extra])
    os.replace(tmp, out / CSV_NAME)
    return jsonl


def write_run_json(out_dir: str | Path, info: Mapping[str, Any]) -> Path:
    """Write ``run.json`` (atomically); ``format`` is added."""
    path = Path(out_dir) / RUN_JSON_NAME
    data = {"format": FORMAT_VERSION, **info}
    _atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


def read_manifest(out_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``manifest.jsonl`` of a run directory."""
    path = Path(out_dir) / MANIFEST_NAME
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
