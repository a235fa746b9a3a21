"""The run engine's bulk zip downloads (``run/_bulk.py``) and their fallback to single GETs.

Against the real server: a run whose images come in one zip (same file names, ledger rows and
bytes as one GET per image), a zip the server fails to build (``bulk_download_error``: one of
its images does not exist), and a run killed while writing a zip's images, then resumed.

Two cases use a spy on the async transport, because a real single-user server cannot be made
to do them on demand: refusing the bulk endpoint (403, as a multi-user server does for an
image the caller may not read; 404 on a server without the endpoint), and sending a broken
(truncated) zip. Every other request of those runs goes to the real server.

``MAX_WAIT`` is raised in these tests so that no image waits out a timer: the first goes at
once, the others as one zip when the run has nothing left to make, whatever the machine's
speed. Request counts are bounds, not exact: under load a GET may be retried.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from invokeai_py_client import InvokeAIClient
from invokeai_py_client._http import AsyncHttpTransport
from invokeai_py_client.exceptions import APIError, NotFoundError
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run import BatchRun, Ledger, _bulk, read_manifest, resume
from invokeai_py_client.run._state import EngineState
from invokeai_py_client.sweep import Sweep
from invokeai_py_client.workflow import WorkflowDefinition

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
RUNS = 2 * _bulk.BULK_MIN  # the first image alone, then (at the end) one zip of the rest
ZIP_POST = ("POST", "/api/v1/images/download")


def sweep() -> Sweep:
    return Sweep().axis("Width", list(range(16, 16 + RUNS))).axis("Blur Radius", [1])


def blur(client: InvokeAIClient) -> Any:
    return client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(EXAMPLES / "blur.json")
    )


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Images wait for the end of the run (not for a time) before they are fetched."""
    monkeypatch.setattr(_bulk, "MAX_WAIT", 120.0)


@pytest.fixture
def requests_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[tuple[str, str]]]:
    """Every async request made, as (method, path) -> count; zip GETs as one path."""
    seen: Counter[tuple[str, str]] = Counter()
    original = AsyncHttpTransport.request

    async def spy(self: AsyncHttpTransport, method: str, path: str, **kw: Any) -> Any:
        key = "/api/v1/images/download/*.zip" if path.endswith(".zip") else path
        seen[(method.upper(), "/full" if path.endswith("/full") else key)] += 1
        return await original(self, method, path, **kw)

    monkeypatch.setattr(AsyncHttpTransport, "request", spy)
    yield seen


def check_run(client: InvokeAIClient, out: Path) -> list[str]:
    """Every planned run has its image, intact, recorded in the ledger; no leftovers."""
    rows = read_manifest(out)
    assert sorted(r["run_index"] for r in rows) == list(range(RUNS))
    assert all(r["status"] == "completed" for r in rows)
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == sorted(Path(r["path"]).name for r in rows)  # no .part files either
    files = Ledger.open(out).files()
    assert len(files) == RUNS
    for f in files.values():
        data = (out / f.path).read_bytes()
        assert len(data) == f.bytes
        assert data == client.images.download_image(f.image_name)
    for r in rows:
        with Image.open(out / r["path"]) as im:
            assert im.size == (r["params"]["Width"], 64)
    return names


