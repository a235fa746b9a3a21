"""QuickClient on the real server: copy to a board for real, SDXL request built correctly."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.board import BoardHandle
from invokeai_py_client.dnn_model import IvkDnnModel
from invokeai_py_client.exceptions import BoardError, InvokeAIError, ModelNotFoundError
from invokeai_py_client.quick import QuickClient, load_packaged_workflow
from invokeai_py_client.workflow import WorkflowHandle

pytestmark = pytest.mark.server

FAKE_SDXL = IvkDnnModel(
    key="00000000-fake-sdxl-key",
    hash="blake3:" + "ab" * 32,
    name="fake-sdxl-base",
    base="sdxl",
    type="main",
    format="checkpoint",
)


def png_bytes(color: str = "orange", size: tuple[int, int] = (24, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def board(client: InvokeAIClient) -> Iterator[BoardHandle]:
    handle = client.board_repo.create_board(f"quick-{uuid.uuid4().hex[:8]}")
    yield handle
    client.board_repo.delete_board(handle.board_id, delete_images=True)


@pytest.mark.parametrize("name", ["copy_image_to_board.json", "sdxl_text_to_image.json"])
def test_packaged_workflows_accepted_by_workflow_library(client: InvokeAIClient, name: str) -> None:
    workflow = load_packaged_workflow(name).to_dict()
    record = client.http.request("POST", "/api/v1/workflows/", json={"workflow": workflow}).json()
    assert record["workflow"]["name"] == workflow["name"]
    client.http.request("DELETE", f"/api/v1/workflows/i/{record['workflow_id']}")


def test_copy_image_to_board(client: InvokeAIClient, board: BoardHandle) -> None:
    qc = QuickClient(client)
    src = client.board_repo.get_uncategorized_handle().upload_image_data(png_bytes(), "src.png")
    copy = qc.copy_image_to_board(src.image_name, board.board_id)
    assert copy is not None
    assert copy.image_name != src.image_name
    assert copy.board_id == board.board_id and not copy.is_intermediate
    assert board.list_image_names() == [copy.image_name]
    assert client.images.get_image(src.image_name).board_id in (None, "none")  # untouched
    a = Image.open(io.BytesIO(client.images.download_image(src.image_name))).convert("RGB")
    b = Image.open(io.BytesIO(client.images.download_image(copy.image_name))).convert("RGB")
    assert a.size == b.size and a.tobytes() == b.tobytes()

    to_unc = qc.copy_image_to_board(copy.image_name, "none")
    assert to_unc is not None and to_unc.board_id in (None, "none")
    client.images.delete_image(to_unc.image_name)


def test_copy_image_missing_image_or_board(client: InvokeAIClient, board: BoardHandle) -> None:
    qc = QuickClient(client)
    assert qc.copy_image_to_board("no-such-image.png", board.board_id) is None
    src = client.board_repo.get_uncategorized_handle().upload_image_data(png_bytes(), "s.png")
    with pytest.raises(BoardError, match="no board with id"):
        qc.copy_image_to_board(src.image_name, "no-such-board")
    assert board.count_images() == 0


def test_generate_sdxl_without_model_is_clear(client: InvokeAIClient) -> None:
    if client.dnn_model_repo.list_models(base="sdxl", type="main"):
        pytest.skip("an SDXL main model is installed on this server")
    qc = QuickClient(client)
    before = client.http.get_json("/api/v1/queue/default/status")["queue"]["total"]
    with pytest.raises(ModelNotFoundError, match="no SDXL main model is installed"):
        qc.generate_image_sdxl_t2i("a fox", "blurry", 1024, 1024, 20)
    after = client.http.get_json("/api/v1/queue/default/status")["queue"]["total"]
    assert after == before  # nothing was enqueued
    with pytest.raises(BoardError):
        qc.generate_image_sdxl_t2i("a fox", board_id="no-such-board")


def _nodes_by_type(graph: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for node in graph["nodes"].values():
        out.setdefault(node["type"], []).append(node)
    return out


def _edge_set(graph: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    types = {nid: n["type"] for nid, n in graph["nodes"].items()}
    return {
        (
            types[e["source"]["node_id"]],
            e["source"]["field"],
            types[e["destination"]["node_id"]],
            e["destination"]["field"],
        )
        for e in graph["edges"]
    }


def test_sdxl_request_is_correct(client: InvokeAIClient, board: BoardHandle) -> None:
    qc = QuickClient(client)
    wf = qc.prepare_sdxl_t2i(
        FAKE_SDXL,
        "a red fox in snow",
        "blurry, low quality",
        832,
        1216,
        18,
        cfg_scale=6.5,
        scheduler="dpmpp_2m",
        seed=1234,
        board_id=board.board_id,
    )
    assert isinstance(wf, WorkflowHandle)
    body = wf.build_payload()
    graph = body["batch"]["graph"]
    nodes = _nodes_by_type(graph)
    assert sorted(nodes) == sorted(
        [
            "sdxl_model_loader",
            "string",
            "sdxl_compel_prompt",
            "integer",
            "noise",
            "denoise_latents",
            "l2i",
            "save_image",
        ]
    )
    assert len(nodes["sdxl_compel_prompt"]) == 2 and len(nodes["string"]) == 2
    assert nodes["sdxl_model_loader"][0]["model"] == {
        "key": FAKE_SDXL.key,
        "hash": FAKE_SDXL.hash,
        "name": "fake-sdxl-base",
        "base": "sdxl",
        "type": "main",
    }
    assert sorted(n["value"] for n in nodes["string"]) == [
        "a red fox in snow",
        "blurry, low quality",
    ]
    assert sorted(n["value"] for n in nodes["integer"]) == [832, 1216]
    assert nodes["noise"][0]["seed"] == 1234
    denoise = nodes["denoise_latents"][0]
    assert (denoise["steps"], denoise["cfg_scale"], denoise["scheduler"]) == (18, 6.5, "dpmpp_2m")
    save = nodes["save_image"][0]
    assert save["board"] == {"board_id": board.board_id} and save["is_intermediate"] is False
    assert nodes["l2i"][0]["is_intermediate"] is True
    edges = _edge_set(graph)
    for expected in [
        ("sdxl_model_loader", "unet", "denoise_latents", "unet"),
        ("sdxl_model_loader", "clip", "sdxl_compel_prompt", "clip"),
        ("sdxl_model_loader", "clip2", "sdxl_compel_prompt", "clip2"),
        ("sdxl_model_loader", "vae", "l2i", "vae"),
        ("string", "value", "sdxl_compel_prompt", "prompt"),
        ("string", "value", "sdxl_compel_prompt", "style"),
        ("integer", "value", "noise", "width"),
        ("integer", "value", "noise", "height"),
        ("sdxl_compel_prompt", "conditioning", "denoise_latents", "positive_conditioning"),
        ("sdxl_compel_prompt", "conditioning", "denoise_latents", "negative_conditioning"),
        ("noise", "noise", "denoise_latents", "noise"),
        ("denoise_latents", "latents", "l2i", "latents"),
        ("l2i", "image", "save_image", "image"),
    ]:
        assert expected in edges, expected
    # the positive prompt string feeds the conditioning wired to positive_conditioning
    ids = {n["value"]: nid for nid, n in graph["nodes"].items() if n["type"] == "string"}
    pos_compel = next(
        e["destination"]["node_id"]
        for e in graph["edges"]
        if e["source"]["node_id"] == ids["a red fox in snow"]
    )
    assert any(
        e["source"]["node_id"] == pos_compel
        and e["destination"]["field"] == "positive_conditioning"
        for e in graph["edges"]
    )
    json.dumps(body)

    # The server accepts the graph; running it fails only on the (fake) model.
    resp = client.http.request("POST", "/api/v1/queue/default/enqueue_batch", json=body).json()
    assert resp["enqueued"] == 1
    item_id = resp["item_ids"][0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        item = client.http.get_json(f"/api/v1/queue/default/i/{item_id}")
        if item["status"] in ("completed", "failed", "canceled"):
            break
        time.sleep(0.1)
    assert item["status"] == "failed"
    assert FAKE_SDXL.key in (item.get("error_message") or "") + (item.get("error_traceback") or "")


def test_sdxl_rejects_bad_inputs_before_any_request(client: InvokeAIClient) -> None:
    qc = QuickClient(client)
    with pytest.raises(InvokeAIError, match="multiples of 8"):
        qc.prepare_sdxl_t2i(FAKE_SDXL, "x", width=1001, height=1024)
    with pytest.raises(ValueError):
        qc.prepare_sdxl_t2i(FAKE_SDXL, "x", scheduler="no-such-scheduler")
