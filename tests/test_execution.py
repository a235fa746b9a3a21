"""The seeds' execution API on workflow handles, against the real server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.exceptions import (
    InputValidationError,
    JobCanceledError,
    JobFailedError,
    JobTimeoutError,
    NoSubmissionError,
)
from invokeai_py_client.workflow import WorkflowDefinition, WorkflowHandle

pytestmark = pytest.mark.server

PAUSE = "/api/v1/queue/default/processor/pause"
RESUME = "/api/v1/queue/default/processor/resume"


def load(client: InvokeAIClient, examples_dir: Path, name: str) -> WorkflowHandle:
    return client.workflow_repo.create_workflow(WorkflowDefinition.from_file(examples_dir / name))


@pytest.fixture
def paused(client: InvokeAIClient) -> Iterator[InvokeAIClient]:
    """The queue processor paused (items stay pending) and resumed afterwards."""
    client.http.request("PUT", PAUSE)
    try:
        yield client
    finally:
        client.http.request("PUT", RESUME)


def test_submit_and_wait_blur(client: InvokeAIClient, examples_dir: Path, tmp_path: Path) -> None:
    wf = load(client, examples_dir, "blur.json")
    wf.set("Width", 48)
    submission = wf.submit_sync()
    assert set(submission) >= {"batch_id", "item_ids", "enqueued", "session_id"}
    assert submission["enqueued"] == 1 and len(submission["item_ids"]) == 1
    seen: list[dict[str, Any]] = []
    item = wf.wait_for_completion_sync(timeout=60, progress_callback=seen.append)
    assert item.get("status") == "completed"
    assert item["session_id"] == submission["session_id"]
    assert any(p["event_type"] == "invocation_complete" for p in seen)
    assert all("status" in p and "progress" in p for p in seen)
    paths = wf.download_outputs(item, tmp_path)
    assert len(paths) == 1 and Image.open(paths[0]).size == (48, 64)
    assert wf.download_image(paths[0].name) == paths[0].read_bytes()


def test_completion_noticed_well_before_the_poll_interval(
    client: InvokeAIClient, examples_dir: Path
) -> None:
    wf = load(client, examples_dir, "blur.json")
    assert client.events.wait_connected(10)
    gaps = []
    for _ in range(3):
        client.http.request("PUT", PAUSE)
        try:
            wf.submit_sync()
            # resume only once the waiter is waiting, so the item ends during the wait
            timer = threading.Timer(0.5, client.http.request, args=("PUT", RESUME))
            timer.start()
            item = wf.wait_for_completion_sync(poll_interval=5.0, timeout=30)
            returned = datetime.now()
            timer.join()
        finally:
            client.http.request("PUT", RESUME)
        completed = datetime.strptime(item["completed_at"], "%Y-%m-%d %H:%M:%S.%f")
        gaps.append((returned - completed).total_seconds())
    print(f"completion-notice gaps (s): {[round(g, 3) for g in gaps]}")
    assert max(gaps) < 2.0  # well under poll_interval=5: events, not polling


def test_failing_node_raises_with_server_error(client: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(client, examples_dir, "crop_fail.json")
    wf.submit_sync()
    with pytest.raises(JobFailedError) as info:
        wf.wait_for_completion_sync(timeout=60)
    err = info.value
    assert err.error_type == "OverflowError"
    assert "signed integer" in (err.error_message or "")
    assert "Traceback" in (err.error_traceback or "")
    assert err.item is not None and err.item["status"] == "failed"


def test_cancel(paused: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(paused, examples_dir, "blur.json")
    wf.submit_sync()
    assert wf.cancel()["canceled"] == 1
    with pytest.raises(JobCanceledError):
        wf.wait_for_completion_sync(timeout=30)
    assert wf.cancel()["canceled"] == 0  # already final: nothing to cancel


async def test_acancel(paused: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(paused, examples_dir, "blur.json")
    await wf.submit()
    assert (await wf.acancel())["canceled"] == 1
    with pytest.raises(JobCanceledError):
        await wf.wait_for_completion(timeout=30)


def test_cancel_many_items(paused: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(paused, examples_dir, "blur.json")
    wf.submit_sync(runs=3)
    assert wf.cancel()["canceled"] == 3
    with pytest.raises(JobCanceledError):
        wf.wait_for_completion_sync(timeout=30)
    assert {i["status"] for i in wf.finished_items} == {"canceled"}


def test_timeout_says_how_to_reattach_then_reattach(
    client: InvokeAIClient, examples_dir: Path
) -> None:
    wf = load(client, examples_dir, "blur.json")
    client.http.request("PUT", PAUSE)
    try:
        submission = wf.submit_sync(runs=2)
        with pytest.raises(JobTimeoutError) as info:
            wf.wait_for_completion_sync(timeout=0.3)
        assert "attach(" in str(info.value) and isinstance(info.value, TimeoutError)
    finally:
        client.http.request("PUT", RESUME)
    by_batch = load(client, examples_dir, "blur.json")
    attached = by_batch.attach(batch_id=submission["batch_id"])
    assert attached["item_ids"] == submission["item_ids"]
    assert by_batch.wait_for_completion_sync(timeout=60)["status"] == "completed"
    assert len(by_batch.finished_items) == 2
    by_item = load(client, examples_dir, "blur.json")
    by_item.attach(item_id=submission["item_ids"][0])
    item = by_item.wait_for_completion_sync(timeout=60)
    assert item["item_id"] == submission["item_ids"][0]
    assert by_item.map_outputs_to_images(item)[-1]["image_names"]


def test_invalid_inputs_raise_before_any_request(
    client: InvokeAIClient, examples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wf = load(client, examples_dir, "img2img.json")  # Source Image has no value
    sent: list[str] = []
    real = client.http.request

    def counting(method: str, path: str, **kw: Any) -> Any:
        sent.append(f"{method} {path}")
        return real(method, path, **kw)

    monkeypatch.setattr(client.http, "request", counting)
    with pytest.raises(InputValidationError) as info:
        wf.submit_sync()
    assert "[0]" in str(info.value) and "Source Image" in str(info.value)
    with pytest.raises(InputValidationError):
        asyncio.run(wf.submit())
    assert sent == []
    with pytest.raises(NoSubmissionError):
        wf.wait_for_completion_sync(timeout=1)


def test_img2img_with_uploaded_image(client: InvokeAIClient, examples_dir: Path) -> None:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buf, format="PNG")
    up = client.board_repo.get_uncategorized_handle().upload_image_data(buf.getvalue(), "in.png")
    wf = load(client, examples_dir, "img2img.json")
    wf.set(0, up.image_name)
    wf.submit_sync()
    item = wf.wait_for_completion_sync(timeout=60)
    (out,) = [m for m in wf.map_outputs_to_images(item) if m["tier"] == "output"]
    img = Image.open(io.BytesIO(wf.download_image(out["image_names"][0])))
    assert img.size == (96, 80)


async def test_async_submit_with_callbacks(client: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(client, examples_dir, "blur.json")
    started: list[str] = []
    completed: list[str] = []
    progress: list[Any] = []

    async def on_complete(evt: dict[str, Any]) -> None:  # coroutine callbacks work too
        completed.append(evt["invocation_source_id"])

    result = await wf.submit(
        subscribe_events=True,
        on_invocation_started=lambda e: started.append(e["invocation_source_id"]),
        on_invocation_progress=lambda e: progress.append(e.get("progress")),
        on_invocation_complete=on_complete,
    )
    assert result["enqueued"] == 1
    done = await wf.wait_for_completion(timeout=60)
    await asyncio.sleep(0.05)
    assert done.get("status") == "completed"
    assert len(started) == 3 and len(completed) == 3
    assert set(completed) == {n.id for n in wf.definition.nodes.values()}


async def test_async_failure_raises(client: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(client, examples_dir, "crop_fail.json")
    errors: list[dict[str, Any]] = []
    await wf.submit(subscribe_events=True, on_invocation_error=errors.append)
    with pytest.raises(JobFailedError) as info:
        await wf.wait_for_completion(timeout=60)
    assert info.value.error_type == "OverflowError"
    await asyncio.sleep(0.1)
    assert errors and errors[0]["error_type"] == "OverflowError"


async def test_twenty_concurrent_waits_on_one_socket(
    client: InvokeAIClient, examples_dir: Path
) -> None:
    handles = [load(client, examples_dir, "blur.json") for _ in range(20)]
    for n, wf in enumerate(handles):
        wf.set("Width", 16 + n)

    async def run(wf: WorkflowHandle) -> dict[str, Any]:
        await wf.submit(subscribe_events=True)
        return await wf.wait_for_completion(timeout=120)

    items = await asyncio.gather(*(run(wf) for wf in handles))
    assert [i["status"] for i in items] == ["completed"] * 20
    assert len({i["item_id"] for i in items}) == 20
    assert client.events.stats["connects"] == 1  # one socket carried every wait


async def test_stream_events_until_final_status(client: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(client, examples_dir, "blur.json")
    events = [evt async for evt in wf.submit_sync_monitor_async()]
    types = [e.get("event_type") for e in events]
    assert "invocation_started" in types and "invocation_complete" in types
    assert types[-1] == "final_status" and events[-1]["status"] == "completed"
    assert events[-1]["queue_item"]["session"]["results"]

    failing = load(client, examples_dir, "crop_fail.json")
    events = [evt async for evt in failing.submit_sync_monitor_async()]
    assert events[-1]["status"] == "failed" and events[-1]["error_type"] == "OverflowError"
    # the failed node's own event trails the item's status: the stream still carries it
    assert "invocation_error" in [e.get("event_type") for e in events[:-1]]


def test_no_socket_at_all_still_completes_by_polling(
    client: InvokeAIClient, examples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # e.g. a reverse proxy that refuses websockets: the socket never comes up
    hub = client.events
    origin, _ = hub._socket_target()
    monkeypatch.setattr(hub, "_socket_target", lambda: (origin, "/no-such/socket.io"))
    wf = load(client, examples_dir, "blur.json")
    for _ in range(2):
        t0 = time.monotonic()
        wf.submit_sync()
        item = wf.wait_for_completion_sync(poll_interval=30, timeout=30)
        assert item["status"] == "completed"
        # neither the 30 s poll nor a wait per submit (a wide margin: a loaded CI box)
        assert time.monotonic() - t0 < 15.0
    assert not hub.connected and hub.last_error


def test_sync_submit_async_wait(client: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(client, examples_dir, "blur.json")
    wf.submit_sync()
    done = asyncio.run(wf.wait_for_completion(timeout=60))
    assert done["status"] == "completed"


def test_board_id_argument_routes_outputs(client: InvokeAIClient, examples_dir: Path) -> None:
    board = client.board_repo.create_board(f"submit-board-{time.time_ns()}")
    wf = load(client, examples_dir, "blur.json")
    wf.submit_sync(board_id=board.board_id)
    item = wf.wait_for_completion_sync(timeout=60)
    (out,) = [m for m in wf.map_outputs_to_images(item) if m["tier"] == "output"]
    assert out["board_id"] == board.board_id
    assert out["image_names"][0] in board.list_image_names()


# --------------------------------------------------------------------------- seeds' examples


def test_seed_unified_mapping_example(client: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(client, examples_dir, "two_boards.json")
    wf.submit_sync()
    # --- from the seeds (calls unchanged) ---
    # 1. Execute (assumes inputs already set)
    queue_item = wf.wait_for_completion_sync(timeout=180)
    # 2. Enumerate board-exposed output fields (these are IvkWorkflowInput objects)
    outputs = wf.list_outputs()
    output_index_by_node_id = {o.node_id: o.input_index for o in outputs}
    # 3. Runtime node -> image filenames
    mappings = wf.map_outputs_to_images(queue_item)
    # 4. Display per-node info (includes board + images)
    for m in mappings:
        node_id = m["node_id"]
        idx = output_index_by_node_id.get(node_id, -1)
        images = m.get("image_names") or []
        print(f"idx={idx:02d} node={node_id[:8]} board={m.get('board_id')} images={images}")
    # 5. Invert to input_index -> [image_names]
    index_to_images: dict[int, list[str]] = {}
    for m in mappings:
        idx = output_index_by_node_id.get(m["node_id"])
        if idx is None:
            continue
        for name in m.get("image_names") or []:
            index_to_images.setdefault(idx, []).append(name)
    print("Index to images:")
    for idx, names in sorted(index_to_images.items()):
        print(f" {idx:02d} -> {names}")
    # 6. Optional richer structure (node_id -> (input_index, first_image_name))
    images_by_node: dict[str, tuple[int, str]] = {}
    for m in mappings:
        idx = output_index_by_node_id.get(m["node_id"], -1)
        first_name = (m.get("image_names") or [""])[0]
        images_by_node[m["node_id"]] = (idx, first_name)
    for out in wf.list_outputs():
        print(out.node_id, getattr(out, "field_name", "board"))
    # --- end of seed ---
    assert sorted(index_to_images) == [1, 3]
    assert all(len(v) == 1 for v in index_to_images.values())


def test_seed_blocking_example_with_progress(client: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(client, examples_dir, "blur.json")
    prompt = wf.get_input_value(3)  # the seeds' "prompt" is index 0; here: Blur Radius
    if hasattr(prompt, "value"):
        prompt.value = 2.0
    submission = wf.submit_sync()
    print(f"Submitted batch: {submission['batch_id']}")
    print(f"Queue items: {submission['item_ids']}")

    seen: list[float] = []

    def on_progress(item):  # type: ignore[no-untyped-def]  # the seeds' code, as written
        status = item.get("status", "unknown")
        progress = item.get("progress", 0)
        print(f"Status: {status} ({progress * 100:.0f}%)")
        seen.append(progress)

    result = wf.wait_for_completion_sync(
        poll_interval=1.0, timeout=300.0, progress_callback=on_progress
    )
    print("Status:", result.get("status"))
    for m in wf.map_outputs_to_images(result):
        print(m["node_id"], m.get("image_names"))
    assert result.get("status") == "completed"
    assert seen and seen[-1] == 1.0


def test_seed_async_examples(client: InvokeAIClient, examples_dir: Path) -> None:
    wf = load(client, examples_dir, "blur.json")

    async def main() -> dict[str, Any]:
        field0 = wf.get_input_value(0)
        if hasattr(field0, "value"):
            field0.value = 40

        def on_progress(evt: dict[str, Any]) -> None:
            p = evt.get("progress")
            if p is not None:
                print(f"Progress: {p * 100:.0f}%")

        await wf.submit(subscribe_events=True, on_invocation_progress=on_progress)
        result = await wf.wait_for_completion(timeout=90)
        print("Completed with status:", result.get("status"))
        async for evt in wf.submit_sync_monitor_async():
            print(evt.get("event_type"), evt.get("status") or "")
        return result

    assert asyncio.run(main()).get("status") == "completed"