@pytest.mark.server
def test_images_come_in_one_zip_with_the_same_files_as_single_gets(
    client: InvokeAIClient,
    tmp_path: Path,
    patient: None,
    requests_log: Counter[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wf = blur(client)
    result = BatchRun(client, wf, sweep(), tmp_path / "bulk").run()
    assert result.ok and result.images == RUNS, result
    assert requests_log[ZIP_POST] >= 1
    assert requests_log[("GET", "/api/v1/images/download/*.zip")] == requests_log[ZIP_POST]
    # the first image at once, the others in one zip (a GET retried under load counts twice)
    assert 1 <= requests_log[("GET", "/full")] <= RUNS - _bulk.BULK_MIN
    zipped = check_run(client, tmp_path / "bulk")

    requests_log.clear()
    monkeypatch.setattr(EngineState, "bulk_downloads", False)
    result = BatchRun(client, wf, sweep(), tmp_path / "single").run()
    assert result.ok and result.images == RUNS, result
    assert requests_log[ZIP_POST] == 0
    assert requests_log[("GET", "/full")] >= RUNS
    assert check_run(client, tmp_path / "single") == zipped


@pytest.mark.server
async def test_a_zip_the_server_cannot_build_falls_back_to_single_gets(
    client: InvokeAIClient, patient: None, requests_log: Counter[tuple[str, str]]
) -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, format="PNG")
    names = [
        client.images.upload_image(png.getvalue(), is_intermediate=True).image_name
        for _ in range(_bulk.BULK_MIN)
    ]
    missing = "no-such-image-0000.png"  # the server's zip job fails: bulk_download_error
    assert client.events.wait_connected(10)
    fetcher = _bulk.ImageFetcher(client, idle=lambda: True)
    fetcher._started = True  # no "first image at once": all of them wait for one zip
    try:
        got = await asyncio.gather(
            *(fetcher.fetch(n) for n in [*names, missing]), return_exceptions=True
        )
        expected = [client.images.download_image(n) for n in names]
    finally:
        client.images.delete_images(names)
    assert isinstance(got[-1], NotFoundError)
    assert got[:-1] == expected
    assert requests_log[ZIP_POST] == 1
    assert requests_log[("GET", "/api/v1/images/download/*.zip")] == 0  # error event: no GET
    assert requests_log[("GET", "/full")] >= len(names) + 1
    assert fetcher.stats["zip_failures"] == 1 and fetcher.bulk  # one failure: bulk stays on


@pytest.mark.server
@pytest.mark.parametrize("status", [403, 404])
def test_a_refused_bulk_endpoint_means_single_gets_for_the_rest_of_the_run(
    status: int,
    client: InvokeAIClient,
    tmp_path: Path,
    patient: None,
    requests_log: Counter[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # mock: a single-user server never answers 403 here; a server without the endpoint 404s
    real = AsyncHttpTransport.request
    refused: list[str] = []

    async def refuse(self: AsyncHttpTransport, method: str, path: str, **kw: Any) -> Any:
        if (method.upper(), path) == ZIP_POST:
            refused.append(path)
            raise APIError("refused", status_code=status, method=method, url=path)
        return await real(self, method, path, **kw)

    monkeypatch.setattr(AsyncHttpTransport, "request", refuse)
    result = BatchRun(client, blur(client), sweep(), tmp_path / "out").run()
    assert result.ok and result.images == RUNS, result
    assert len(refused) == 1  # tried once, never again in this run
    assert requests_log[("GET", "/full")] >= RUNS
    check_run(client, tmp_path / "out")


@pytest.mark.server
def test_a_broken_zip_leaves_no_partial_files_and_its_images_come_singly(
    client: InvokeAIClient,
    tmp_path: Path,
    patient: None,
    requests_log: Counter[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # mock: the real server's zip, cut in half on the way (a real server sends it whole)
    real = AsyncHttpTransport.request

    async def truncate(self: AsyncHttpTransport, method: str, path: str, **kw: Any) -> Any:
        resp = await real(self, method, path, **kw)
        if path.endswith(".zip"):
            return httpx.Response(200, content=resp.content[: len(resp.content) // 2])
        return resp

    monkeypatch.setattr(AsyncHttpTransport, "request", truncate)
    result = BatchRun(client, blur(client), sweep(), tmp_path / "out").run()
    assert result.ok and result.images == RUNS, result
    assert requests_log[ZIP_POST] >= 1
    assert requests_log[("GET", "/full")] >= RUNS  # the first + the zip's images again
    check_run(client, tmp_path / "out")


CHILD = r"""
import sys, time
from invokeai_py_client import InvokeAIClient
from invokeai_py_client.run import BatchRun, _bulk
from invokeai_py_client.sweep import Sweep
from invokeai_py_client.workflow import WorkflowDefinition

url, out, example, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
_bulk.MAX_WAIT = 120.0
client = InvokeAIClient.from_url(url)
wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file(example))
run = BatchRun(client, wf, Sweep().axis("Width", list(range(16, 16 + runs))).axis(
    "Blur Radius", [1]), out)
calls = {"n": 0}

def mid_download():
    calls["n"] += 1
    if calls["n"] == 5:  # four images written: the first (alone) and three of the zip
        print("PAUSED", flush=True)
        time.sleep(600)

run._hooks["mid_download"] = mid_download
run.run()
print("FINISHED", flush=True)
"""


@pytest.mark.server
def test_killed_while_writing_a_zip_then_resume_fetches_the_rest(
    server: LocalServer, client: InvokeAIClient, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), server.url, str(out), str(EXAMPLES / "blur.json"), str(RUNS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            if line.strip() == "PAUSED":
                break
            assert time.monotonic() < deadline, "child did not reach the pause point"
        else:
            pytest.fail(f"child ended without pausing (rc={proc.wait()})")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    ledger = Ledger.open(out)
    assert len(ledger.files()) == 4  # the rest of the zip's images were never written
    ledger.close()
    assert len(list((out / "images").iterdir())) == 4

    result = resume(out, client=client)
    assert result.ok and result.images == RUNS, result
    check_run(client, out)


@pytest.mark.server
async def test_the_bulk_room_is_joined_again_after_a_reconnect(
    client: InvokeAIClient, patient: None, requests_log: Counter[tuple[str, str]]
) -> None:
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(png, format="PNG")
    names = [
        client.images.upload_image(png.getvalue(), is_intermediate=True).image_name
        for _ in range(2 * _bulk.BULK_MIN)
    ]
    half = _bulk.BULK_MIN
    hub = client.events
    assert hub.wait_connected(10)
    before = hub.stats["connects"]
    fetcher = _bulk.ImageFetcher(client, idle=lambda: True)
    fetcher._started = True  # all of them wait for one zip
    first = await asyncio.gather(*(fetcher.fetch(n) for n in names[:half]))
    assert fetcher._joined and fetcher.stats["zips"] == 1

    hub.drop_connection()  # the zips go on over the new socket
    deadline = time.monotonic() + 20
    while hub.stats["connects"] == before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert hub.stats["connects"] > before and hub.wait_connected(10)
    zips = fetcher.stats["zips"]
    again = await asyncio.gather(*(fetcher.fetch(n) for n in names[half:]))
    # the zip's completion event reached the new socket: no fallback to single GETs
    assert fetcher.stats["zips"] == zips + 1 and fetcher.stats["zip_failures"] == 0
    assert fetcher.stats["gets"] == 0
    assert first[0] == client.images.download_image(names[0])
    assert again[-1] == client.images.download_image(names[-1])


def test_images_that_come_slowly_are_not_held_back_for_a_zip() -> None:
    fetcher = _bulk.ImageFetcher.__new__(_bulk.ImageFetcher)
    fetcher.bulk = True
    fetcher._gap = None  # no rate measured yet: nothing to wait for
    assert not fetcher._zip_soon(1, 0.0)
    fetcher._gap = 0.5  # a stock server: two images a second, a zip would never fill
    assert not fetcher._zip_soon(1, 0.0)
    fetcher._gap = 0.02  # a fast server: fifty a second, a zip fills within the wait
    assert fetcher._zip_soon(1, 0.0)
    assert not fetcher._zip_soon(1, _bulk.MAX_WAIT - 0.1)  # too little time left to fill
    fetcher.bulk = False
    assert not fetcher._zip_soon(100, 0.0)


@pytest.mark.server
def test_a_joined_room_is_joined_again_after_a_reconnect(client: InvokeAIClient) -> None:
    # single-user InvokeAI sends bulk download events to the room "default", which is also
    # the default queue's room; a hub on another queue only gets them through join_room
    from invokeai_py_client.events import EventHub

    png = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(png, format="PNG")
    name = client.images.upload_image(png.getvalue(), is_intermediate=True).image_name
    hub = EventHub(client, queue_id=f"elsewhere-{time.time_ns()}")
    try:
        hub.join_room("subscribe_bulk_download", {"bulk_download_id": "default"}).result(10)
        assert hub.wait_connected(10)
        before = hub.stats["connects"]
        hub.drop_connection()
        deadline = time.monotonic() + 20
        while hub.stats["connects"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hub.stats["connects"] > before
        with hub.subscribe(all_events=True) as sub:
            answer = client.http.request(
                "POST", "/api/v1/images/download", json={"image_names": [name]}
            ).json()
            wanted = answer["bulk_download_item_name"]
            seen = []
            while time.monotonic() < deadline + 10:
                evt = sub.get(timeout=1)
                if evt is not None:
                    seen.append(evt)
                if any(
                    e.get("bulk_download_item_name") == wanted
                    and e["event_type"] in ("bulk_download_complete", "bulk_download_error")
                    for e in seen
                ):
                    break
        done = [e for e in seen if e.get("bulk_download_item_name") == wanted]
        assert done and done[-1]["event_type"] == "bulk_download_complete"
    finally:
        hub.close()
