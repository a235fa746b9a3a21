"""Images on the server: records, upload, download, metadata, embedded workflow, stars.

One place for every image endpoint (``/api/v1/images`` and board membership
``/api/v1/board_images``); :mod:`invokeai_py_client.board` builds on it.

Example::

    from invokeai_py_client import InvokeAIClient

    client = InvokeAIClient.from_url("http://127.0.0.1:9090")
    img = client.images.upload_image("photo.png", board_id="none")
    png = client.images.download_image(img.image_name)            # one request
    thumb = client.images.download_image(img.image_name, full_resolution=False)
    client.images.star_image(img.image_name)
    print(client.images.get_image(img.image_name).starred)        # True

Every method that talks to the server has an asyncio twin named with an ``a`` in front
(``await client.images.aupload_image(...)``) taking the same arguments, returning the same
values and raising the same errors: both run one body of steps (:mod:`._steps`).
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from ._steps import StepRunner, Steps, get_json, request
from .exceptions import InvokeAIError, NotFoundError

if TYPE_CHECKING:
    from .client import InvokeAIClient

__all__ = ["UNCATEGORIZED_BOARD_ID", "ImagePage", "ImageRepository", "IvkImage"]

IMAGES = "/api/v1/images"
BOARD_IMAGES = "/api/v1/board_images"

#: the board id InvokeAI uses for images that are on no board
UNCATEGORIZED_BOARD_ID = "none"

#: the most images one list request may ask for (InvokeAI's own page-size cap)
MAX_PAGE_SIZE = 100


class IvkImage(BaseModel):
    """An image record as the server describes it (extra server fields are kept).

    Example::

        img = client.images.get_image("abc.png")
        print(img.image_name, img.width, img.height, img.board_id, img.starred)
    """

    model_config = ConfigDict(extra="allow")

    image_name: str
    board_id: str | None = None
    width: int | None = None
    height: int | None = None
    image_category: str | None = None
    image_origin: str | None = None
    is_intermediate: bool = False
    starred: bool = False
    has_workflow: bool = False
    session_id: str | None = None
    node_id: str | None = None
    image_url: str | None = None
    thumbnail_url: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None

    @classmethod
    def from_api(cls, data: Any) -> IvkImage:
        """Build from a server image DTO (timestamps are kept as strings)."""
        if not isinstance(data, dict) or "image_name" not in data:
            raise InvokeAIError(f"unexpected image record from the server: {data!r:.200}")
        clean = {k: (str(v) if k.endswith("_at") and v is not None else v) for k, v in data.items()}
        return cls.model_validate(clean)


class ImagePage(BaseModel):
    """One page of an image listing: ``items`` plus the server's ``offset``/``limit``/``total``."""

    items: list[IvkImage]
    offset: int
    limit: int
    total: int


def _image_path(image_name: str, suffix: str = "") -> str:
    if not image_name or not isinstance(image_name, str):
        raise InvokeAIError(f"an image name is required, got {image_name!r}")
    return f"{IMAGES}/i/{quote(image_name, safe='')}" + suffix


def _guess_content_type(filename: str) -> str:
    guessed, _ = mimetypes.guess_type(filename)
    return guessed if guessed and guessed.startswith("image/") else "image/png"


def _board_param(board_id: str | None) -> str | None:
    """``None``/``"none"`` mean "no board" for uploads: the parameter is left out."""
    if board_id is None or board_id == UNCATEGORIZED_BOARD_ID:
        return None
    return board_id


# ---------------------------------------------------------------------------- operations
# Each is written once as steps (see _steps.py); ImageRepository runs it blocking or async.


def _get_image(image_name: str) -> Steps[IvkImage]:
    return IvkImage.from_api((yield from get_json(_image_path(image_name))))


def _try_get_image(image_name: str) -> Steps[IvkImage | None]:
    try:
        return (yield from _get_image(image_name))
    except NotFoundError:
        return None


