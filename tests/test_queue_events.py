"""Queue endpoints and the one-socket event hub, against the real server."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from invokeai_py_client import InvokeAIClient
from invokeai_py_client._waiting import BATCH_GATE_MIN_ITEMS, _WaitState
from invokeai_py_client.events import EventHub
from invokeai_py_client.exceptions import EnqueueError, InvokeAIConnectionError, JobTimeoutError
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.queue import check_enqueue_result, prepare_enqueue_body
from invokeai_py_client.workflow import WorkflowDefinition


def _ct(resp: httpx.Response) -> dict[str, str]:
    return {"content-type": resp.headers.get("content-type", "application/json")}


def blur_body(client: InvokeAIClient, examples_dir: Path, runs: int = 1) -> dict[str, Any]:
    wf = client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(examples_dir / "blur.json")
    )
    return wf.build_payload(batch_id=str(uuid.uuid4()), runs=runs)


# --------------------------------------------------------------------------- pure parts


def test_prepare_enqueue_body_adds_batch_id_without_touching_input() -> None:
    body = {"batch": {"graph": {}, "runs": 1}}
    out = prepare_enqueue_body(body)
    assert out["batch"]["batch_id"] and "batch_id" not in body["batch"]
    assert out["prepend"] is False
    keep = prepare_enqueue_body({"batch": {"batch_id": "mine"}})
    assert keep["batch"]["batch_id"] == "mine"


def test_partial_enqueue_raises_unless_allowed() -> None:
    result = {"enqueued": 3, "requested": 5, "batch": {"batch_id": "b"}}
    with pytest.raises(EnqueueError, match="3 of 5"):
        check_enqueue_result(result, allow_partial=False)
    check_enqueue_result(result, allow_partial=True)


def test_socket_target_keeps_a_proxy_prefix() -> None:
    with InvokeAIClient.from_url("https://gpu.example:8443/invoke", api_key="k") as c:
        assert EventHub(c)._socket_target() == ("https://gpu.example:8443", "/invoke/ws/socket.io")


def test_wait_state_polls_with_backoff_only_when_disconnected() -> None:
    state = _WaitState([1, 2], poll_interval=5.0)
    assert state.take_checks() == ([1, 2], False)  # first check: the job may be over already
    assert state.take_checks() == ([], True)
    assert state.next_wait(connected=True) == 5.0
    waits = [state.next_wait(connected=False) for _ in range(8)]
    assert waits[0] < 0.1 and max(waits) <= 5.0 * 1.2 and waits[-1] > waits[0]
    state.on_event({"event_type": "queue_item_status_changed", "item_id": 2, "status": "failed"})
    state.on_event({"event_type": "queue_item_status_changed", "item_id": 9, "status": "failed"})
    assert state.take_checks() == ([2], True)
    state.on_event({"event_type": "queue_items_canceled", "canceled_item_ids": [1, 7]})
    assert state.take_checks() == ([1], True)
    state.on_event({"event_type": "hub_reconnected"})
    assert state.take_checks() == ([1, 2], False)


def test_batch_counts_gate_the_summary_reads() -> None:
    state = _WaitState(range(20), poll_interval=1.0)
    st = {"batch_id": "b", "completed": 3, "failed": 0, "canceled": 0, "total": 20}
    assert state.batches_unchanged([st]) is False  # first read: no baseline yet
    assert state.batches_unchanged([dict(st)]) is True
    assert state.batches_unchanged([{**st, "failed": 1}]) is False


# --------------------------------------------------------------------------- queue


@pytest.mark.server
def test_enqueue_read_and_status(client: InvokeAIClient, examples_dir: Path) -> None:
    body = blur_body(client, examples_dir, runs=2)
    result = client.queue.enqueue_batch(body)
    assert result["enqueued"] == result["requested"] == 2
    ids = sorted(result["item_ids"])
    done = list(client.events.iter_finished(ids, timeout=30))
    assert {d["item_id"] for d in done} == set(ids)
    assert all("session" not in d for d in done)  # summaries, not full items
    status = client.queue.batch_status(body["batch"]["batch_id"])
    assert status["completed"] == 2 and status["total"] == 2
    items = client.queue.items_by_ids(ids)
    assert [i["item_id"] for i in items] == ids
    assert client.queue.get_item(ids[0])["session"]["results"]
    assert client.queue.queue_status()["queue"]["total"] >= 2
    found = client.queue.find_batch_item_ids(body["batch"]["batch_id"], expected=2)
    assert sorted(found) == ids


@pytest.mark.server
def test_enqueue_ambiguous_failure_is_settled_by_batch_status(
    server: LocalServer, examples_dir: Path
) -> None:
    # A real server cannot be made to drop the connection after enqueueing on demand, so
    # this transport forwards the POST to the real server and then fails as a reset would.
    real = httpx.Client(base_url=server.url)
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        resp = real.request(
            request.method,
            request.url.path,
            params=request.url.params,
            content=request.content,
            headers={"content-type": request.headers.get("content-type", "application/json")},
        )
        if request.url.path.endswith("/enqueue_batch"):
            raise httpx.ReadError("connection reset after the server got the request")
        return httpx.Response(resp.status_code, content=resp.content, headers=_ct(resp))

    with InvokeAIClient.from_url(server.url) as c:
        c.http._client = httpx.Client(transport=httpx.MockTransport(handler))
        body = blur_body(c, examples_dir)
        result = c.queue.enqueue_batch(body)
        assert result["recovered"] is True and result["enqueued"] == 1
        assert len(result["item_ids"]) == 1
        assert sum(s.endswith("/enqueue_batch") for s in sent) == 1  # never re-sent
        assert f"GET /api/v1/queue/default/b/{body['batch']['batch_id']}/status" in sent

        # the server got nothing: the original error is raised, still a single POST
        def refuse(request: httpx.Request) -> httpx.Response:
            sent.append(f"{request.method} {request.url.path}")
            if request.url.path.endswith("/enqueue_batch"):
                raise httpx.ConnectError("refused")
            resp = real.request(request.method, request.url.path)
            return httpx.Response(resp.status_code, content=resp.content, headers=_ct(resp))

        c.http._client = httpx.Client(transport=httpx.MockTransport(refuse))
        sent.clear()
        with pytest.raises(InvokeAIConnectionError):
            c.queue.enqueue_batch(blur_body(c, examples_dir))
        assert sum(s.endswith("/enqueue_batch") for s in sent) == 1
    real.close()


@pytest.mark.server
def test_cancel_retry_prune(client: InvokeAIClient, examples_dir: Path) -> None:
    client.http.request("PUT", "/api/v1/queue/default/processor/pause")
    try:
        body = blur_body(client, examples_dir, runs=2)
        ids = client.queue.enqueue_batch(body)["item_ids"]
        assert client.queue.cancel_by_batch_ids([body["batch"]["batch_id"]])["canceled"] == 2
        done = list(client.events.iter_finished(ids, timeout=10))
        assert {d["status"] for d in done} == {"canceled"}
        retried = client.queue.retry_items_by_id(ids[:1])
        assert retried["retried_item_ids"] == ids[:1]
    finally:
        client.http.request("PUT", "/api/v1/queue/default/processor/resume")
    deadline = time.monotonic() + 10
    while client.queue.batch_status(body["batch"]["batch_id"])["pending"] and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert client.queue.prune()["deleted"] >= 1


@pytest.mark.server
async def test_async_twins(client: InvokeAIClient, examples_dir: Path) -> None:
    body = blur_body(client, examples_dir)
    result = await client.queue.aenqueue_batch(body)
    ids = result["item_ids"]
    got = [i async for i in client.events.aiter_finished(ids, timeout=30, fetch_full=True)]
    assert got[0]["status"] == "completed" and got[0]["session"]["results"]
    assert (await client.queue.aget_item(ids[0]))["item_id"] == ids[0]
    assert (await client.queue.abatch_status(body["batch"]["batch_id"]))["completed"] == 1
    assert len(await client.queue.aitems_by_ids(ids)) == 1
    assert (await client.queue.aqueue_status())["processor"]["is_started"]


# --------------------------------------------------------------------------- events


@pytest.mark.server
def test_subscribe_before_enqueue_sees_every_event(
    client: InvokeAIClient, examples_dir: Path
) -> None:
    hub = client.events
    assert hub.wait_connected(10)
    body = blur_body(client, examples_dir)
    with hub.subscribe(batch_ids=[body["batch"]["batch_id"]]) as sub:
        ids = client.queue.enqueue_batch(body)["item_ids"]
        seen: list[dict[str, Any]] = []
        done = list(hub.iter_finished(ids, subscription=sub, timeout=30, on_event=seen.append))
    types = [e["event_type"] for e in seen]
    assert types[0] == "batch_enqueued"
    assert types.count("invocation_complete") == 3
    assert types[-1] == "queue_item_status_changed" and seen[-1]["status"] == "completed"
    assert done[0]["status"] == "completed"
    json.dumps(seen)  # plain data


@pytest.mark.server
def test_job_that_ended_before_any_event_completes(server: LocalServer, examples_dir: Path) -> None:
    with InvokeAIClient.from_url(server.url) as other:
        ids = other.queue.enqueue_batch(blur_body(other, examples_dir))["item_ids"]
        deadline = time.monotonic() + 20
        while other.queue.item_summaries(ids)[0]["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    with InvokeAIClient.from_url(server.url) as fresh:  # its socket has never connected
        t0 = time.monotonic()
        done = list(fresh.events.iter_finished(ids, timeout=10, poll_interval=30))
        assert done[0]["status"] == "completed"
        assert time.monotonic() - t0 < 10.0  # the first read, not the 30 s poll


@pytest.mark.server
def test_dropped_socket_falls_back_to_polling(client: InvokeAIClient, examples_dir: Path) -> None:
    hub = client.events
    assert hub.wait_connected(10)
    hub.reconnect_delay = 3.0  # keep the socket down while the job runs
    hub.drop_connection()
    assert not hub.connected
    polls = hub.stats["polls"]
    ids = client.queue.enqueue_batch(blur_body(client, examples_dir))["item_ids"]
    t0 = time.monotonic()
    done = list(hub.iter_finished(ids, timeout=20, poll_interval=30))
    assert done[0]["status"] == "completed"
    assert time.monotonic() - t0 < 10.0  # backoff polling, not the 30 s safety poll
    assert hub.stats["polls"] > polls and hub.stats["disconnects"] >= 1
    hub.reconnect_delay = 0.25
    assert hub.wait_connected(15)  # it comes back by itself
    assert hub.stats["connects"] >= 2
    ids = client.queue.enqueue_batch(blur_body(client, examples_dir))["item_ids"]
    assert next(iter(hub.iter_finished(ids, timeout=20)))["status"] == "completed"


@pytest.mark.server
def test_many_items_without_socket_poll_batch_counts_first(
    client: InvokeAIClient, examples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = client.events
    assert hub.wait_connected(10)
    hub.reconnect_delay = 30.0  # the socket stays down for this test
    hub.drop_connection()
    body = blur_body(client, examples_dir, runs=12)
    ids = client.queue.enqueue_batch(body)["item_ids"]
    sent: list[tuple[str, int]] = []  # (endpoint, number of ids asked for)
    real = client.http.request

    def counting(method: str, path: str, **kw: Any) -> Any:
        asked = len((kw.get("json") or {}).get("item_ids", []))
        sent.append((path.rsplit("/", 1)[-1], asked))
        return real(method, path, **kw)

    monkeypatch.setattr(client.http, "request", counting)
    done = list(hub.iter_finished(ids, timeout=60, batch_ids=[body["batch"]["batch_id"]]))
    assert sorted(d["item_id"] for d in done) == sorted(ids)
    assert {d["status"] for d in done} == {"completed"}
    names = [name for name, _ in sent]
    assert "status" in names and "items_by_ids" not in names  # counts and summaries only
    # while several items are pending, a summary read only follows a counts read that
    # changed; with one item left the summary is as cheap as the counts and is read directly
    for i, (name, asked) in enumerate(sent):
        if name == "item_summaries_by_ids" and asked >= BATCH_GATE_MIN_ITEMS:
            assert i > 0 and sent[i - 1][0] == "status", sent


@pytest.mark.server
def test_wait_timeout_raises(client: InvokeAIClient, examples_dir: Path) -> None:
    client.http.request("PUT", "/api/v1/queue/default/processor/pause")
    try:
        body = blur_body(client, examples_dir)
        ids = client.queue.enqueue_batch(body)["item_ids"]
        with pytest.raises(JobTimeoutError):
            list(client.events.iter_finished(ids, timeout=0.3))
        client.queue.cancel_by_batch_ids([body["batch"]["batch_id"]])
    finally:
        client.http.request("PUT", "/api/v1/queue/default/processor/resume")


@pytest.mark.server
async def test_many_items_on_one_socket(client: InvokeAIClient, examples_dir: Path) -> None:
    hub: EventHub = client.events
    bodies = [blur_body(client, examples_dir) for _ in range(20)]

    async def one(body: dict[str, Any]) -> str:
        sub = hub.asubscribe(batch_ids=[body["batch"]["batch_id"]])
        ids = (await client.queue.aenqueue_batch(body))["item_ids"]
        async for item in hub.aiter_finished(ids, subscription=sub, timeout=60):
            return str(item["status"])
        return "none"

    statuses = await asyncio.gather(*(one(b) for b in bodies))
    assert statuses == ["completed"] * 20
    assert hub.stats["connects"] == 1


@pytest.mark.server
async def test_wake_ends_a_waiting_get_with_a_wake_event(client: InvokeAIClient) -> None:
    # what the run engine calls when its last download ends: its wait for events must end
    # then, not at the wait's timeout
    from invokeai_py_client._subscriptions import WAKE

    sub = client.events.asubscribe(batch_ids=["no-such-batch"], keep_queue=True)
    try:
        waiting = asyncio.ensure_future(sub.get(timeout=600))
        await asyncio.sleep(0)
        assert not waiting.done()
        sub.wake()
        assert (await waiting) == {"event_type": WAKE}
        assert sub.get_nowait() is None
    finally:
        sub.close()
    sub.wake()  # a closed subscription ignores it
    assert sub.get_nowait() is None


@pytest.mark.server
async def test_a_cancel_in_the_turn_an_event_arrives_is_not_lost(client: InvokeAIClient) -> None:
    # Python 3.11's asyncio.wait_for returns the inner result when the waiter is cancelled in
    # the same loop turn that the result arrives, and the cancel is gone: a Ctrl-C of a
    # BatchRun (asyncio.run cancels the main task) was swallowed so, and the run went on to the
    # end (seen in CI). get() must raise CancelledError here.
    sub = client.events.asubscribe(batch_ids=["no-such-batch"], keep_queue=True)
    try:
        waiting = asyncio.ensure_future(sub.get(timeout=600))
        for _ in range(3):
            await asyncio.sleep(0)
        assert not waiting.done()
        sub.wake()  # the event arrives ...
        waiting.cancel()  # ... and the cancel, before the loop runs the getter again
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        sub.close()


@pytest.mark.server
async def test_socketio_session_is_a_raw_connection_of_ones_own(
    client: InvokeAIClient, examples_dir: Path
) -> None:
    # the seeds' client.socketio_session(): a connected socket.io client, closed on exit
    statuses: list[str] = []
    done = asyncio.Event()

    def on_status(data: dict[str, Any]) -> None:
        statuses.append(data["status"])
        if data["status"] == "completed":
            done.set()

    async with client.socketio_session() as sio:
        assert sio.connected
        sio.on("queue_item_status_changed", on_status)
        await sio.call("subscribe_queue", {"queue_id": "default"}, timeout=10)  # as the seeds
        await client.queue.aenqueue_batch(blur_body(client, examples_dir))
        async with asyncio.timeout(60):
            await done.wait()
    assert not sio.connected
    assert statuses[-1] == "completed"


async def test_socketio_session_to_no_server_is_a_connection_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nobody = InvokeAIClient(host="127.0.0.1", port=port)
    with pytest.raises(InvokeAIConnectionError, match="event socket"):
        async with nobody.socketio_session():
            pass
    await nobody.aclose()
