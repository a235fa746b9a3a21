"""The asyncio twins of boards, images and models, against the real server (LocalServer).

Each ``a``-prefixed method must give what its blocking twin gives and raise the same class of
error; several run at once on the one async transport of the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.board import BoardHandle, IvkBoard
from invokeai_py_client.dnn_model import IvkDnnModel
from invokeai_py_client.exceptions import (
    BoardError,
    InvokeAIError,
    ModelError,
    ModelInstallError,
    ModelNotFoundError,
    NotFoundError,
)
from invokeai_py_client.images import ImagePage, IvkImage

pytestmark = pytest.mark.server


def png_bytes(color: str = "red", size: tuple[int, int] = (16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def pixels(data: bytes) -> tuple[tuple[int, int], bytes]:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    return img.size, img.tobytes()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def board(client: InvokeAIClient) -> AsyncIterator[BoardHandle]:
    handle = await client.board_repo.acreate_board(unique("async-board"))
    yield handle
    with contextlib.suppress(BoardError):  # the test may have deleted it already
        await client.board_repo.adelete_board(handle.board_id, delete_images=True)


async def same_error(sync_call: Callable[[], Any], async_call: Awaitable[Any]) -> Exception:
    """Both calls fail, with the same exception class; returns the async one's error."""
    with pytest.raises(InvokeAIError) as sync_err:
        sync_call()
    with pytest.raises(InvokeAIError) as async_err:
        await async_call
    assert type(async_err.value) is type(sync_err.value), (sync_err.value, async_err.value)
    return async_err.value


# ---------------------------------------------------------------------------- boards


async def test_board_lifecycle(client: InvokeAIClient) -> None:
    repo = client.board_repo
    name = unique("async-lifecycle")
    handle = await repo.acreate_board(name)
    assert isinstance(handle, BoardHandle) and handle.board_name == name

    record = await repo.aget_board(handle.board_id)
    assert isinstance(record, IvkBoard) and record == repo.get_board(handle.board_id)
    # the handle cache is shared with the blocking calls: one handle per board
    assert await repo.aget_board_handle(handle.board_id) is handle
    assert repo.get_board_handle(handle.board_id) is handle
    assert (await repo.aget_board_handle_by_name(name)).board_id == handle.board_id
    assert [b.board_id for b in await repo.afind_boards_by_name(name)] == [handle.board_id]
    listed = await repo.alist_boards()
    assert [b.board_id for b in listed] == [b.board_id for b in repo.list_boards()]
    with_unc = await repo.alist_boards(include_uncategorized=True)
    assert with_unc[0].board_id == "none" and with_unc[1:] == listed
    assert (await repo.aget_board("none")).is_uncategorized()
    assert (await repo.aget_board_handle(None)).is_uncategorized

    again = await repo.aget_or_create_board(name)
    assert again is handle
    renamed = await repo.arename_board(handle.board_id, name + "-renamed")
    assert renamed.board_name == handle.board_name == name + "-renamed"
    archived = await repo.aupdate_board(handle.board_id, archived=True)
    assert archived.archived is True
    assert (await handle.arefresh()).archived is True

    assert await repo.adelete_board(handle.board_id) is True
    assert handle.board_id not in [b.board_id for b in await repo.alist_boards()]
    created = await repo.aget_or_create_board(name)  # the name is free again: a new board
    assert created.board_id != handle.board_id
    assert await repo.adelete_board(created.board_id) is True


# ---------------------------------------------------------------------------- images


