"""Contender "server limit": the server's own processing time for N items, the floor.

A minimal raw-HTTP client (httpx, no library): it builds the blank_image(64x64) -> img_blur ->
save_image graph JSON by hand, enqueues all N items at once in ONE ``enqueue_batch`` whose
``batch.data`` sweeps the blur radius, polls the batch status until every item has finished,
reads all items with ``POST items_by_ids`` and reports the span from the first item's
``started_at`` to the last item's ``completed_at`` (server timestamps). It downloads nothing.

``--workflow`` is accepted for the uniform interface; the graph is written out below.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from _common import (
    BLUR_NODE_ID,
    CANVAS_NODE_ID,
    SAVE_NODE_ID,
    emit,
    now,
    parse_args,
    parse_server_ts,
    radius_values,
)

QUEUE = "/api/v1/queue/default"
POLL_S = 0.2


def build_batch(n: int, batch_id: str) -> dict[str, Any]:
    graph = {
        "id": f"bench-graph-{batch_id}",
        "nodes": {
            CANVAS_NODE_ID: {
                "id": CANVAS_NODE_ID,
                "type": "blank_image",
                "is_intermediate": True,
                "use_cache": True,
                "width": 64,
                "height": 64,
                "mode": "RGB",
                "color": {"r": 40, "g": 90, "b": 200, "a": 255},
            },
            BLUR_NODE_ID: {
                "id": BLUR_NODE_ID,
                "type": "img_blur",
                "is_intermediate": True,
                "use_cache": True,
                "radius": 4,
                "blur_type": "gaussian",
            },
            SAVE_NODE_ID: {
                "id": SAVE_NODE_ID,
                "type": "save_image",
                "is_intermediate": False,
                "use_cache": False,
            },
        },
        "edges": [
            {
                "source": {"node_id": CANVAS_NODE_ID, "field": "image"},
                "destination": {"node_id": BLUR_NODE_ID, "field": "image"},
            },
            {
                "source": {"node_id": BLUR_NODE_ID, "field": "image"},
                "destination": {"node_id": SAVE_NODE_ID, "field": "image"},
            },
        ],
    }
    data = [
        [
            {
                "node_path": BLUR_NODE_ID,
                "field_name": "radius",
                "items": [float(v) for v in radius_values(n)],
            }
        ]
    ]
    return {
        "prepend": False,
        "batch": {"batch_id": batch_id, "graph": graph, "runs": 1, "data": data},
    }


def main() -> None:
    args = parse_args(__doc__ or "")
    errors: list[str] = []
    batch_id = f"bench-limit-{uuid.uuid4()}"
    t0 = now()
    with httpx.Client(base_url=args.url, timeout=60.0, trust_env=False) as http:
        resp = http.post(f"{QUEUE}/enqueue_batch", json=build_batch(args.n, batch_id))
        resp.raise_for_status()
        enq = resp.json()
        item_ids: list[int] = list(enq["item_ids"])
        if enq["enqueued"] != args.n:
            errors.append(f"enqueued {enq['enqueued']} of {args.n}")
        while True:
            status = http.get(f"{QUEUE}/b/{batch_id}/status").json()
            finished = status["completed"] + status["failed"] + status["canceled"]
            if finished >= len(item_ids):
                break
            time.sleep(POLL_S)
        t_seen = now()
        items: list[dict[str, Any]] = []
        for start in range(0, len(item_ids), 1000):
            chunk = item_ids[start : start + 1000]
            resp = http.post(f"{QUEUE}/items_by_ids", json={"item_ids": chunk})
            resp.raise_for_status()
            items.extend(resp.json())

    failed = [it for it in items if it["status"] != "completed"]
    for it in failed[:5]:
        errors.append(f"item {it['item_id']}: {it['status']} {it.get('error_type')}")
    started = [t for it in items if (t := parse_server_ts(it.get("started_at"))) is not None]
    completed = [t for it in items if (t := parse_server_ts(it.get("completed_at"))) is not None]
    first_start = min(started)
    span = max(completed) - first_start
    emit(
        {
            "contender": "server_limit",
            "n": args.n,
            "wall_s": span,
            "first_image_s": min(completed) - first_start,
            "images_on_disk": None,
            "items_completed": len(items) - len(failed),
            "client_wall_s": t_seen - t0,
            "enqueue_to_first_start_s": first_start - t0,
            "notice_latencies_ms": None,
            "errors": errors,
        }
    )


if __name__ == "__main__":
    main()
