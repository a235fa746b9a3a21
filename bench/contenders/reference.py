"""Contender "reference": invokeai-py-client 1.1.1 from PyPI, driven the way its README shows.

Runs with the interpreter of ``.bench-venvs/reference`` (compare.py creates it). For each of
the N runs: set the Form inputs (blur radius swept, output board), ``submit_sync()``,
``wait_for_completion_sync()``, ``map_outputs_to_images()``, then download every image through
its board handle (``client.board_repo.get_board_handle(board_id).download_image(name,
full_resolution=True)``) and write it to ``--out``.

Workarounds for InvokeAI 6.14.2 (see bench/README.md): the reference library refuses workflow
schema 4.0.0 (``Workflow version 4.0.0 may not be fully compatible``), so compare.py gives it
``bench/workflows/blur64.json``, the same workflow in schema 3.0.0. Nothing is monkeypatched.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from _common import (
    RADIUS_INDEX,
    count_pngs,
    emit,
    now,
    parse_args,
    parse_server_ts,
    radius_values,
)

from invokeai_py_client import InvokeAIClient  # the reference library (its own venv)
from invokeai_py_client.workflow import WorkflowDefinition

BOARD_INDEX = 4


def main() -> None:
    args = parse_args(__doc__ or "")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    latencies_ms: list[float] = []
    per_run_s: list[float] = []
    first_image_s: float | None = None

    t0 = now()
    client = InvokeAIClient.from_url(args.url)
    wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file(args.workflow))
    board = client.board_repo.create_board(f"bench-reference-{uuid.uuid4().hex[:8]}")
    wf.get_input_value(BOARD_INDEX).value = board.board_id

    for i, radius in enumerate(radius_values(args.n)):
        t_run = now()
        try:
            wf.get_input_value(RADIUS_INDEX).value = radius
            wf.submit_sync()
            queue_item = wf.wait_for_completion_sync(timeout=600)
            t_known = now()
            completed_at = parse_server_ts(queue_item.get("completed_at"))
            if completed_at is not None:
                latencies_ms.append((t_known - completed_at) * 1000.0)
            for mapping in wf.map_outputs_to_images(queue_item):
                handle = client.board_repo.get_board_handle(mapping["board_id"])
                for name in mapping.get("image_names") or []:
                    data = handle.download_image(name, full_resolution=True)
                    (out / f"{i:06d}_{name}").write_bytes(data)
                    if first_image_s is None:
                        first_image_s = now() - t0
        except Exception as exc:  # record and go on: a benchmark reports, it does not stop
            errors.append(f"run {i}: {type(exc).__name__}: {exc}"[:300])
        per_run_s.append(now() - t_run)
    wall_s = now() - t0

    emit(
        {
            "contender": "reference",
            "n": args.n,
            "wall_s": wall_s,
            "first_image_s": first_image_s,
            "images_on_disk": count_pngs(out),
            "per_run_s_median": sorted(per_run_s)[len(per_run_s) // 2] if per_run_s else None,
            "notice_latencies_ms": latencies_ms,
            "errors": errors[:20],
        }
    )


if __name__ == "__main__":
    main()