def _list_images(
    board_id: str | None,
    offset: int,
    limit: int,
    categories: list[str] | None,
    is_intermediate: bool | None,
    starred_first: bool,
    order_dir: str,
    search_term: str | None,
) -> Steps[ImagePage]:
    if offset < 0:
        raise InvokeAIError(f"offset must be >= 0, got {offset}")
    if not 0 <= limit <= MAX_PAGE_SIZE:
        raise InvokeAIError(f"limit must be between 0 and {MAX_PAGE_SIZE}, got {limit}")
    params: dict[str, Any] = {
        "offset": offset,
        "limit": limit,
        "starred_first": starred_first,
        "order_dir": order_dir,
    }
    if board_id is not None:
        params["board_id"] = board_id
    if categories:
        params["categories"] = list(categories)
    if is_intermediate is not None:
        params["is_intermediate"] = is_intermediate
    if search_term:
        params["search_term"] = search_term
    data = yield from get_json(f"{IMAGES}/", params=params)
    items = [IvkImage.from_api(d) for d in data.get("items", [])]
    return ImagePage(
        items=items,
        offset=int(data.get("offset", offset)),
        limit=int(data.get("limit", limit)),
        total=int(data.get("total", len(items))),
    )


def _list_image_names(board_id: str) -> Steps[list[str]]:
    names = yield from get_json(f"/api/v1/boards/{quote(board_id, safe='')}/image_names")
    return [str(n) for n in names]


def _count_images(board_id: str | None) -> Steps[int]:
    page = yield from _list_images(board_id, 0, 0, None, None, True, "DESC", None)
    return page.total


def _upload_image(
    image: str | Path | bytes,
    filename: str | None,
    board_id: str | None,
    image_category: str,
    is_intermediate: bool,
) -> Steps[IvkImage]:
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise InvokeAIError(f"cannot upload {str(path)!r}: no such file")
        data = path.read_bytes()
        name = filename or path.name
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        name = filename or "image.png"
    else:
        raise InvokeAIError(f"upload_image takes a file path or bytes, got {type(image).__name__}")
    if not data:
        raise InvokeAIError(f"cannot upload {name!r}: it is empty")
    params: dict[str, Any] = {"image_category": image_category, "is_intermediate": is_intermediate}
    board = _board_param(board_id)
    if board is not None:
        params["board_id"] = board
    resp = yield from request(
        "POST",
        f"{IMAGES}/upload",
        params=params,
        files={"file": (name, data, _guess_content_type(name))},
        retry=False,
    )
    return IvkImage.from_api(resp.json())


def _download_image(image_name: str, full_resolution: bool) -> Steps[bytes]:
    suffix = "/full" if full_resolution else "/thumbnail"
    resp = yield from request("GET", _image_path(image_name, suffix))
    return resp.content


def _download_to(image_name: str, directory: str | Path, full_resolution: bool) -> Steps[Path]:
    data = yield from _download_image(image_name, full_resolution)
    target_dir = Path(directory)
    target_dir.mkdir(parents=True, exist_ok=True)
    name = image_name if full_resolution else Path(image_name).stem + ".webp"
    target = target_dir / name
    target.write_bytes(data)
    return target


def _get_metadata(image_name: str) -> Steps[dict[str, Any] | None]:
    data = yield from get_json(_image_path(image_name, "/metadata"))
    return dict(data) if isinstance(data, dict) else None


def _embedded(image_name: str, key: str) -> Steps[dict[str, Any] | None]:
    data = yield from get_json(_image_path(image_name, "/workflow"))
    raw = data.get(key) if isinstance(data, dict) else None
    if raw is None:
        return None
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise InvokeAIError(f"image {image_name!r} carries an unreadable {key}") from exc
    return parsed if isinstance(parsed, dict) else None


def _delete_image(image_name: str) -> Steps[bool]:
    resp = yield from request("DELETE", _image_path(image_name))
    return image_name in (resp.json().get("deleted_images") or [])


def _delete_images(image_names: list[str]) -> Steps[list[str]]:
    if not image_names:
        return []
    resp = yield from request(
        "POST", f"{IMAGES}/delete", json={"image_names": list(image_names)}, retry=True
    )
    return [str(n) for n in resp.json().get("deleted_images") or []]


