"""Contender "raw client": a ~150-line client built the way DESIGN.md says ours should work.

Not the library: a design prototype (httpx + python-socketio on asyncio, no
``invokeai_py_client``) that shows what the architecture reaches on this machine, so "ours" has
a measured bar before it exists. One ``enqueue_batch`` for the whole sweep (client-chosen
``batch_id``, radius in ``batch.data``), socket.io events (websocket transport), each image
downloaded as soon as the save node's ``invocation_complete`` names it (at most 4 downloads at
once, overlapping with generation), completion noticed from ``queue_item_status_changed``; then
a reconciliation pass over ``items_by_ids`` downloads anything an event missed. The queue item
stays the authority.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import socketio
from _common import SAVE_NODE_ID, count_pngs, emit, now, parse_args, parse_server_ts
from server_limit import build_batch

QUEUE = "/api/v1/queue/default"
DOWNLOADS_AT_ONCE = 4
TERMINAL = {"completed", "failed", "canceled"}


class RawRun:
    def __init__(self, url: str, n: int, out: Path) -> None:
        self.url = url
        self.n = n
        self.out = out
        self.batch_id = f"bench-raw-{uuid.uuid4()}"
        self.http = httpx.AsyncClient(base_url=url, timeout=60.0, trust_env=False)
        self.gate = asyncio.Semaphore(DOWNLOADS_AT_ONCE)
        self.finished: dict[int, str] = {}
        self.downloads: dict[int, asyncio.Task[None]] = {}
        self.latencies_ms: list[float] = []
        self.errors: list[str] = []
        self.first_image_at: float | None = None
        self.all_done = asyncio.Event()

    async def get(self, path: str) -> httpx.Response:
        """GET with 3 tries on transport errors (a busy stock server can drop a connection)."""
        for attempt in range(3):
            try:
                return await self.http.get(path)
            except httpx.TransportError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.2)
        raise AssertionError("unreachable")

    async def download(self, item_id: int, image_name: str) -> None:
        async with self.gate:
            resp = await self.get(f"/api/v1/images/i/{image_name}/full")
            resp.raise_for_status()
            (self.out / f"{item_id:06d}_{image_name}").write_bytes(resp.content)
        if self.first_image_at is None:
            self.first_image_at = now()

    def want(self, item_id: int, image_name: str) -> None:
        if item_id not in self.downloads:
            self.downloads[item_id] = asyncio.create_task(self.download(item_id, image_name))

    async def on_invocation_complete(self, data: dict[str, Any]) -> None:
        if data.get("batch_id") != self.batch_id:
            return
        if data.get("invocation_source_id") != SAVE_NODE_ID:
            return
        image = (data.get("result") or {}).get("image") or {}
        if image.get("image_name"):
            self.want(int(data["item_id"]), image["image_name"])

    async def on_status(self, data: dict[str, Any]) -> None:
        t_known = now()
        if data.get("batch_id") != self.batch_id or data.get("status") not in TERMINAL:
            return
        item_id = int(data["item_id"])
        if item_id in self.finished:
            return
        self.finished[item_id] = data["status"]
        completed_at = parse_server_ts(data.get("completed_at"))
        if data["status"] == "completed" and completed_at is not None:
            self.latencies_ms.append((t_known - completed_at) * 1000.0)
        elif data["status"] != "completed":
            self.errors.append(f"item {item_id}: {data['status']} {data.get('error_type')}")
        if len(self.finished) >= self.n:
            self.all_done.set()

    async def reconcile(self, item_ids: list[int]) -> None:
        """Download what no event announced, from the queue items (the authority)."""
        missing = [i for i in item_ids if i not in self.downloads]
        for start in range(0, len(missing), 1000):
            resp = await self.http.post(
                f"{QUEUE}/items_by_ids", json={"item_ids": missing[start : start + 1000]}
            )
            resp.raise_for_status()
            for item in resp.json():
                session = item.get("session") or {}
                mapping = session.get("prepared_source_mapping") or {}
                for prepared, result in (session.get("results") or {}).items():
                    name = ((result or {}).get("image") or {}).get("image_name")
                    if name and mapping.get(prepared) == SAVE_NODE_ID:
                        self.want(int(item["item_id"]), name)

    async def wait_finished(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.all_done.wait(), timeout=2.0)
                return
            except TimeoutError:
                status = (await self.get(f"{QUEUE}/b/{self.batch_id}/status")).json()
                if status["completed"] + status["failed"] + status["canceled"] >= self.n:
                    return  # events were missed: the queue says we are done

    async def run(self) -> float:
        self.out.mkdir(parents=True, exist_ok=True)
        t0 = now()
        sio = socketio.AsyncClient(reconnection=True)
        sio.on("invocation_complete", self.on_invocation_complete)
        sio.on("queue_item_status_changed", self.on_status)
        await sio.connect(self.url, socketio_path="/ws/socket.io", transports=["websocket"])
        await sio.emit("subscribe_queue", {"queue_id": "default"})
        try:
            body = build_batch(self.n, self.batch_id)
            resp = await self.http.post(f"{QUEUE}/enqueue_batch", json=body)
            resp.raise_for_status()
            enq = resp.json()
            item_ids = list(enq["item_ids"])
            if enq["enqueued"] != self.n:
                self.errors.append(f"enqueued {enq['enqueued']} of {self.n}")
                self.n = int(enq["enqueued"])
            await self.wait_finished()
            await self.reconcile(item_ids)
            for task in list(self.downloads.values()):
                try:
                    await task
                except Exception as exc:
                    self.errors.append(f"download: {type(exc).__name__}: {exc}"[:300])
            return now() - t0
        finally:
            await sio.disconnect()
            await self.http.aclose()


def main() -> None:
    args = parse_args(__doc__ or "")
    t0 = now()
    run_ = RawRun(args.url, args.n, args.out)
    wall_s = asyncio.run(run_.run())
    emit(
        {
            "contender": "raw_client",
            "n": args.n,
            "wall_s": wall_s,
            "first_image_s": (run_.first_image_at - t0) if run_.first_image_at else None,
            "images_on_disk": count_pngs(args.out),
            "notice_latencies_ms": run_.latencies_ms,
            "errors": run_.errors[:20],
        }
    )


if __name__ == "__main__":
    main()
