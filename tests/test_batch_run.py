"""BatchRun against real InvokeAI servers: one request per sweep, every image on disk.

Counts the HTTP requests the run makes (by wrapping the async transport on a real connection),
checks each manifest row against the ``field_values`` the server recorded for its item and
against the PNG itself.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from invokeai_py_client import InvokeAIClient
from invokeai_py_client._http import AsyncHttpTransport
from invokeai_py_client.exceptions import RunError
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run import BatchRun, Ledger, Progress, aresume, read_manifest
from invokeai_py_client.sweep import Sweep
from invokeai_py_client.workflow import WorkflowDefinition

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"


@pytest.fixture
def requests_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[tuple[str, str]]]:
    """Every async request made, as (method, path) -> count."""
    seen: Counter[tuple[str, str]] = Counter()
    original = AsyncHttpTransport.request

    async def spy(self: AsyncHttpTransport, method: str, path: str, **kw: Any) -> Any:
        seen[(method.upper(), path)] += 1
        return await original(self, method, path, **kw)

    monkeypatch.setattr(AsyncHttpTransport, "request", spy)
    yield seen


def blur(client: InvokeAIClient) -> Any:
    return client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(EXAMPLES / "blur.json")
    )


@pytest.mark.server
def test_3x4_sweep_is_one_request_12_items_12_files(
    client: InvokeAIClient, tmp_path: Path, requests_log: Counter[tuple[str, str]]
) -> None:
    sweep = Sweep().axis("Width", [32, 48, 64]).axis("Blur Radius", [1, 2, 3, 4])
    progress: list[Progress] = []
    run = BatchRun(client, blur(client), sweep, tmp_path / "out", on_progress=progress.append)
    assert run.count == 12
    result = run.run()
    assert result.ok, result
    assert (result.completed, result.images) == (12, 12)

    enqueues = [k for k in requests_log if k[1].endswith("/enqueue_batch")]
    assert enqueues == [("POST", "/api/v1/queue/default/enqueue_batch")]
    assert requests_log[enqueues[0]] == 1
    downloads = sum(n for (m, p), n in requests_log.items() if p.endswith("/full"))
    assert downloads == 12  # one request per image
    full_items = sum(n for (m, p), n in requests_log.items() if "items_by_ids" in p)
    assert full_items == 0  # events carried the image names

    rows = read_manifest(result.out_dir)
    assert len(rows) == 12
    assert sorted(r["run_index"] for r in rows) == list(range(12))
    assert len({r["path"] for r in rows}) == 12
    batch_ids = {r["batch_id"] for r in rows}
    assert len(batch_ids) == 1
    status = client.queue.batch_status(batch_ids.pop())
    assert (status["total"], status["completed"]) == (12, 12)
    seen_params = set()
    width_node = run.handle.input("Width").node_id  # type: ignore[attr-defined]
    radius_node = run.handle.input("Blur Radius").node_id  # type: ignore[attr-defined]
    for r in rows:
        item = client.queue.get_item(r["item_id"])
        fv = {(v["node_path"], v["field_name"]): v["value"] for v in item["field_values"]}
        width = fv[(width_node, "width")]
        radius = fv[(radius_node, "radius")]
        assert r["params"] == {"Width": width, "Blur Radius": radius}
        assert r["param_indices"] == {"0": width, "3": radius}
        assert r["status"] == "completed" and r["node_label"] == "Output"
        with Image.open(result.out_dir / r["path"]) as im:
            assert im.size == (width, 64)
        assert f"width-{width}_" in r["path"]
        seen_params.add((width, radius))
    assert len(seen_params) == 12
    assert progress[-1].done == 12 and progress[-1].remaining == 0

    info = json.loads((result.out_dir / "run.json").read_text())
    assert [a["name"] for a in info["axes"]] == ["Width", "Blur Radius"]
    assert info["axes"][0]["values"] == [32, 48, 64]
    assert info["groups"] == [["Width"], ["Blur Radius"]]
    csv_lines = (result.out_dir / "manifest.csv").read_text().splitlines()
    assert len(csv_lines) == 13 and "param:Width" in csv_lines[0]


@pytest.mark.server
def test_failed_items_are_in_the_manifest_with_the_server_error(
    client: InvokeAIClient, tmp_path: Path
) -> None:
    wf = client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(EXAMPLES / "crop_fail.json")
    )
    result = BatchRun(client, wf, Sweep().axis("Crop Width", [32, 2147483648]), tmp_path).run()
    assert (result.completed, result.failed, result.ok) == (1, 1, False)
    rows = {r["status"]: r for r in read_manifest(tmp_path)}
    assert rows["failed"]["error_type"] == "OverflowError"
    assert rows["failed"]["path"] is None
    assert rows["completed"]["params"] == {"Crop Width": 32}


@pytest.mark.server
async def test_cancel_stops_and_cancels_on_the_server(
    client: InvokeAIClient, tmp_path: Path
) -> None:
    sweep = Sweep().axis("Width", list(range(8, 208))).axis("Blur Radius", [0.5])
    run = BatchRun(client, blur(client), sweep, tmp_path)
    task = asyncio.create_task(run.arun())
    async for p in run.progress():
        if p.done >= 2:
            run.cancel()
            break
    result = await task
    assert result.cancelled and not result.ok
    assert result.completed < 200
    ledger = Ledger.open(tmp_path)
    [batch] = ledger.batches()
    status = client.queue.batch_status(batch.batch_id)
    assert status["pending"] == 0 and status["in_progress"] == 0
    assert status["canceled"] > 0
    rows = read_manifest(tmp_path)
    assert {r["status"] for r in rows} <= {"completed", "canceled"}
    on_disk = {p.name for p in (tmp_path / "images").iterdir()}
    assert {Path(r["path"]).name for r in rows if r["path"]} == on_disk

    # resume completes a cancelled run: canceled items are retried, the rest is sent
    again = await aresume(tmp_path, client=client)
    assert again.ok, again
    rows = read_manifest(tmp_path)
    assert len(rows) == 200 and {r["status"] for r in rows} == {"completed"}
    assert len(list((tmp_path / "images").iterdir())) == 200


@pytest.mark.slow
def test_small_queue_forces_chunks_and_everything_completes(tmp_path: Path) -> None:
    with (
        LocalServer(tmp_path / "root", fast=True, config={"max_queue_size": 5}) as srv,
        InvokeAIClient.from_url(srv.url) as client,
    ):
        sweep = Sweep().axis("Width", [16, 24, 32]).axis("Blur Radius", [1, 2, 3, 4])
        result = BatchRun(client, blur(client), sweep, tmp_path / "out").run()
        assert result.ok and result.images == 12
        ledger = Ledger.open(tmp_path / "out")
        batches = ledger.batches()
        assert len(batches) >= 3  # 5 at a time at most
        assert sum(b.enqueued or 0 for b in batches) == 12
        rows = read_manifest(tmp_path / "out")
        assert sorted(r["run_index"] for r in rows) == list(range(12))
        for r in rows:
            with Image.open(tmp_path / "out" / r["path"]) as im:
                assert im.size[0] == r["params"]["Width"]


@pytest.mark.server
def test_gui_batch_node_sweep_and_board(client: InvokeAIClient, tmp_path: Path) -> None:
    wf = client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(EXAMPLES / "batch_width.json")
    )
    board = client.http.request(
        "POST", "/api/v1/boards/", params={"board_name": f"sweep-{tmp_path.name}"}
    ).json()["board_id"]
    run = BatchRun(client, wf, Sweep().axis("Height", [16, 24]), tmp_path, board=board)
    assert run.count == 3 * 2  # the Integer Batch node's 3 widths x the swept heights
    result = run.run()
    assert result.ok and result.images == 6
    rows = read_manifest(tmp_path)
    sizes = set()
    for r in rows:
        assert r["board_id"] == board
        with Image.open(tmp_path / r["path"]) as im:
            assert im.size == (r["params"]["Integers"], r["params"]["Height"])
            sizes.add(im.size)
    assert sizes == {(w, h) for w in (32, 48, 64) for h in (16, 24)}
    names = client.http.get_json(f"/api/v1/boards/{board}/image_names")
    assert {r["image_name"] for r in rows} <= set(names)


@pytest.mark.server
def test_local_images_are_uploaded_once_each(
    client: InvokeAIClient, tmp_path: Path, requests_log: Counter[tuple[str, str]]
) -> None:
    files = []
    for i, colour in enumerate(["red", "green", "red"]):  # the third is a copy of the first
        path = tmp_path / f"in{i}.png"
        Image.new("RGB", (40 + 8 * (i % 2), 40), colour).save(path)
        files.append(path)
    wf = client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(EXAMPLES / "img2img.json")
    )
    out = tmp_path / "out"
    result = BatchRun(client, wf, Sweep().images("Source Image", files), out).run()
    assert result.ok and result.images == 3
    assert requests_log[("POST", "/api/v1/images/upload")] == 2  # deduplicated by content
    rows = read_manifest(out)
    assert sorted(r["params"]["Source Image"] for r in rows) == ["in0.png", "in1.png", "in2.png"]
    assert all("source-image-in" in r["path"] for r in rows)


@pytest.mark.server
def test_a_batch_the_server_refuses_is_a_run_error(client: InvokeAIClient, tmp_path: Path) -> None:
    run = BatchRun(client, blur(client), Sweep().axis("Width", [8, 16]), tmp_path)
    nodes = run.plan.template["batch"]["graph"]["nodes"]
    next(iter(nodes.values()))["type"] = "no_such_node"  # the server answers 422
    with pytest.raises(RunError, match="refused"):
        run.run()
    assert [b.state for b in Ledger.open(tmp_path).batches()] == ["absent"]
    assert {r["status"] for r in read_manifest(tmp_path)} == {"not_sent"}


@pytest.mark.slow
def test_two_servers_share_a_sweep_and_one_dies(tmp_path: Path) -> None:
    import threading

    # started one after the other: servers started from threads made this process's later
    # asyncio connections to them fail ("All connection attempts failed"), cause unknown
    servers = [LocalServer(tmp_path / f"root{i}", fast=True).start() for i in range(2)]
    clients = [InvokeAIClient.from_url(s.url) for s in servers]
    try:
        sweep = Sweep().axis("Width", list(range(16, 76))).axis("Blur Radius", [1])
        killed = threading.Event()

        def on_progress(p: Progress) -> None:
            if p.done >= 12 and not killed.is_set():
                killed.set()
                servers[1].kill()  # gone without a word, as a crash would

        run = BatchRun(clients, blur(clients[0]), sweep, tmp_path / "out", on_progress=on_progress)
        result = run.run()
        assert killed.is_set()
        assert result.ok and result.images == 60, result
        rows = read_manifest(tmp_path / "out")
        assert sorted(r["run_index"] for r in rows) == list(range(60))
        assert {r["server"] for r in rows} == {servers[0].url, servers[1].url}
        names = sorted(p.name for p in (tmp_path / "out" / "images").iterdir())
        assert len(names) == 60 and names == sorted(Path(r["path"]).name for r in rows)
        for r in rows:
            with Image.open(tmp_path / "out" / r["path"]) as im:
                assert im.size[0] == r["params"]["Width"]
    finally:
        for c in clients:
            c.close()
        for s in servers:
            s.stop()


@pytest.mark.server
async def test_cancel_can_leave_the_items_running_and_resume_collects_them(
    client: InvokeAIClient, tmp_path: Path
) -> None:
    sweep = Sweep().axis("Width", list(range(8, 68))).axis("Blur Radius", [0.5])
    run = BatchRun(client, blur(client), sweep, tmp_path, leave_running_on_cancel=True)
    run._hooks["after_enqueue"] = run.cancel  # like `ivk run --detach`
    result = await run.arun()
    assert result.cancelled
    [batch] = Ledger.open(tmp_path).batches()
    assert batch.state == "sent" and len(batch.item_ids) == 60
    status = client.queue.batch_status(batch.batch_id)
    assert status["canceled"] == 0  # nothing was canceled on the server
    done = await aresume(tmp_path, client=client)
    assert done.ok and done.images == 60


@pytest.mark.server
async def test_submit_sends_every_run_returns_and_resume_collects_them(
    client: InvokeAIClient, tmp_path: Path
) -> None:
    sweep = Sweep().axis("Width", list(range(8, 68))).axis("Blur Radius", [0.5])
    run = BatchRun(client, blur(client), sweep, tmp_path / "out")
    submitted = await run.asubmit()
    assert not submitted.cancelled and submitted.total == 60
    assert submitted.completed + submitted.remaining == 60
    [batch] = Ledger.open(tmp_path / "out").batches()
    assert batch.state == "sent" and len(batch.item_ids) == 60
    status = client.queue.batch_status(batch.batch_id)
    assert status["canceled"] == 0  # left queued on the server, not canceled
    assert "after_enqueue" not in run._hooks
    done = await aresume(tmp_path / "out", client=client)
    assert done.ok and done.images == 60
    assert len(list((tmp_path / "out" / "images").glob("*.png"))) == 60
    # several servers: tests/test_multi_detach.py


def test_file_names_are_stable_readable_and_distinct() -> None:
    from invokeai_py_client.run._naming import file_name

    names = {
        file_name(r, 4, [("Width", 32 + r % 3), ("Blur Radius", 2.5), ("Prompt", "a/b c?")])
        for r in range(300)
    }
    assert len(names) == 300
    assert file_name(7, 4, [("Width", 48), ("Blur Radius", 4.0)]) == (
        "0007_width-48_blur-radius-4.png"
    )
    assert file_name(7, 4, [], node_label="Save Blurred", ordinal=1) == "0007_save-blurred_2.png"
    assert "/" not in file_name(1, 4, [("Prompt", "a/b\\c")])