def _star(action: str, image_names: list[str]) -> Steps[list[str]]:
    if not image_names:
        return []
    resp = yield from request(
        "POST", f"{IMAGES}/{action}", json={"image_names": list(image_names)}, retry=True
    )
    key = "starred_images" if action == "star" else "unstarred_images"
    return [str(n) for n in resp.json().get(key) or []]


def _star_one(action: str, image_name: str) -> Steps[bool]:
    return image_name in (yield from _star(action, [image_name]))


def _remove_from_board(image_name: str) -> Steps[None]:
    yield from request("DELETE", f"{BOARD_IMAGES}/", json={"image_name": image_name})


def _add_to_board(image_name: str, board_id: str) -> Steps[None]:
    if board_id == UNCATEGORIZED_BOARD_ID:
        yield from _remove_from_board(image_name)
        return
    yield from request(
        "POST",
        f"{BOARD_IMAGES}/",
        json={"board_id": board_id, "image_name": image_name},
        retry=True,
    )


class ImageRepository(StepRunner):
    """Every image operation, independent of boards. Reach it as ``client.images``.

    Each method that talks to the server has an asyncio twin with an ``a`` in front
    (``aget_image``, ``aupload_image``...): same arguments, results and errors.

    Example::

        page = client.images.list_images(board_id="none", offset=0, limit=20)
        for img in page.items:
            print(img.image_name)
    """

    def __init__(self, client: InvokeAIClient) -> None:
        self._client = client

    @property
    def client(self) -> InvokeAIClient:
        """The client this repository talks through."""
        return self._client

    # ------------------------------------------------------------------ records

    def get_image(self, image_name: str) -> IvkImage:
        """The image's record. Raises :class:`NotFoundError` when there is no such image.

        Example::

            client.images.get_image("abc.png").board_id
        """
        return self._run(_get_image(image_name))

    async def aget_image(self, image_name: str) -> IvkImage:
        """Asyncio twin of :meth:`get_image` (:class:`NotFoundError` when there is none).

        Example::

            record = await client.images.aget_image("abc.png")
        """
        return await self._arun(_get_image(image_name))

    def try_get_image(self, image_name: str) -> IvkImage | None:
        """Like :meth:`get_image` but ``None`` when the image does not exist."""
        return self._run(_try_get_image(image_name))

    async def atry_get_image(self, image_name: str) -> IvkImage | None:
        """Asyncio twin of :meth:`try_get_image`.

        Example::

            if await client.images.atry_get_image(name) is None:
                print(name, "is gone")
        """
        return await self._arun(_try_get_image(image_name))

    def list_images(
        self,
        board_id: str | None = None,
        *,
        offset: int = 0,
        limit: int = 10,
        categories: list[str] | None = None,
        is_intermediate: bool | None = None,
        starred_first: bool = True,
        order_dir: str = "DESC",
        search_term: str | None = None,
    ) -> ImagePage:
        """One page of image records, newest first (starred first by default).

        ``board_id``: a board id, ``"none"`` for uncategorized, ``None`` for every image.
        ``limit`` is 0..100 (the server's cap); ``limit=0`` only counts (``total``).

        Example::

            page = client.images.list_images("none", offset=0, limit=5)
            print(page.total, [i.image_name for i in page.items])
        """
        return self._run(
            _list_images(
                board_id,
                offset,
                limit,
                categories,
                is_intermediate,
                starred_first,
                order_dir,
                search_term,
            )
        )

    async def alist_images(
        self,
        board_id: str | None = None,
        *,
        offset: int = 0,
        limit: int = 10,
        categories: list[str] | None = None,
        is_intermediate: bool | None = None,
        starred_first: bool = True,
        order_dir: str = "DESC",
        search_term: str | None = None,
    ) -> ImagePage:
        """Asyncio twin of :meth:`list_images`.

        Example::

            page = await client.images.alist_images("none", offset=0, limit=5)
        """
        return await self._arun(
            _list_images(
                board_id,
                offset,
                limit,
                categories,
                is_intermediate,
                starred_first,
                order_dir,
                search_term,
            )
        )

    def list_image_names(self, board_id: str = UNCATEGORIZED_BOARD_ID) -> list[str]:
        """Every image name on a board (``"none"`` = uncategorized), in one request."""
        return self._run(_list_image_names(board_id))

    async def alist_image_names(self, board_id: str = UNCATEGORIZED_BOARD_ID) -> list[str]:
        """Asyncio twin of :meth:`list_image_names`.

        Example::

            names = await client.images.alist_image_names(board.board_id)
        """
        return await self._arun(_list_image_names(board_id))

    def count_images(self, board_id: str | None = None) -> int:
        """How many (non-intermediate and intermediate) images a board holds."""
        return self._run(_count_images(board_id))

    async def acount_images(self, board_id: str | None = None) -> int:
        """Asyncio twin of :meth:`count_images`.

        Example::

            n = await client.images.acount_images("none")
        """
        return await self._arun(_count_images(board_id))

    # ------------------------------------------------------------------ upload / download

    def upload_image(
        self,
        image: str | Path | bytes,
        *,
        filename: str | None = None,
        board_id: str | None = None,
        image_category: str = "user",
        is_intermediate: bool = False,
    ) -> IvkImage:
        """Upload a file (path) or raw bytes; returns the new image's record.

        ``board_id`` ``None`` or ``"none"`` leaves the image uncategorized. The server gives
        the image a new name; ``filename`` only sets the content type (PNG by default).

        Example::

            img = client.images.upload_image("input.png", board_id=board.board_id)
            img2 = client.images.upload_image(png_bytes, filename="in.png")
        """
        return self._run(_upload_image(image, filename, board_id, image_category, is_intermediate))

    async def aupload_image(
        self,
        image: str | Path | bytes,
        *,
        filename: str | None = None,
        board_id: str | None = None,
        image_category: str = "user",
        is_intermediate: bool = False,
    ) -> IvkImage:
        """Asyncio twin of :meth:`upload_image` (a file path is read in the calling thread).

        Example::

            imgs = await asyncio.gather(
                *(client.images.aupload_image(p, board_id=board.board_id) for p in paths)
            )
        """
        return await self._arun(
            _upload_image(image, filename, board_id, image_category, is_intermediate)
        )

    def download_image(self, image_name: str, full_resolution: bool = True) -> bytes:
        """The image file in one request: the full PNG, or the WebP thumbnail.

        Example::

            Path("out.png").write_bytes(client.images.download_image(name))
        """
        return self._run(_download_image(image_name, full_resolution))

    async def adownload_image(self, image_name: str, full_resolution: bool = True) -> bytes:
        """Asyncio twin of :meth:`download_image`.

        Example::

            png = await client.images.adownload_image(name)
        """
        return await self._arun(_download_image(image_name, full_resolution))

    def download_to(
        self, image_name: str, directory: str | Path, full_resolution: bool = True
    ) -> Path:
        """Download an image into ``directory`` under its own name; returns the path."""
        return self._run(_download_to(image_name, directory, full_resolution))

    async def adownload_to(
        self, image_name: str, directory: str | Path, full_resolution: bool = True
    ) -> Path:
        """Asyncio twin of :meth:`download_to` (the file is written in the calling thread).

        Example::

            path = await client.images.adownload_to(name, "out")
        """
        return await self._arun(_download_to(image_name, directory, full_resolution))

    # ------------------------------------------------------------------ metadata / workflow

    def get_metadata(self, image_name: str) -> dict[str, Any] | None:
        """The metadata saved with the image (``None`` when it has none)."""
        return self._run(_get_metadata(image_name))

    async def aget_metadata(self, image_name: str) -> dict[str, Any] | None:
        """Asyncio twin of :meth:`get_metadata`.

        Example::

            meta = await client.images.aget_metadata(name)
        """
        return await self._arun(_get_metadata(image_name))

    def get_workflow(self, image_name: str) -> dict[str, Any] | None:
        """The GUI workflow embedded in the image (parsed JSON), or ``None``.

        Example::

            wf = client.images.get_workflow(name)
            if wf:
                print(wf["name"], len(wf["nodes"]))
        """
        return self._run(_embedded(image_name, "workflow"))

    async def aget_workflow(self, image_name: str) -> dict[str, Any] | None:
        """Asyncio twin of :meth:`get_workflow`.

        Example::

            wf = await client.images.aget_workflow(name)
        """
        return await self._arun(_embedded(image_name, "workflow"))

    def get_graph(self, image_name: str) -> dict[str, Any] | None:
        """The graph that made the image (parsed JSON), or ``None``."""
        return self._run(_embedded(image_name, "graph"))

    async def aget_graph(self, image_name: str) -> dict[str, Any] | None:
        """Asyncio twin of :meth:`get_graph`.

        Example::

            graph = await client.images.aget_graph(name)
        """
        return await self._arun(_embedded(image_name, "graph"))

    # ------------------------------------------------------------------ changes

    def delete_image(self, image_name: str) -> bool:
        """Delete an image for good. True if the server deleted it.

        Raises :class:`NotFoundError` when there is no such image.
        """
        return self._run(_delete_image(image_name))

    async def adelete_image(self, image_name: str) -> bool:
        """Asyncio twin of :meth:`delete_image` (:class:`NotFoundError` when there is none).

        Example::

            assert await client.images.adelete_image(name)
        """
        return await self._arun(_delete_image(image_name))

    def delete_images(self, image_names: list[str]) -> list[str]:
        """Delete several images in one request; returns the names actually deleted."""
        return self._run(_delete_images(image_names))

    async def adelete_images(self, image_names: list[str]) -> list[str]:
        """Asyncio twin of :meth:`delete_images`.

        Example::

            gone = await client.images.adelete_images([a, b])
        """
        return await self._arun(_delete_images(image_names))

    def star_images(self, image_names: list[str]) -> list[str]:
        """Star images; returns the names the server starred."""
        return self._run(_star("star", image_names))

    async def astar_images(self, image_names: list[str]) -> list[str]:
        """Asyncio twin of :meth:`star_images`.

        Example::

            starred = await client.images.astar_images([a, b])
        """
        return await self._arun(_star("star", image_names))

    def unstar_images(self, image_names: list[str]) -> list[str]:
        """Unstar images; returns the names the server unstarred."""
        return self._run(_star("unstar", image_names))

    async def aunstar_images(self, image_names: list[str]) -> list[str]:
        """Asyncio twin of :meth:`unstar_images`.

        Example::

            unstarred = await client.images.aunstar_images([a, b])
        """
        return await self._arun(_star("unstar", image_names))

    def star_image(self, image_name: str) -> bool:
        """Star one image. True if the server starred it."""
        return self._run(_star_one("star", image_name))

    async def astar_image(self, image_name: str) -> bool:
        """Asyncio twin of :meth:`star_image`.

        Example::

            await client.images.astar_image(name)
        """
        return await self._arun(_star_one("star", image_name))

    def unstar_image(self, image_name: str) -> bool:
        """Unstar one image. True if the server unstarred it."""
        return self._run(_star_one("unstar", image_name))

    async def aunstar_image(self, image_name: str) -> bool:
        """Asyncio twin of :meth:`unstar_image`.

        Example::

            await client.images.aunstar_image(name)
        """
        return await self._arun(_star_one("unstar", image_name))

    # ------------------------------------------------------------------ board membership

    def add_to_board(self, image_name: str, board_id: str) -> None:
        """Put an image on a board (it leaves its previous board). ``"none"`` = uncategorize."""
        self._run(_add_to_board(image_name, board_id))

    async def aadd_to_board(self, image_name: str, board_id: str) -> None:
        """Asyncio twin of :meth:`add_to_board`.

        Example::

            await client.images.aadd_to_board(name, board.board_id)
        """
        await self._arun(_add_to_board(image_name, board_id))

    def remove_from_board(self, image_name: str) -> None:
        """Take an image off its board: it becomes uncategorized (it is not deleted)."""
        self._run(_remove_from_board(image_name))

    async def aremove_from_board(self, image_name: str) -> None:
        """Asyncio twin of :meth:`remove_from_board`.

        Example::

            await client.images.aremove_from_board(name)
        """
        await self._arun(_remove_from_board(image_name))
