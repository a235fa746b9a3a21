"""Boards and images against the real server (LocalServer)."""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.board import BoardHandle, IvkBoard
from invokeai_py_client.exceptions import BoardError, InvokeAIError, NotFoundError
from invokeai_py_client.images import IvkImage

pytestmark = pytest.mark.server


def png_bytes(color: str = "red", size: tuple[int, int] = (16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def board(client: InvokeAIClient) -> Any:
    handle = client.board_repo.create_board(unique("test-board"))
    yield handle
    with contextlib.suppress(BoardError):  # the test may have deleted it already
        client.board_repo.delete_board(handle.board_id, delete_images=True)


# ---------------------------------------------------------------------------- boards


def test_create_get_by_name_rename_delete(client: InvokeAIClient) -> None:
    repo = client.board_repo
    name = unique("lifecycle")
    handle = repo.create_board(name)
    assert isinstance(handle, BoardHandle)
    assert handle.board_name == name and handle.board_id not in ("", "none")

    assert repo.get_board_handle(handle.board_id).board_name == name
    # one handle per board, reused without a request; renames reach it
    assert repo.get_board_handle(handle.board_id) is handle
    assert repo.get_board_handle_by_name(name).board_id == handle.board_id
    assert any(b.board_id == handle.board_id for b in repo.list_boards())

    renamed = repo.update_board(handle.board_id, board_name=name + "-renamed")
    assert renamed.board_name == name + "-renamed"
    assert handle.board_name == name + "-renamed"
    assert handle.refresh().board_name == name + "-renamed"
    assert repo.get_board_handle(handle.board_id, refresh=True) is handle
    assert repo.rename_board(handle.board_id, name).board_name == name

    assert repo.delete_board(handle.board_id) is True
    assert all(b.board_id != handle.board_id for b in repo.list_boards())
    with pytest.raises(BoardError, match="no board with id"):
        repo.get_board_handle(handle.board_id)
    with pytest.raises(BoardError):
        repo.delete_board(handle.board_id)


def test_by_name_missing_is_clear(client: InvokeAIClient) -> None:
    with pytest.raises(BoardError, match=r"no board named 'does-not-exist-xyz'.*create_board"):
        client.board_repo.get_board_handle_by_name("does-not-exist-xyz")
    with pytest.raises(BoardError, match="non-empty"):
        client.board_repo.create_board("  ")


def test_list_boards_include_uncategorized(client: InvokeAIClient, board: BoardHandle) -> None:
    client.board_repo.get_uncategorized_handle().upload_image_data(png_bytes(), "u.png")
    without = client.board_repo.list_boards()
    with_unc = client.board_repo.list_boards(include_uncategorized=True)
    assert all(isinstance(b, IvkBoard) for b in with_unc)
    assert "none" not in [b.board_id for b in without]
    assert with_unc[0].board_id == "none" and with_unc[0].board_name == "Uncategorized"
    assert with_unc[0].image_count + with_unc[0].asset_count >= 1
    assert [b.board_id for b in with_unc[1:]] == [b.board_id for b in without]
    assert board.board_id in [b.board_id for b in without]


def test_uncategorized_handles(client: InvokeAIClient) -> None:
    repo = client.board_repo
    for handle in (
        repo.get_uncategorized_handle(),
        repo.get_uncategorized_board(),
        repo.get_board_handle("none"),
        repo.get_board_handle(None),
    ):
        assert handle.board_id == "none" and handle.is_uncategorized
    with pytest.raises(BoardError):
        repo.delete_board("none")
    with pytest.raises(BoardError):
        repo.update_board("none", board_name="x")


# ---------------------------------------------------------------------------- images


def test_upload_file_and_bytes_download_full_and_thumbnail(
    client: InvokeAIClient, board: BoardHandle, tmp_path: Path
) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(png_bytes("blue", (20, 10)))
    img = board.upload_image(path)
    assert isinstance(img, IvkImage)
    assert (img.width, img.height, img.board_id) == (20, 10, board.board_id)
    img2 = board.upload_image_data(image_data=png_bytes("green"), filename="in.png")
    assert img2.board_id == board.board_id and img2.image_name != img.image_name

    full = board.download_image(img.image_name, full_resolution=True)
    assert full.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(full)).size == (20, 10)
    thumb = board.download_image(img.image_name, full_resolution=False)
    assert thumb[:4] == b"RIFF" and thumb[8:12] == b"WEBP"

    record = client.images.get_image(img.image_name)
    assert record.image_name == img.image_name and record.image_category == "user"
    assert client.images.download_to(img.image_name, tmp_path / "out").read_bytes() == full

    with pytest.raises(InvokeAIError, match="no such file"):
        board.upload_image(tmp_path / "missing.png")
    with pytest.raises(NotFoundError):
        client.images.download_image("no-such-image.png")


def test_list_images_paging_really_sent(client: InvokeAIClient, board: BoardHandle) -> None:
    names = [
        board.upload_image_data(png_bytes(c), "p.png").image_name
        for c in ("red", "green", "blue", "white", "black")
    ]
    assert board.count_images() == 5
    page1 = board.list_images(offset=0, limit=2)
    page2 = board.list_images(offset=2, limit=2)
    page3 = board.list_images(offset=4, limit=2)
    assert [len(page1), len(page2), len(page3)] == [2, 2, 1]
    got = [i.image_name for i in page1 + page2 + page3]
    assert sorted(got) == sorted(names)
    assert got == list(reversed(names))  # newest first
    assert len(board.list_images(offset=0, limit=100)) == 5
    assert sorted(board.list_image_names()) == sorted(names)
    page = client.images.list_images(board.board_id, offset=1, limit=3)
    assert (page.offset, page.limit, page.total, len(page.items)) == (1, 3, 5, 3)
    with pytest.raises(InvokeAIError, match="limit"):
        board.list_images(limit=1000)


def test_move_remove_delete_star(client: InvokeAIClient, board: BoardHandle) -> None:
    unc = client.board_repo.get_uncategorized_handle()
    img = unc.upload_image_data(png_bytes("yellow"), "m.png")
    assert img.board_id in (None, "none")

    unc.move_image_to(img.image_name, board.board_id)
    assert client.images.get_image(img.image_name).board_id == board.board_id
    assert img.image_name in board.list_image_names()
    with pytest.raises(BoardError, match="no board with id 'no-such-board'"):
        board.move_image_to(img.image_name, "no-such-board")
    with pytest.raises(BoardError, match="no image with that name"):
        board.move_image_to("no-such-image.png", board.board_id)
    with pytest.raises(BoardError, match="is on board"):
        unc.remove_image(img.image_name)

    other = client.board_repo.create_board(unique("other"))
    try:
        board.move_image_to(img.image_name, other.board_id)
        assert client.images.get_image(img.image_name).board_id == other.board_id
        other.remove_image(img.image_name)
        assert client.images.get_image(img.image_name).board_id in (None, "none")
        assert img.image_name in unc.list_image_names()
    finally:
        client.board_repo.delete_board(other.board_id)

    assert unc.star_image(img.image_name) is True
    assert client.images.get_image(img.image_name).starred is True
    assert unc.list_images(offset=0, limit=1)[0].image_name == img.image_name  # starred first
    assert unc.unstar_image(img.image_name) is True
    assert client.images.get_image(img.image_name).starred is False

    with pytest.raises(BoardError):
        board.delete_image(img.image_name)  # not on that board
    assert unc.delete_image(img.image_name) is True
    assert client.images.try_get_image(img.image_name) is None
    with pytest.raises(NotFoundError):
        client.images.get_image(img.image_name)


def test_delete_board_keeps_or_deletes_images(client: InvokeAIClient) -> None:
    keep = client.board_repo.create_board(unique("keep"))
    kept = keep.upload_image_data(png_bytes(), "k.png")
    client.board_repo.delete_board(keep.board_id)
    assert client.images.get_image(kept.image_name).board_id in (None, "none")

    gone = client.board_repo.create_board(unique("gone"))
    lost = gone.upload_image_data(png_bytes(), "g.png")
    client.board_repo.delete_board(gone.board_id, delete_images=True)
    assert client.images.try_get_image(lost.image_name) is None


# ---------------------------------------------------------------------------- metadata


def _run_blur_workflow(client: InvokeAIClient, examples_dir: Path, board_id: str) -> str:
    """Enqueue a blank -> blur -> save graph carrying a GUI workflow; return the image name."""
    path = examples_dir / "blur.json"
    workflow = (
        json.loads(path.read_text())
        if path.is_file()
        else {
            "name": "inline",
            "author": "",
            "description": "",
            "version": "1.0.0",
            "contact": "",
            "tags": "",
            "notes": "",
            "exposedFields": [],
            "meta": {"version": "3.0.0"},
            "nodes": [],
            "edges": [],
        }
    )
    graph = {
        "id": "g",
        "nodes": {
            "blank": {
                "id": "blank",
                "type": "blank_image",
                "width": 32,
                "height": 24,
                "color": {"r": 10, "g": 200, "b": 30, "a": 255},
            },
            "blur": {"id": "blur", "type": "img_blur", "radius": 2.0},
            "save": {
                "id": "save",
                "type": "save_image",
                "is_intermediate": False,
                "board": {"board_id": board_id},
            },
        },
        "edges": [
            {
                "source": {"node_id": "blank", "field": "image"},
                "destination": {"node_id": "blur", "field": "image"},
            },
            {
                "source": {"node_id": "blur", "field": "image"},
                "destination": {"node_id": "save", "field": "image"},
            },
        ],
    }
    resp = client.http.request(
        "POST",
        "/api/v1/queue/default/enqueue_batch",
        json={"prepend": False, "batch": {"graph": graph, "workflow": workflow, "runs": 1}},
    ).json()
    item_id = resp["item_ids"][0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        item = client.http.get_json(f"/api/v1/queue/default/i/{item_id}")
        if item["status"] in ("completed", "failed", "canceled"):
            break
        time.sleep(0.1)
    assert item["status"] == "completed", item.get("error_message")
    prepared = item["session"]["source_prepared_mapping"]["save"][0]
    return str(item["session"]["results"][prepared]["image"]["image_name"])


def test_record_metadata_and_embedded_workflow(
    client: InvokeAIClient, board: BoardHandle, examples_dir: Path
) -> None:
    name = _run_blur_workflow(client, examples_dir, board.board_id)
    record = client.images.get_image(name)
    assert record.board_id == board.board_id and record.has_workflow
    assert (record.width, record.height) == (32, 24)
    wf = client.images.get_workflow(name)
    assert wf is not None and "nodes" in wf and "meta" in wf
    graph = client.images.get_graph(name)
    assert graph is not None and "blur" in graph["nodes"]
    meta = client.images.get_metadata(name)
    assert meta is None or isinstance(meta, dict)
    assert name in board.list_image_names()

    uploaded = board.upload_image_data(png_bytes(), "plain.png")
    assert client.images.get_workflow(uploaded.image_name) is None
    assert client.images.get_metadata(uploaded.image_name) is None


# ---------------------------------------------------------------------------- seeds


def test_seed_board_examples_run_as_written(
    client: InvokeAIClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seeds' board snippets, calls unchanged (files made in a temp dir)."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8), "purple").save("reference.jpg", format="JPEG")
    Image.new("RGB", (8, 8), "teal").save("image.png", format="PNG")
    name = unique("My Project")

    for b in client.board_repo.list_boards():
        print(b.board_name, b.image_count)

    # List and create boards
    boards = client.board_repo.list_boards(include_uncategorized=True)
    new_board = client.board_repo.create_board(name)
    try:
        # Upload and download images
        image = new_board.upload_image("reference.jpg")
        image_data = new_board.download_image(image.image_name, full_resolution=True)
        # Organize images
        uncategorized = client.board_repo.get_uncategorized_handle()
        uncategorized.move_image_to(image.image_name, new_board.board_id)
        assert boards[0].board_id == "none" and image_data.startswith(b"\x89PNG")
        assert client.images.get_image(image.image_name).board_id == new_board.board_id

        handle = client.board_repo.get_board_handle("none")  # uncategorized
        img = handle.upload_image("image.png")
        img2 = handle.upload_image_data(open("image.png", "rb").read(), filename="image.png")  # noqa: SIM115
        data = handle.download_image(img.image_name, full_resolution=True)
        open(img.image_name, "wb").write(data)  # noqa: SIM115
        assert (tmp_path / img.image_name).read_bytes() == data and img2.image_name

        resolved_board_id = "none"
        for b in boards:
            if getattr(b, "board_name", "").lower() == "samples":
                resolved_board_id = getattr(b, "board_id", "none")
        assert resolved_board_id == "none"

        board = client.board_repo.get_uncategorized_board()
        uploaded = board.upload_image_data(image_data=data, filename="input.png")
        assert getattr(board, "board_id", "none") == "none" and uploaded.image_name
        for nm in (img.image_name, img2.image_name, uploaded.image_name):
            client.images.delete_image(nm)
    finally:
        client.board_repo.delete_board(new_board.board_id, delete_images=True)


def test_image_from_workflow_handle_carries_its_workflow(
    client: InvokeAIClient, board: BoardHandle, examples_dir: Path
) -> None:
    """blur.json run through the handle API: the saved image embeds the workflow JSON."""
    path = examples_dir / "blur.json"
    if not path.is_file():
        pytest.skip("examples/workflows/blur.json is not present")
    from invokeai_py_client.workflow import WorkflowDefinition

    wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file(path))
    wf.set("Width", 40)
    wf.set("Output Board", board.board_id)
    wf.submit_sync()
    item = wf.wait_for_completion_sync(timeout=60)
    names = [n for m in wf.map_outputs_to_images(item) for n in m["image_names"]]
    saved = [n for n in names if n in board.list_image_names()]
    assert len(saved) == 1
    record = client.images.get_image(saved[0])
    assert record.has_workflow and record.width == 40
    embedded = client.images.get_workflow(saved[0])
    assert embedded is not None
    assert embedded["name"] == json.loads(path.read_text())["name"]
    width_node = next(n for n in embedded["nodes"] if n["data"]["type"] == "blank_image")
    assert width_node["data"]["inputs"]["width"]["value"] == 40  # the values it ran with
    assert board.download_image(saved[0]).startswith(b"\x89PNG")
