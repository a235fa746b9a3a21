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
``known_at``        when this client learned the item had finished (client UTC time, ISO 8601
                    with milliseconds and offset: ``2026-11-22T10:38:50.993+00:00``; the
                    server's ``completed_at`` is UTC without offset, ``2026-11-22
                    10:38:50.970``, so ``known_at - completed_at`` is the completion-notice
                    latency, give or take the two clocks' offset). Null for rows of runs
                    written before this column existed
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

from invokeai_py_client.run.ledger import FileRow, ItemRow, Ledger
from invokeai_py_client.sweep import SubsetPlan, SweepPlan

__all__ = [
    "CSV_NAME",
    "MANIFEST_COLUMNS",
    "MANIFEST_NAME",
    "RUN_JSON_NAME",
    "collect_runs",
    "read_manifest",
    "write_manifest",
    "write_merged",
    "write_outputs",
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
    "known_at",
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


# --------------------------------------------------------------------------- from the ledger


_RANK = {"completed": 5, "failed": 4, "in_progress": 3, "pending": 2, "waiting": 2, "canceled": 1}


def collect_runs(
    ledger: Ledger, plan: SweepPlan, files: Mapping[str, FileRow] | None = None
) -> dict[int, tuple[ItemRow, list[FileRow], str]]:
    """Each run's current item, its downloaded files and the server, by global run index."""
    server = str(ledger.get_meta("server"))
    files = ledger.files() if files is None else files
    by_item: dict[int, list[FileRow]] = {}
    for f in files.values():
        by_item.setdefault(f.item_id, []).append(f)
    out: dict[int, tuple[ItemRow, list[FileRow], str]] = {}
    for row in ledger.items(include_superseded=False):
        if row.run_index is None:
            continue
        r = plan.global_index(row.run_index) if isinstance(plan, SubsetPlan) else row.run_index
        out[r] = (row, by_item.get(row.item_id, []), server)
    return out


def better(
    a: tuple[ItemRow, list[FileRow], str] | None, b: tuple[ItemRow, list[FileRow], str]
) -> bool:
    """Whether ``b`` is a better record of a run than ``a`` (completed with files first)."""
    if a is None:
        return True

    def score(x: tuple[ItemRow, list[FileRow], str]) -> tuple[int, int]:
        return (1 if x[1] else 0, _RANK.get(x[0].status, 0))

    return score(b) > score(a)


def write_outputs(
    out_dir: Path, ledger: Ledger, plan: SweepPlan, files: Mapping[str, Any] | None = None
) -> Path:
    """(Re)write manifest.jsonl / manifest.csv / run.json from the ledger."""
    return write_merged(out_dir, ledger, plan, collect_runs(ledger, plan, files))


def write_merged(
    out_dir: Path,
    ledger: Ledger,
    plan: SweepPlan,
    current: Mapping[int, tuple[ItemRow, list[FileRow], str]],
) -> Path:
    """Write the outputs of ``plan`` from each run's record (``ledger`` gives the meta)."""
    server = ledger.get_meta("server")
    outputs = {o["node_id"]: o for o in ledger.get_meta("output_nodes") or []}
    order = list(outputs)
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for r in range(plan.count):
        record = current.get(r)
        base: dict[str, Any] = {"run_index": r, "server": server}
        if record is None:
            params, indices = plan.run_params(r)
            base.update(status="not_sent", params=params, param_indices=indices)
            rows.append(base)
            counts["not_sent"] = counts.get("not_sent", 0) + 1
            continue
        item, produced_files, item_server = record
        counts[item.status] = counts.get(item.status, 0) + 1
        base.update(
            item_id=item.item_id,
            batch_id=item.batch_id,
            server=item_server,
            status=item.status,
            params=item.params,
            param_indices=item.param_indices,
            started_at=item.started_at,
            completed_at=item.completed_at,
            error_type=item.error_type,
            error_message=item.error_message,
            known_at=item.known_at,
        )
        produced = sorted(
            produced_files,
            key=lambda f: (order.index(f.node_id) if f.node_id in outputs else 0, f.path),
        )
        if not produced:
            rows.append(base)
            continue
        for f in produced:
            node = outputs.get(f.node_id, {})
            rows.append(
                {
                    **base,
                    "node_id": f.node_id,
                    "node_label": node.get("label"),
                    "board_id": node.get("board_id"),
                    "image_name": f.image_name,
                    "path": f.path,
                    "downloaded_at": f.downloaded_at,
                }
            )
    names = [a.name for a in plan.axes]
    path = write_manifest(out_dir, rows, names)
    write_run_json(
        out_dir,
        {
            "run_id": ledger.get_meta("run_id"),
            "server": server,
            "servers": ledger.get_meta("servers") or [server],
            "workflow": ledger.get_meta("workflow_name"),
            "created_at": ledger.get_meta("created_at"),
            "count": plan.count,
            "runs": plan.runs,
            "axes": [
                {
                    "name": a.name,
                    "label": a.label,
                    "index": a.index,
                    "node_id": a.node_id,
                    "field_name": a.field_name,
                    "values": [
                        v if not hasattr(v, "sha256") else Path(str(getattr(v, "path", ""))).name
                        for v in a.display
                    ],
                    "group": a.group,
                    "source": a.source,
                    "kind": a.kind,
                }
                for a in plan.axes
            ],
            "groups": [[a.name for a in g] for g in plan.groups],
            "output_nodes": list(outputs.values()),
            "counts": counts,
            "manifest": MANIFEST_NAME,
            "images_dir": "images",
            # several servers: each one's model identifiers {original key: its own}
            **(
                {"models": models}
                if any((models := ledger.get_meta("models") or {}).values())
                else {}
            ),
        },
    )
    return path
