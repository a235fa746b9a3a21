"""Output mapping: pure tests on captured queue-item shapes, and iterations on the real server."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.workflow import OutputNode, WorkflowDefinition
from invokeai_py_client.workflow.outputs import (
    image_names_in_result,
    map_outputs,
    output_image_names,
)

SAVE = OutputNode("save-1", "save_image", "Output", "none", 4)
BLANK = OutputNode("blank-1", "blank_image", "Canvas", "auto", None)

# Shape captured from InvokeAI 6.14.2 (GET /api/v1/queue/default/i/{id}), trimmed.
ITEM: dict[str, Any] = {
    "item_id": 7,
    "status": "completed",
    "batch_id": "b",
    "session": {
        "graph": {
            "nodes": {
                "blank-1": {"id": "blank-1", "type": "blank_image", "is_intermediate": True},
                "save-1": {
                    "id": "save-1",
                    "type": "save_image",
                    "is_intermediate": False,
                    "board": {"board_id": "board-a"},
                },
            }
        },
        # the server keeps prepared ids in a set: their listed order is arbitrary
        "source_prepared_mapping": {"blank-1": ["p-b"], "save-1": ["p-s3", "p-s1", "p-s2"]},
        "results": {
            "p-b": {"type": "image_output", "image": {"image_name": "blank.png"}},
            "p-s1": {"type": "image_output", "image": {"image_name": "s1.png"}},
            "p-s2": {"type": "image_output", "image": {"image_name": "s2.png"}},
            "p-s3": {"type": "image_output", "image": {"image_name": "s3.png"}},
        },
    },
}


def test_images_follow_execution_order_not_mapping_order() -> None:
    assert output_image_names(ITEM, "save-1") == ["s1.png", "s2.png", "s3.png"]


def test_map_outputs_records() -> None:
    recs = map_outputs(ITEM, [BLANK, SAVE])
    assert [r["node_id"] for r in recs] == ["blank-1", "save-1"]
    blank, save = recs
    assert blank == {
        "node_id": "blank-1",
        "node_type": "blank_image",
        "label": "Canvas",
        "input_index": None,
        "board_id": "none",
        "tier": "intermediate",
        "image_names": ["blank.png"],
    }
    assert save["board_id"] == "board-a" and save["tier"] == "output"
    assert save["input_index"] == 4


def test_failed_or_sessionless_items_map_to_empty_lists() -> None:
    recs = map_outputs({"status": "failed"}, [SAVE])
    assert recs[0]["image_names"] == [] and recs[0]["board_id"] == "none"


def test_progress_views_always_carry_a_number() -> None:
    from invokeai_py_client.workflow._job import _ProgressTracker

    t = _ProgressTracker()
    assert t.view({"event_type": "batch_enqueued"}) is None
    v = t.view({"event_type": "invocation_progress", "item_id": 1, "percentage": None})
    assert v is not None and v["progress"] == 0.0
    v = t.view({"event_type": "invocation_progress", "item_id": 1, "percentage": 0.5})
    assert v is not None and v["progress"] == 0.5
    final = t.final_views([{"item_id": 1, "status": "completed"}])
    assert final[0]["status"] == "completed" and final[0]["progress"] == 1.0
    assert t.final_views([{"item_id": 1, "status": "completed"}]) == []  # reported once


def test_image_names_in_result_shapes() -> None:
    assert image_names_in_result({"type": "image_output", "image": {"image_name": "a"}}) == ["a"]
    coll = {
        "type": "image_collection_output",
        "collection": [{"image_name": "x"}, {"image_name": "y"}],
    }
    assert image_names_in_result(coll) == ["x", "y"]
    assert image_names_in_result({"type": "integer_output", "value": 3}) == []
    assert image_names_in_result(None) == []


@pytest.mark.server
def test_nodes_inside_an_iteration_map_in_order(client: InvokeAIClient, tmp_path: Path) -> None:
    # range(32, 80, 16) -> iterate -> blank_image.width -> save_image: one save per iteration
    graph = {
        "nodes": {
            "range": {"id": "range", "type": "range", "start": 32, "stop": 80, "step": 16},
            "iter": {"id": "iter", "type": "iterate"},
            "blank": {"id": "blank", "type": "blank_image", "height": 8, "is_intermediate": True},
            "save": {"id": "save", "type": "save_image", "is_intermediate": False},
        },
        "edges": [
            {
                "source": {"node_id": "range", "field": "collection"},
                "destination": {"node_id": "iter", "field": "collection"},
            },
            {
                "source": {"node_id": "iter", "field": "item"},
                "destination": {"node_id": "blank", "field": "width"},
            },
            {
                "source": {"node_id": "blank", "field": "image"},
                "destination": {"node_id": "save", "field": "image"},
            },
        ],
    }
    body = {"batch": {"batch_id": str(uuid.uuid4()), "graph": graph, "runs": 1}}
    ids = client.queue.enqueue_batch(body)["item_ids"]
    item = next(iter(client.events.iter_finished(ids, timeout=30, fetch_full=True)))
    assert item["status"] == "completed"
    save = OutputNode("save", "save_image", "Save", None, None)
    recs = map_outputs(item, [save])
    names = recs[0]["image_names"]
    assert len(names) == 3 and recs[0]["tier"] == "output"
    widths = [Image.open(io.BytesIO(client.images.download_image(n))).width for n in names]
    assert sorted(widths) == [32, 48, 64]


@pytest.mark.server
def test_two_boards_route_images(client: InvokeAIClient, examples_dir: Path) -> None:
    wf = client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(examples_dir / "two_boards.json")
    )
    a = client.board_repo.create_board(f"orig-{uuid.uuid4().hex[:6]}")
    b = client.board_repo.create_board(f"blur-{uuid.uuid4().hex[:6]}")
    outputs = wf.list_outputs()
    assert [o.input_index for o in outputs] == [1, 3]
    wf.set(1, a.board_id)
    wf.set(3, b.board_id)
    wf.submit_sync()
    item = wf.wait_for_completion_sync(timeout=60)
    recs = {r["input_index"]: r for r in wf.map_outputs_to_images(item) if r["tier"] == "output"}
    assert recs[1]["board_id"] == a.board_id and recs[3]["board_id"] == b.board_id
    assert recs[1]["label"] == "Save Original" and recs[3]["label"] == "Save Blurred"
    for idx, board in ((1, a), (3, b)):
        (name,) = recs[idx]["image_names"]
        assert name in board.list_image_names()
        assert client.images.get_image(name).board_id == board.board_id
