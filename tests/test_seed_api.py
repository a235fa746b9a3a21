"""Seed-doc spellings that must keep working exactly as written, against a real server.

Each test runs one snippet of the seed docs (README, workflow API reference, usage pattern)
that an audit found broken, with the model-free example workflows.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from invokeai_py_client import InvokeAIClient, WorkflowDefinition, WorkflowDefinitionError
from invokeai_py_client.dnn_model import BaseDnnModelType
from invokeai_py_client.models import (
    BaseModelEnum,
    ImageCategory,
    IvkDnnModel,
    IvkImage,
    IvkJob,
    JobStatus,
)
from invokeai_py_client.workflow import WorkflowRepository


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "purple").save(buf, format="PNG")
    return buf.getvalue()


def test_definition_workflow_gives_the_raw_nodes(
    client: InvokeAIClient, examples_dir: Path
) -> None:
    """Seed guide 2: ``wf.definition.workflow.get("nodes", [])`` maps node ids to types."""
    wf = client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(examples_dir / "blur.json")
    )
    node_types = {}
    for n in wf.definition.workflow.get("nodes", []):
        node_types[n.get("id")] = n.get("data", {}).get("type") or n.get("type")
    assert sorted(node_types.values()) == ["blank_image", "img_blur", "save_image"]
    assert wf.definition.workflow is wf.definition.raw


def test_board_record_reads_like_a_dict(client: InvokeAIClient, examples_dir: Path) -> None:
    """Seed guide 1: ``getattr(board, "board", {}).get("board_id", "none")`` on a handle."""
    board = client.board_repo.create_board("seed guide 1")
    uploaded = board.upload_image_data(image_data=_png(), filename="input.png")
    workflow = WorkflowRepository(client).create_workflow_from_file(examples_dir / "img2img.json")
    lookup = {(inp.node_id, inp.field_name): inp.input_index for inp in workflow.list_inputs()}
    board_key = next(k for k in lookup if k[1] == "board")
    board_id = getattr(board, "board_id", getattr(board, "board", {}).get("board_id", "none"))
    assert board_id == board.board_id
    assert board.board.get("board_name") == "seed guide 1"
    assert board.board.get("no_such_field", "fallback") == "fallback"
    assert board.board.get("model_dump") is None  # fields only, never methods
    workflow.get_input_value(lookup[board_key]).value = board_id
    workflow.get_input_value(0).value = uploaded.image_name
    workflow.submit_sync(board_id=board_id)
    item = workflow.wait_for_completion_sync(timeout=120)
    [out] = [m for m in workflow.map_outputs_to_images(item) if m["node_type"] == "save_image"]
    assert out["board_id"] == board.board_id
    assert set(board.list_image_names()) == {uploaded.image_name, *out["image_names"]}


def test_convert_to_api_format_dumps_the_graph(client: InvokeAIClient, examples_dir: Path) -> None:
    """Seed guide 1's debug dump: ``json.dump(wf._convert_to_api_format(board_id), f)``."""
    wf = client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(examples_dir / "blur.json")
    )
    graph = wf._convert_to_api_format("my-board")
    text = json.dumps(graph)
    assert graph == {**wf.build_payload()["batch"]["graph"], "nodes": graph["nodes"]}
    save = next(n for n in graph["nodes"].values() if n["type"] == "save_image")
    assert save["board"] == {"board_id": "my-board"}
    assert "edges" in json.loads(text)
    # "none" leaves the nodes as they are, like submit_sync(board_id="none")
    plain = wf._convert_to_api_format("none")
    assert plain == wf.build_payload()["batch"]["graph"]


def test_models_module_names_and_server_values(client: InvokeAIClient, examples_dir: Path) -> None:
    """The seed's "Models" names exist, with the server's own status / category strings."""
    wf = client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(examples_dir / "blur.json")
    )
    wf.submit_sync()
    item = wf.wait_for_completion_sync(timeout=120)
    job = IvkJob.from_api(item)
    assert job.status is JobStatus.COMPLETED and job.is_complete() and job.is_successful()
    assert item["status"] == JobStatus.COMPLETED
    assert JobStatus.RUNNING is JobStatus.IN_PROGRESS and JobStatus.CANCELLED is JobStatus.CANCELED
    names = [n for m in wf.map_outputs_to_images(item) for n in m["image_names"]]
    record = client.images.get_image(names[-1])
    assert isinstance(record, IvkImage)
    assert ImageCategory(record.image_category) is ImageCategory.GENERAL
    assert (
        BaseModelEnum is BaseDnnModelType
        and BaseModelEnum("sdxl") is BaseDnnModelType.StableDiffusionXL
    )
    assert IvkDnnModel.__name__ == "IvkDnnModel"


def test_async_progress_callback_as_the_readme_writes_it(
    client: InvokeAIClient, examples_dir: Path
) -> None:
    """README async example: progress events carry ``progress`` (None without a percentage)."""
    wf = client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(examples_dir / "blur.json")
    )
    events: list[dict[str, object]] = []

    async def main() -> str:
        await wf.submit(subscribe_events=True, on_invocation_progress=events.append)
        result = await wf.wait_for_completion(timeout=90)
        return str(result.get("status"))

    assert asyncio.run(main()) == "completed"
    assert events and all("progress" in e for e in events)


def test_from_file_takes_the_seed_argument_name(examples_dir: Path) -> None:
    """The workflow API reference names ``from_file``'s parameter ``filepath``."""
    by_name = WorkflowDefinition.from_file(filepath=str(examples_dir / "blur.json"))
    assert by_name.to_dict() == WorkflowDefinition.from_file(examples_dir / "blur.json").to_dict()
    with pytest.raises(WorkflowDefinitionError):
        WorkflowDefinition.from_file()
    with pytest.raises(WorkflowDefinitionError):
        WorkflowDefinition.from_file(examples_dir / "blur.json", filepath="other.json")
