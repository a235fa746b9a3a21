"""The asyncio engine behind :class:`~invokeai_py_client.run.BatchRun` and ``resume``.

One loop per run: send what the server has not received (in chunks when its queue is full),
follow the run's items by events (the server's queue items are the authority: a safety poll
of cheap summaries and a reconcile after every reconnect), download each image as soon as its
item completes (bounded concurrency, overlapping with generation) and commit every step to
the ledger. Downloads go through :class:`~._bulk.ImageFetcher`: bulk zips when many images
wait (three requests for any number), single GETs otherwise. Per enqueue: the POST plus one
``item_summaries_by_ids`` per 1000 items (to read ``field_values``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from invokeai_py_client.exceptions import (
    APIError,
    InvokeAIError,
    RunError,
    TransportError,
)
from invokeai_py_client.run._naming import file_name, images_from_item
from invokeai_py_client.run._state import (
    IMAGES_DIR,
    MAX_AUTO_RETRIES,
    SAFETY_POLL,
    TERMINAL,
    EngineState,
    Progress,
)
from invokeai_py_client.run.ledger import FileRow, ItemRow, utc_now
from invokeai_py_client.sweep import SubsetPlan

__all__ = ["Engine", "Progress"]

log = logging.getLogger(__name__)


class Engine(EngineState):
    """Drives one run directory to completion (internal; use BatchRun / resume)."""

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        """Run to completion, or until :attr:`cancel_event` is set."""
        self.done_at_start = sum(
            1
            for iid in self.run_item.values()
            if self.items[iid].status in TERMINAL
            and (self.items[iid].status != "completed" or self._downloaded(self.items[iid]))
        )
        hub = self.client.events
        self.sub = hub.asubscribe(
            batch_ids=list(self._batches),
            item_ids=list(self.items),
            keep_queue=True,
            event_filter=self._wanted,
        )
        try:
            await asyncio.to_thread(hub.wait_connected, 10.0)
            self.images_dir.mkdir(parents=True, exist_ok=True)
            self._emit()
            while not self._finished():
                if self.cancel_event.is_set():
                    self.cancelled = True
                    return
                try:
                    await self._step()
                except TransportError as exc:
                    log.info("server unreachable (%s); retrying", exc)
                    self.reconcile_needed = True
                    await self._sleep_or_cancel(1.0)
                await self._drain_events(0.5)
            await self._await_downloads()
        finally:
            self.sub.close()

    async def _sleep_or_cancel(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):  # (not wait_for: see AsyncSubscription.get)
                await self.cancel_event.wait()
        except TimeoutError:
            return

    async def _step(self) -> None:
        if self._sending():
            await self._settle_sending()
        if self.reconcile_needed or time.monotonic() - self.last_news > SAFETY_POLL:
            await self._reconcile()
        if self.retry_statuses:
            await self._retry_statuses()
        if self.unknown_ids:
            await self._adopt_ids(sorted(self.unknown_ids))
        if self.need_full:
            await self._fetch_full()
        await self._send_more()

    # ------------------------------------------------------------------ sending

    async def _send_more(self) -> None:
        lo = self._sent_until()
        if lo >= self.count or self.cancel_event.is_set():
            return
        hi = self.count
        if self.queue_cap is not None:
            # the queue was full: wait until half of it is free (or all that is left fits)
            now = time.monotonic()
            if now - self._last_room_check < 0.2:
                return
            self._last_room_check = now
            status = await self.client.queue.aqueue_status()
            pending = int((status.get("queue") or status).get("pending", 0))
            room = self.queue_cap - pending
            if room < min(hi - lo, max(1, self.queue_cap // 2)):
                return
            hi = min(hi, lo + room)
        batch_id = f"{self.ledger.get_meta('run_id')}-{uuid.uuid4().hex[:8]}"
        if lo == 0 and hi == self.count:
            body = self.plan.payload(batch_id=batch_id, destination=self.destination)
        else:
            body = self.plan.chunk_payload(lo, hi, batch_id=batch_id, destination=self.destination)
        self.ledger.batch_sending(batch_id, lo, hi)
        self._batches = {b.batch_id: b for b in self.ledger.batches()}
        self.sub.add_batches([batch_id])
        self._hook("before_enqueue")
        try:
            result = await self.client.queue.aenqueue_batch(body, allow_partial=True)
        except APIError as exc:
            if exc.status_code >= 500:
                raise  # ambiguous: settled by asking the server about the batch
            self.ledger.batch_absent(batch_id)
            raise RunError(f"the server refused the run's batch: {exc}") from exc
        self._hook("after_enqueue_post")
        enqueued = int(result.get("enqueued", 0))
        requested = int(result.get("requested", hi - lo))
        item_ids = [int(i) for i in result.get("item_ids") or []]
        self.ledger.batch_sent(batch_id, enqueued, item_ids)
        self._hook("after_batch_sent")
        self._batches = {b.batch_id: b for b in self.ledger.batches()}
        self._runs_by_batch_key.pop(batch_id, None)
        if enqueued < requested:
            st = await self.client.queue.aqueue_status()
            pending = int((st.get("queue") or st).get("pending", 0))
            self.queue_cap = max(1, pending)
            log.info(
                "queue full: %d of %d enqueued; sending the rest as room frees", enqueued, requested
            )
        if item_ids:
            self.sub.add_items(item_ids)
            await self._adopt_ids(item_ids)
        self._hook("after_enqueue")

    async def _settle_sending(self) -> None:
        """Batches recorded 'sending' with no answer: ask the server whether they exist."""
        for b in self.ledger.batches("sending"):
            status = await self.client.queue.abatch_status(b.batch_id)
            total = int(status.get("total", 0))
            if total <= 0:
                self.ledger.batch_absent(b.batch_id)
                continue
            ids = await self._find_destination_ids(batch_id=b.batch_id, expected=total)
            self.ledger.batch_sent(b.batch_id, total, ids)
            self._batches = {x.batch_id: x for x in self.ledger.batches()}
            self._runs_by_batch_key.pop(b.batch_id, None)
            self.sub.add_batches([b.batch_id])
            self.sub.add_items(ids)
            await self._adopt_ids(ids)
        self._batches = {x.batch_id: x for x in self.ledger.batches()}

    async def _find_destination_ids(
        self, *, batch_id: str | None = None, expected: int | None = None
    ) -> list[int]:
        """Ids of this run's items unknown to the ledger (newest first scan, cheap summaries).

        Queue item ids are sequential: only ids above the highest one the ledger knows of
        need a look, unless a whole batch is being recovered.
        """
        http = self.client.async_http()
        res = await http.get_json("/api/v1/queue/default/item_ids", params={"order_dir": "DESC"})
        known_max = max(self.items, default=0)
        candidates = [int(i) for i in res.get("item_ids", []) if int(i) > known_max]
        found: list[int] = []
        for start in range(0, len(candidates), 1000):
            chunk = candidates[start : start + 1000]
            for s in await self.client.queue.aitem_summaries(chunk):
                if s.get("destination") != self.destination:
                    continue
                if batch_id is not None and s.get("batch_id") != batch_id:
                    continue
                found.append(int(s["item_id"]))
            if expected is not None and len(found) >= expected:
                break
        return sorted(found)

    # ------------------------------------------------------------------ adoption

    async def _adopt_ids(self, ids: Sequence[int]) -> None:
        new = [i for i in ids if i not in self.items]
        self.unknown_ids.difference_update(ids)
        if not new:
            return
        summaries = await self.client.queue.aitem_summaries(sorted(new))
        self._adopt(summaries)

    def _adopt(self, summaries: Sequence[Mapping[str, Any]]) -> None:
        rows: list[ItemRow] = []
        for s in sorted(summaries, key=lambda x: int(x["item_id"])):
            iid = int(s["item_id"])
            bid = str(s.get("batch_id"))
            if s.get("destination") != self.destination or bid not in self._batches:
                continue
            key = self.plan.key_of(s.get("field_values"))
            run_index = None
            superseded: ItemRow | None = None
            for r in self._runs_for(bid).get(key, []):
                cur = self.run_item.get(r)
                if cur is None:
                    run_index = r
                    break
                cur_row = self.items[cur]
                if cur_row.status in ("failed", "canceled") and cur < iid:
                    run_index, superseded = r, cur_row
                    break
            # the run was matched on the server's field_values (equal keys), so the planned
            # run's parameters are the item's; the plan also tells apart equal local files
            params, indices = (
                self.plan.run_params(run_index)
                if run_index is not None
                else self.plan.params_for(s.get("field_values"))
            )
            row = ItemRow(
                item_id=iid,
                batch_id=bid,
                run_index=run_index,
                status=str(s.get("status")),
                params=params,
                param_indices=indices,
                started_at=_s(s.get("started_at")),
                completed_at=_s(s.get("completed_at")),
                known_at=utc_now() if str(s.get("status")) in TERMINAL else None,
            )
            if superseded is not None:
                superseded.superseded = True
                rows.append(superseded)
            self.items[iid] = row
            if run_index is not None:
                self.run_item[run_index] = iid
            rows.append(row)
            self._on_status(row, s, from_event=False)
        if rows:
            self._save(rows)

    # ------------------------------------------------------------------ events

    def _wanted(self, evt: Mapping[str, Any]) -> bool:
        """Hub-thread filter: pass only the events :meth:`_on_event` acts on.

        Every event of the run's items still counts as news (``last_news``, which defers the
        safety poll), but progress events, ``invocation_complete`` of non-output nodes and
        ``invocation_started`` of items already seen in progress never cross to the run's
        loop.
        """
        kind = evt.get("event_type")
        if kind in _ALWAYS_KINDS:
            return True
        iid = evt.get("item_id")
        if iid is None:
            return False
        if evt.get("destination") in (None, self.destination):
            self.last_news = time.monotonic()
        if kind == "invocation_complete":
            return evt.get("invocation_source_id") in self.output_ids
        if kind == "invocation_started":
            # only needed when the in_progress status change came before the item was adopted
            return iid not in self.event_images
        # other item events only matter for items the run has not adopted yet
        return iid not in self.items

    async def _drain_events(self, timeout: float) -> None:
        sub = self.sub
        evt = await sub.get(timeout=timeout)
        changed: dict[int, ItemRow] = {}
        while evt is not None:
            self._on_event(evt, changed)
            evt = sub.get_nowait()
        if changed:
            self._save(changed.values())

    def _on_event(self, evt: Mapping[str, Any], changed: dict[int, ItemRow]) -> None:
        kind = evt.get("event_type")
        if kind == "hub_disconnected":
            self.disconnected_once = True
            self.unreliable.update(i for i, r in self.items.items() if r.status not in TERMINAL)
            return
        if kind == "hub_reconnected":
            self.reconcile_needed = True
            return
        iid = evt.get("item_id")
        if kind == "queue_items_canceled" or iid is None:
            if kind == "queue_items_canceled":
                self.reconcile_needed = True
            return
        iid = int(iid)
        if evt.get("destination") not in (None, self.destination):
            return
        self.last_news = time.monotonic()
        if iid not in self.items:
            if evt.get("batch_id") in self._batches:
                self.unknown_ids.add(iid)
            return
        row = self.items[iid]
        if kind == "invocation_complete":
            src = evt.get("invocation_source_id")
            result = evt.get("result") or {}
            image = result.get("image") if isinstance(result, Mapping) else None
            if src in self.output_ids and isinstance(image, Mapping) and image.get("image_name"):
                self.event_images.setdefault(iid, []).append(
                    {"node_id": str(src), "image_name": str(image["image_name"])}
                )
            return
        if kind == "invocation_started":
            self.event_images.setdefault(iid, [])
            return
        if kind != "queue_item_status_changed":
            return
        status = str(evt.get("status"))
        if status == "in_progress":
            # seen from its start: its output images will all come by event
            self.event_images.setdefault(iid, [])
        if status == row.status and status not in TERMINAL:
            return
        if status in TERMINAL and row.known_at is None:
            row.known_at = utc_now()
        row.status = status
        row.started_at = _s(evt.get("started_at")) or row.started_at
        row.completed_at = _s(evt.get("completed_at")) or row.completed_at
        if status == "failed":
            row.error_type = _s(evt.get("error_type"))
            row.error_message = _s(evt.get("error_message"))
        changed[iid] = row
        self._on_status(row, evt, from_event=True)

    def _on_status(self, row: ItemRow, data: Mapping[str, Any], *, from_event: bool) -> None:
        """React to an item's (new) status: schedule image discovery / downloads / retries."""
        if row.superseded:
            return
        if row.status == "completed":
            if row.images is None:
                imgs = self.event_images.get(row.item_id)
                if from_event and imgs is not None and row.item_id not in self.unreliable:
                    row.images = list(imgs)
                else:
                    self.need_full.add(row.item_id)
            if row.images is not None:
                self._schedule_downloads(row)
            self.event_images.pop(row.item_id, None)
        elif row.status == "failed" and row.error_type is None:
            self.need_full.add(row.item_id)
        if row.status in TERMINAL and row.status != "completed":
            self._emit(self._row_summary(row))

    # ------------------------------------------------------------------ reconcile

    async def _reconcile(self) -> None:
        """Ask the server (cheap summaries) about every unfinished item of the run."""
        self.reconcile_needed = False
        self.last_news = time.monotonic()
        for known in self.items.values():
            # completed with known images, some not on disk (e.g. killed mid-download)
            if (
                not known.superseded
                and known.status == "completed"
                and known.images is not None
                and not self._downloaded(known)
            ):
                self._schedule_downloads(known)
        open_ids = [
            iid
            for iid, r in self.items.items()
            if not r.superseded
            and (r.status not in TERMINAL or (r.status == "completed" and r.images is None))
        ]
        after_drop = self.disconnected_once
        changed: list[ItemRow] = []
        to_retry: list[int] = []
        for start in range(0, len(open_ids), 1000):
            chunk = open_ids[start : start + 1000]
            for s in await self.client.queue.aitem_summaries(chunk):
                iid = int(s["item_id"])
                row = self.items.get(iid)
                if row is None:
                    continue
                status = str(s.get("status"))
                if status != row.status:
                    if status in TERMINAL and row.known_at is None:
                        row.known_at = utc_now()
                    row.status = status
                    row.started_at = _s(s.get("started_at")) or row.started_at
                    row.completed_at = _s(s.get("completed_at")) or row.completed_at
                    changed.append(row)
                    self.unreliable.add(iid)
                    if status == "canceled" and after_drop and not self.cancel_event.is_set():
                        to_retry.append(iid)
                    else:
                        self._on_status(row, s, from_event=False)
                elif status == "completed" and row.images is None:
                    self.need_full.add(iid)
        if changed:
            self._save(changed)
        if to_retry:
            await self._retry(to_retry)
        if self.disconnected_once or self._sent_until() > 0:
            # items made by a retry (ours or the GUI's) carry our destination
            fresh = await self._find_destination_ids() if to_retry or after_drop else []
            if fresh:
                self.sub.add_items(fresh)
                await self._adopt_ids(fresh)
        self.disconnected_once = False

    async def _retry(self, item_ids: Sequence[int]) -> None:
        ids = [
            i
            for i in item_ids
            if self.retry_counts.get(self.items[i].run_index or -1, 0) < MAX_AUTO_RETRIES
        ]
        if not ids:
            return
        for i in ids:
            r = self.items[i].run_index or -1
            self.retry_counts[r] = self.retry_counts.get(r, 0) + 1
        await self.client.queue.aretry_items_by_id(ids)
        fresh = await self._find_destination_ids()
        self.sub.add_items(fresh)
        await self._adopt_ids(fresh)

    async def _retry_statuses(self) -> None:
        """Once, after the first reconcile: retry the items in ``retry_statuses``."""
        statuses, self.retry_statuses = self.retry_statuses, frozenset()
        ids = [i for i, r in self.items.items() if not r.superseded and r.status in statuses]
        if ids:
            await self.client.queue.aretry_items_by_id(ids)
            fresh = await self._find_destination_ids()
            self.sub.add_items(fresh)
            await self._adopt_ids(fresh)

    async def _fetch_full(self) -> None:
        ids = sorted(self.need_full)[:100]
        self.need_full.difference_update(ids)
        items = await self.client.queue.aitems_by_ids(ids)
        rows: list[ItemRow] = []
        for item in items:
            iid = int(item["item_id"])
            row = self.items.get(iid)
            if row is None:
                continue
            row.status = str(item.get("status"))
            if row.status in TERMINAL and row.known_at is None:
                row.known_at = utc_now()
            row.started_at = _s(item.get("started_at")) or row.started_at
            row.completed_at = _s(item.get("completed_at")) or row.completed_at
            row.error_type = _s(item.get("error_type")) or row.error_type
            row.error_message = _s(item.get("error_message")) or row.error_message
            if row.status == "completed":
                row.images = images_from_item(item, self.output_ids)
            rows.append(row)
        if rows:
            self._save(rows)
        for row in rows:
            if row.status == "completed" and not row.superseded:
                self._schedule_downloads(row)

    # ------------------------------------------------------------------ downloads

    def _row_summary(self, row: ItemRow) -> dict[str, Any]:
        return {
            "run_index": row.run_index,
            "item_id": row.item_id,
            "status": row.status,
            "params": row.params,
            "error_type": row.error_type,
            "error_message": row.error_message,
        }

    def target_name(self, row: ItemRow, node_id: str, ordinal: int, image_name: str) -> str:
        """The file name of one image of a run (see :mod:`._naming`)."""
        run_index = row.run_index if row.run_index is not None else 0
        params = (
            [(a.name, d) for a, _, d in self.plan.run_values(run_index)] if self.plan.axes else []
        )
        params = [(name, (row.params or {}).get(name, value)) for name, value in params]
        label = None
        if len(self.outputs) > 1:
            label = next(
                (
                    str(o.get("label") or o["node_id"])
                    for o in self.outputs
                    if o["node_id"] == node_id
                ),
                node_id,
            )
        suffix = Path(image_name).suffix or ".png"
        if isinstance(self.plan, SubsetPlan):
            run_index = self.plan.global_index(run_index)
        return file_name(
            run_index, self.width, params, node_label=label, ordinal=ordinal, suffix=suffix
        )

    def _schedule_downloads(self, row: ItemRow) -> None:
        if row.run_index is None or row.images is None:
            return
        per_node: dict[str, int] = {}
        for im in row.images:
            node_id, name = im["node_id"], im["image_name"]
            k = per_node.get(node_id, 0)
            per_node[node_id] = k + 1
            if name in self.files or name in self.downloads:
                continue
            target = self.target_name(row, node_id, k, name)
            task = asyncio.create_task(self._download(row, node_id, name, target))
            self.downloads[name] = task
            self.dl_items[row.item_id] = self.dl_items.get(row.item_id, 0) + 1
        if not any(im["image_name"] in self.downloads for im in row.images):
            self._emit(self._row_summary(row))

    async def _download(self, row: ItemRow, node_id: str, image_name: str, target: str) -> None:
        try:
            data = await self.fetcher.fetch(image_name)
            self._hook("mid_download")
            path = self.images_dir / target
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            frow = FileRow(
                image_name=image_name,
                item_id=row.item_id,
                run_index=int(row.run_index or 0),
                node_id=node_id,
                path=f"{IMAGES_DIR}/{target}",
                bytes=len(data),
                downloaded_at=utc_now(),
            )
            self.ledger.add_file(frow)
            self.files[image_name] = frow
            self._images += 1
            self._refresh([row])
        finally:
            self.downloads.pop(image_name, None)
            self._download_done(row.item_id)
            if not self.downloads:
                self.sub.wake()  # the run may be done now: do not wait out an event timeout
        if self._downloaded(row):
            self._emit(self._row_summary(row))

    async def _await_downloads(self) -> None:
        self.fetcher.hurry = True
        self.fetcher.wake()
        while self.downloads:
            done = list(self.downloads.values())
            results = await asyncio.gather(*done, return_exceptions=True)
            for res in results:
                if isinstance(res, InvokeAIError):
                    log.warning("download failed: %s", res)

    # ------------------------------------------------------------------ cancel

    async def cancel_on_server(self) -> None:
        """Cancel every batch of this run on the server (one request), then re-read states."""
        batch_ids = [b.batch_id for b in self.ledger.batches() if b.state in ("sent", "sending")]
        if batch_ids:
            await self.client.queue.acancel_by_batch_ids(batch_ids)

    async def finish_downloads(self, timeout: float = 30.0) -> None:
        """Let running downloads finish (bounded)."""
        if self.downloads:
            try:
                async with asyncio.timeout(timeout):
                    await self._await_downloads()
            except TimeoutError:
                for t in list(self.downloads.values()):
                    t.cancel()


#: events the run's loop always sees (the hub's own, status changes, bulk cancels)
_ALWAYS_KINDS = frozenset(
    {"queue_item_status_changed", "queue_items_canceled", "hub_disconnected", "hub_reconnected"}
)


def _s(value: Any) -> str | None:
    return None if value is None else str(value)