async def test_upload_list_download_star_remove(
    client: InvokeAIClient, board: BoardHandle, tmp_path: Path
) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(png_bytes("blue", (20, 10)))
    img = await board.aupload_image(path)
    assert isinstance(img, IvkImage)
    assert (img.width, img.height, img.board_id) == (20, 10, board.board_id)
    from_bytes = await client.images.aupload_image(
        png_bytes("green"), filename="g.png", board_id=board.board_id
    )
    from_handle = await board.aupload_image_data(png_bytes("white"), "w.png")
    names = {img.image_name, from_bytes.image_name, from_handle.image_name}
    assert len(names) == 3

    assert set(await board.alist_image_names()) == names
    assert set(await client.images.alist_image_names(board.board_id)) == names
    assert await board.acount_images() == 3 == await client.images.acount_images(board.board_id)
    page = await client.images.alist_images(board.board_id, offset=0, limit=2)
    assert isinstance(page, ImagePage) and page.total == 3 and len(page.items) == 2
    assert [i.image_name for i in await board.alist_images(limit=100)] == [
        i.image_name for i in board.list_images(limit=100)
    ]

    full = await board.adownload_image(img.image_name)
    assert full.startswith(b"\x89PNG") and full == client.images.download_image(img.image_name)
    assert pixels(full) == pixels(path.read_bytes())
    thumb = await client.images.adownload_image(img.image_name, full_resolution=False)
    assert thumb[:4] == b"RIFF" and thumb[8:12] == b"WEBP"
    saved = await client.images.adownload_to(img.image_name, tmp_path / "out")
    assert saved.read_bytes() == full

    record = await client.images.aget_image(img.image_name)
    assert record == client.images.get_image(img.image_name)
    assert (await board.aget_image(img.image_name)).image_name == img.image_name
    assert await client.images.aget_metadata(img.image_name) is None
    assert await client.images.aget_workflow(img.image_name) is None
    assert await client.images.aget_graph(img.image_name) is None

    assert await board.astar_image(img.image_name) is True
    assert (await client.images.aget_image(img.image_name)).starred is True
    assert await client.images.aunstar_image(img.image_name) is True
    assert await client.images.astar_image(img.image_name) is True
    assert await board.aunstar_image(img.image_name) is True
    assert not (await client.images.aget_image(img.image_name)).starred
    both = [from_bytes.image_name, from_handle.image_name]
    assert sorted(await client.images.astar_images(both)) == sorted(both)
    assert sorted(await client.images.aunstar_images(both)) == sorted(both)

    assert await board.aremove_image(img.image_name) is True
    assert (await client.images.aget_image(img.image_name)).board_id in (None, "none")
    assert img.image_name not in await board.alist_image_names()
    assert await board.aadd_image(img.image_name) is True
    assert (await client.images.aget_image(img.image_name)).board_id == board.board_id
    unc = client.board_repo.get_uncategorized_handle()
    assert await board.amove_image_to(img.image_name, None) is True
    assert img.image_name in await unc.alist_image_names()
    await client.images.aadd_to_board(img.image_name, board.board_id)
    await client.images.aremove_from_board(from_handle.image_name)
    assert set(await board.alist_image_names()) == {img.image_name, from_bytes.image_name}

    assert await board.adelete_image(img.image_name) is True
    assert await client.images.atry_get_image(img.image_name) is None
    assert await client.images.adelete_image(from_bytes.image_name) is True
    assert await client.images.adelete_images([from_handle.image_name]) == [from_handle.image_name]
    assert await board.alist_image_names() == []


async def test_many_at_once_on_one_transport(client: InvokeAIClient, board: BoardHandle) -> None:
    colors = ["red", "green", "blue", "white", "black", "yellow", "cyan", "magenta", "gray", "navy"]
    uploaded = await asyncio.gather(
        *(
            board.aupload_image_data(png_bytes(c, (8 + i, 8)), f"{c}.png")
            for i, c in enumerate(colors)
        )
    )
    names = [img.image_name for img in uploaded]
    assert len(set(names)) == len(colors)
    assert sorted(await board.alist_image_names()) == sorted(names)
    assert [img.width for img in uploaded] == [8 + i for i in range(len(colors))]

    # downloads, reads and stars at once, each answer the right one for its name
    downloads, records, starred = await asyncio.gather(
        asyncio.gather(*(client.images.adownload_image(n) for n in names)),
        asyncio.gather(*(client.images.aget_image(n) for n in names)),
        asyncio.gather(*(board.astar_image(n) for n in names)),
    )
    for i, (data, record) in enumerate(zip(downloads, records, strict=True)):
        assert pixels(data) == pixels(png_bytes(colors[i], (8 + i, 8)))
        assert record.image_name == names[i]
    assert starred == [True] * len(colors)
    assert all(r.starred for r in await asyncio.gather(*map(client.images.aget_image, names)))

    # one async transport for this loop, whatever the number of requests
    assert client.async_http() is client.async_http()
    assert sorted(await client.images.adelete_images(names)) == sorted(names)


# ---------------------------------------------------------------------------- errors


