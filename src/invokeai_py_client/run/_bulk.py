"""Fetching a run's images: InvokeAI's bulk zip download when many wait, single GETs otherwise.

On a server that shares its cores with the client, every download request takes time from
generation. One ``GET /api/v1/images/i/{name}/full`` per image costs the server a request each;
one bulk download (``POST /api/v1/images/download`` with the image names, a
``bulk_download_complete`` event once the server has written the zip, then
``GET /api/v1/images/download/{zip}``, which the server deletes after sending) costs it three
requests for any number of images. The zip is stored, not deflated (``ZipFile(..., "w")``).

:class:`ImageFetcher` collects the image names the engine asks for and, one bulk request in
flight at a time, fetches them:

* in one bulk zip when at least :data:`BULK_MIN` are waiting;
* else by single GETs (``concurrency`` at once) once the oldest has waited
  :data:`MAX_WAIT` seconds, when the run has nothing left to generate (``idle()``), or for
  the first image of the run;
* by single GETs for good after the bulk endpoint refused (403 in multi-user mode for a
  forbidden image, 404/405 on a server without it, 422), and for the images of a zip that
  failed (``bulk_download_error``, no event in time, a broken zip, a missing entry).

The zip is read whole in memory and checked before any image of it is handed back, so a
failed or partial zip never leaves a file behind: the engine writes each image atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import zipfile
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from invokeai_py_client.exceptions import (
    APIError,
    InvokeAIError,
    NotFoundError,
    RunError,
    TransportError,
)

if TYPE_CHECKING:
    from invokeai_py_client._subscriptions import AsyncSubscription
    from invokeai_py_client.client import InvokeAIClient

__all__ = ["BULK_MIN", "MAX_WAIT", "ImageFetcher"]

log = logging.getLogger(__name__)

#: fewest waiting images fetched as one zip (fewer go by single GETs)
BULK_MIN = 16
#: the most images in one zip (InvokeAI's MAX_IMAGE_BATCH_SIZE is 1000)
BULK_MAX = 500
#: seconds an image may wait for others to share a zip before it is fetched anyway
MAX_WAIT = 0.5
#: seconds to wait for a zip's bulk_download_complete event (plus per image)
ZIP_TIMEOUT = 15.0
ZIP_TIMEOUT_PER_IMAGE = 0.05
#: status codes after which the bulk endpoint is not tried again in this run
_BULK_REFUSED = frozenset({401, 403, 404, 405, 422})
#: the socket.io room of single-user mode's bulk download events
_BULK_ROOM = "default"
_IMAGES = "/api/v1/images"


class ImageFetcher:
    """Hands out image bytes by name, fetching them in bulk zips or singly (see module)."""

    def __init__(
        self,
        client: InvokeAIClient,
        *,
        concurrency: int = 4,
        bulk: bool = True,
        idle: Callable[[], bool] | None = None,
    ) -> None:
        self.client = client
        self.bulk = bulk
        self.idle = idle or (lambda: False)
        self.hurry = False  # fetch whatever waits at once (the run is finishing)
        self.sem = asyncio.Semaphore(max(1, concurrency))
        self.stats: dict[str, int] = {"gets": 0, "zips": 0, "zip_images": 0, "zip_failures": 0}
        self._waiting: dict[str, asyncio.Future[bytes]] = {}
        self._oldest = 0.0
        self._started = False  # the first image goes at once (a quick first result)
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._singles: set[asyncio.Task[None]] = set()
        self._sub: AsyncSubscription | None = None
        self._joined = False
        self._zips: dict[str, asyncio.Future[str]] = {}
        self._early: dict[str, str] = {}  # zip events that came before the POST's answer

    # ------------------------------------------------------------------ public

    async def fetch(self, image_name: str) -> bytes:
        """The image's bytes (raises :class:`NotFoundError` when the server has no such image)."""
        fut = self._waiting.get(image_name)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            if not self._waiting:
                self._oldest = time.monotonic()
            self._waiting[image_name] = fut
            self._wake.set()
            if self._pump is None or self._pump.done():
                self._pump = asyncio.create_task(self._run_pump())
        return await fut

    def wake(self) -> None:
        """Re-check whether what waits can go (call when ``idle()`` may have become true)."""
        self._wake.set()

    def close(self) -> None:
        """Stop listening for zip events (downloads in flight are left to their tasks)."""
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    # ------------------------------------------------------------------ pump

    async def _run_pump(self) -> None:
        while self._waiting:
            self._drop_abandoned()
            n = len(self._waiting)
            if not n:
                return
            if not self._started:  # the run's first image alone, at once
                self._started = True
                for name, fut in self._take(1).items():
                    self._single(name, fut)
                continue
            if self.bulk and n >= BULK_MIN and self._can_bulk():
                await self._zip(self._take(BULK_MAX))
                continue
            age = time.monotonic() - self._oldest
            if not self.bulk or self.hurry or age >= MAX_WAIT or self.idle():
                for name, fut in self._take(n).items():
                    self._single(name, fut)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), MAX_WAIT - age)

    def _drop_abandoned(self) -> None:
        for name in [k for k, f in self._waiting.items() if f.done()]:
            del self._waiting[name]

    def _take(self, limit: int) -> dict[str, asyncio.Future[bytes]]:
        names = list(self._waiting)[:limit]
        taken = {name: self._waiting.pop(name) for name in names}
        self._oldest = time.monotonic()
        return taken

    def _single(self, name: str, fut: asyncio.Future[bytes]) -> None:
        task = asyncio.create_task(self._get_into(name, fut))
        self._singles.add(task)
        task.add_done_callback(self._singles.discard)

    async def _get_into(self, name: str, fut: asyncio.Future[bytes]) -> None:
        if fut.done():
            return
        try:
            async with self.sem:
                data = await self._get_image(name)
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
            return
        if not fut.done():
            fut.set_result(data)

    async def _get_image(self, image_name: str) -> bytes:
        http = self.client.async_http()
        delay = 0.5
        path = f"{_IMAGES}/i/{quote(image_name, safe='')}/full"
        for attempt in range(40):
            try:
                self.stats["gets"] += 1
                return (await http.request("GET", path)).content
            except NotFoundError:
                raise
            except (TransportError, APIError) as exc:
                if attempt == 39:
                    raise
                log.info("download of %s failed (%s); retrying", image_name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise RunError(f"could not download {image_name}")

    # ------------------------------------------------------------------ bulk zips

    def _can_bulk(self) -> bool:
        hub = self.client.events
        return hub.connected and getattr(hub, "_sio", None) is not None

    async def _zip(self, batch: dict[str, asyncio.Future[bytes]]) -> None:
        """Fetch ``batch`` as one zip; whatever the zip does not deliver goes singly."""
        got: dict[str, bytes] = {}
        try:
            got = await self._zip_bytes(list(batch))
        except _BulkRefused as exc:
            log.info("bulk image download unavailable (%s); downloading one by one", exc)
            self.bulk = False
        except (InvokeAIError, zipfile.BadZipFile, OSError, TimeoutError) as exc:
            self.stats["zip_failures"] += 1
            log.info("bulk image download failed (%s); downloading one by one", exc)
            if self.stats["zip_failures"] >= 3:
                self.bulk = False
        for name, fut in batch.items():
            data = got.get(name)
            if data is None:
                self._single(name, fut)
            elif not fut.done():
                fut.set_result(data)

    async def _zip_bytes(self, names: list[str]) -> dict[str, bytes]:
        await self._listen()
        http = self.client.async_http()
        try:
            resp = await http.request("POST", f"{_IMAGES}/download", json={"image_names": names})
        except APIError as exc:
            if exc.status_code in _BULK_REFUSED:
                raise _BulkRefused(f"HTTP {exc.status_code}") from exc
            raise
        zip_name = str((resp.json() or {}).get("bulk_download_item_name") or "")
        if not zip_name:
            raise _BulkRefused("no bulk_download_item_name in the answer")
        self.stats["zips"] += 1
        kind = self._early.pop(zip_name, None)
        if kind is None:
            fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._zips[zip_name] = fut
            try:
                timeout = ZIP_TIMEOUT + ZIP_TIMEOUT_PER_IMAGE * len(names)
                kind = await asyncio.wait_for(fut, timeout)
            finally:
                self._zips.pop(zip_name, None)
        if kind != "bulk_download_complete":
            raise RunError(f"the server could not build the zip {zip_name} ({kind})")
        resp = await http.request("GET", f"{_IMAGES}/download/{quote(zip_name, safe='')}")
        wanted = set(names)
        got: dict[str, bytes] = {}
        with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
            for info in zf.infolist():
                base = info.filename.rsplit("/", 1)[-1]
                if base in wanted and not info.is_dir():
                    got[base] = zf.read(info)  # checks each entry's CRC
        self.stats["zip_images"] += len(got)
        return got

    async def _listen(self) -> None:
        """Receive bulk download events (single-user mode sends them to a room to join)."""
        hub = self.client.events
        if self._sub is None:
            self._sub = hub.asubscribe(
                all_events=True, callback=self._on_event, event_filter=_bulk_or_hub
            )
            self._joined = False
        if not self._joined:
            await self._join_room()

    async def _join_room(self) -> None:
        hub = self.client.events
        sio, loop = getattr(hub, "_sio", None), getattr(hub, "_loop", None)
        if sio is None or loop is None:
            raise _BulkRefused("no event connection")
        call = sio.call("subscribe_bulk_download", {"bulk_download_id": _BULK_ROOM}, timeout=5)
        with contextlib.suppress(Exception):  # an old server may not acknowledge
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call, loop))
        self._joined = True

    def _on_event(self, evt: Mapping[str, Any]) -> None:
        kind = str(evt.get("event_type"))
        if kind in ("hub_reconnected", "hub_disconnected"):
            self._joined = False  # rooms are per connection: join again before the next zip
            return
        if kind not in ("bulk_download_complete", "bulk_download_error"):
            return
        name = str(evt.get("bulk_download_item_name") or "")
        fut = self._zips.get(name)
        if fut is None:
            # maybe ours, before the POST's answer; or another client's (bounded)
            self._early[name] = kind
            while len(self._early) > 64:
                del self._early[next(iter(self._early))]
        elif not fut.done():
            fut.set_result(kind)


class _BulkRefused(InvokeAIError):
    """The server will not do bulk downloads for this client."""


def _bulk_or_hub(evt: Mapping[str, Any]) -> bool:
    kind = evt.get("event_type")
    return isinstance(kind, str) and (kind.startswith("bulk_download_") or kind.startswith("hub_"))