async def test_errors_are_the_sync_ones(
    client: InvokeAIClient, board: BoardHandle, tmp_path: Path
) -> None:
    repo, images = client.board_repo, client.images
    gone = unique("no-such-board")
    err = await same_error(lambda: repo.get_board(gone), repo.aget_board(gone))
    assert isinstance(err, BoardError) and "no board with id" in str(err)
    await same_error(lambda: repo.get_board_handle(gone), repo.aget_board_handle(gone))
    await same_error(lambda: repo.delete_board(gone), repo.adelete_board(gone))
    await same_error(lambda: repo.delete_board("none"), repo.adelete_board("none"))
    await same_error(
        lambda: repo.update_board(gone, board_name="x"), repo.aupdate_board(gone, board_name="x")
    )
    err = await same_error(
        lambda: repo.get_board_handle_by_name(gone), repo.aget_board_handle_by_name(gone)
    )
    assert "no board named" in str(err)
    await same_error(lambda: repo.create_board("  "), repo.acreate_board("  "))

    missing = "no-such-image.png"
    err = await same_error(lambda: images.get_image(missing), images.aget_image(missing))
    assert isinstance(err, NotFoundError)
    await same_error(lambda: images.download_image(missing), images.adownload_image(missing))
    await same_error(lambda: images.delete_image(missing), images.adelete_image(missing))
    await same_error(lambda: board.get_image(missing), board.aget_image(missing))
    err = await same_error(lambda: board.add_image(missing), board.aadd_image(missing))
    assert isinstance(err, BoardError) and "no image with that name" in str(err)
    no_file = tmp_path / "missing.png"
    await same_error(lambda: board.upload_image(no_file), board.aupload_image(no_file))
    await same_error(lambda: images.list_images(limit=101), images.alist_images(limit=101))

    img = await client.images.aupload_image(png_bytes(), filename="u.png")  # uncategorized
    err = await same_error(
        lambda: board.remove_image(img.image_name), board.aremove_image(img.image_name)
    )
    assert isinstance(err, BoardError) and "is on board 'none'" in str(err)
    await same_error(
        lambda: board.delete_image(img.image_name), board.adelete_image(img.image_name)
    )
    await same_error(
        lambda: board.move_image_to(img.image_name, gone),
        board.amove_image_to(img.image_name, gone),
    )
    assert await client.images.adelete_image(img.image_name) is True


# ---------------------------------------------------------------------------- models


def write_embedding(path: Path) -> Path:
    """A tiny, unique sd-1 embedding the server's probe accepts."""
    rng = np.random.default_rng()
    save_file({"emb_params": rng.standard_normal((2, 768)).astype(np.float32)}, str(path))
    return path


async def test_model_lookups(client: InvokeAIClient) -> None:
    repo = client.dnn_model_repo
    models = await repo.alist_models()
    assert isinstance(models, list) and all(isinstance(m, IvkDnnModel) for m in models)
    assert models == repo.list_models()
    assert await repo.alist_models(type="main") == repo.list_models(type="main")
    assert await repo.aget_model_by_key("no-such-key") is None
    assert await repo.aget_model_by_key("") is None
    assert await repo.aget_model_by_hash("blake3:nope") is None
    assert await repo.aget_model_by_attributes("nope", "sd-1", "embedding") is None
    assert await repo.aget_model_by_attributes("nope", "future-base", "embedding") is None

    err = await same_error(
        lambda: repo.require_model("no-such-key"), repo.arequire_model("no-such-key")
    )
    assert isinstance(err, ModelNotFoundError)
    await same_error(lambda: repo.delete_model("no-such-key"), repo.adelete_model("no-such-key"))
    err = await same_error(
        lambda: repo.list_models(base="no-such-base"), repo.alist_models(base="no-such-base")
    )
    assert isinstance(err, ModelError) and "filters" in str(err)
    await same_error(lambda: repo.get_install_job(987654), repo.aget_install_job(987654))


async def test_model_install_find_delete(client: InvokeAIClient, tmp_path: Path) -> None:
    repo = client.dnn_model_repo
    name = unique("ivk-async-embedding")
    job = await repo.ainstall_model(
        write_embedding(tmp_path / "a.safetensors"), config={"name": name}, timeout=120
    )
    model = job.model
    assert model is not None and model.name == name
    try:
        assert await repo.aget_model_by_key(model.key) == model
        assert (await repo.arequire_model(model.key)).key == model.key
        assert [m.key for m in await repo.alist_models(name=name)] == [model.key]
        assert [
            m.key for m in await repo.alist_models(base="sd-1", type="embedding", name=name)
        ] == [model.key]
        assert (await repo.aget_model_by_hash(model.hash)) == model
        assert (await repo.aget_model_by_attributes(name, "sd-1", "embedding")) == model
    finally:
        assert await repo.adelete_model(model.key) is True
    assert await repo.aget_model_by_key(model.key) is None

    later = await repo.ainstall_model(write_embedding(tmp_path / "b.safetensors"), wait=False)
    assert (await repo.aget_install_job(later.id)).id == later.id
    done = await repo.await_for_install(later.id, timeout=120)
    assert done.status == "completed" and done.model is not None
    assert await repo.adelete_model(done.model.key) is True
    await same_error(
        lambda: repo.install_model(tmp_path / "missing.safetensors"),
        repo.ainstall_model(tmp_path / "missing.safetensors"),
    )
    with pytest.raises(ModelInstallError, match="no such file"):
        await repo.ainstall_model(tmp_path / "missing.safetensors")


async def test_a_cancelled_call_leaves_the_client_usable(
    client: InvokeAIClient, board: BoardHandle
) -> None:
    img = await board.aupload_image_data(png_bytes(), "c.png")
    task = asyncio.ensure_future(client.images.adownload_image(img.image_name))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await client.images.aget_image(img.image_name)).board_id == board.board_id
    assert client.images.get_image(img.image_name).board_id == board.board_id
