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
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

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


class ImageRepository:
    """Every image operation, independent of boards. Reach it as ``client.images``.

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
        return IvkImage.from_api(self._client.http.get_json(_image_path(image_name)))

    def try_get_image(self, image_name: str) -> IvkImage | None:
        """Like :meth:`get_image` but ``None`` when the image does not exist."""
        try:
            return self.get_image(image_name)
        except NotFoundError:
            return None

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
        data = self._client.http.get_json(f"{IMAGES}/", params=params)
        items = [IvkImage.from_api(d) for d in data.get("items", [])]
        return ImagePage(
            items=items,
            offset=int(data.get("offset", offset)),
            limit=int(data.get("limit", limit)),
            total=int(data.get("total", len(items))),
        )

    def list_image_names(self, board_id: str = UNCATEGORIZED_BOARD_ID) -> list[str]:
        """Every image name on a board (``"none"`` = uncategorized), in one request."""
        path = f"/api/v1/boards/{quote(board_id, safe='')}/image_names"
        return [str(n) for n in self._client.http.get_json(path)]

    def count_images(self, board_id: str | None = None) -> int:
        """How many (non-intermediate and intermediate) images a board holds."""
        return self.list_images(board_id, offset=0, limit=0).total

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
            raise InvokeAIError(
                f"upload_image takes a file path or bytes, got {type(image).__name__}"
            )
        if not data:
            raise InvokeAIError(f"cannot upload {name!r}: it is empty")
        params: dict[str, Any] = {
            "image_category": image_category,
            "is_intermediate": is_intermediate,
        }
        board = _board_param(board_id)
        if board is not None:
            params["board_id"] = board
        resp = self._client.http.request(
            "POST",
            f"{IMAGES}/upload",
            params=params,
            files={"file": (name, data, _guess_content_type(name))},
            retry=False,
        )
        return IvkImage.from_api(resp.json())

    def download_image(self, image_name: str, full_resolution: bool = True) -> bytes:
        """The image file in one request: the full PNG, or the WebP thumbnail.

        Example::

            Path("out.png").write_bytes(client.images.download_image(name))
        """
        suffix = "/full" if full_resolution else "/thumbnail"
        return self._client.http.request("GET", _image_path(image_name, suffix)).content

    def download_to(
        self, image_name: str, directory: str | Path, full_resolution: bool = True
    ) -> Path:
        """Download an image into ``directory`` under its own name; returns the path."""
        target_dir = Path(directory)
        target_dir.mkdir(parents=True, exist_ok=True)
        name = image_name if full_resolution else Path(image_name).stem + ".webp"
        target = target_dir / name
        target.write_bytes(self.download_image(image_name, full_resolution))
        return target

    # ------------------------------------------------------------------ metadata / workflow

    def get_metadata(self, image_name: str) -> dict[str, Any] | None:
        """The metadata saved with the image (``None`` when it has none)."""
        data = self._client.http.get_json(_image_path(image_name, "/metadata"))
        return dict(data) if isinstance(data, dict) else None

    def get_workflow(self, image_name: str) -> dict[str, Any] | None:
        """The GUI workflow embedded in the image (parsed JSON), or ``None``.

        Example::

            wf = client.images.get_workflow(name)
            if wf:
                print(wf["name"], len(wf["nodes"]))
        """
        return self._embedded(image_name, "workflow")

    def get_graph(self, image_name: str) -> dict[str, Any] | None:
        """The graph that made the image (parsed JSON), or ``None``."""
        return self._embedded(image_name, "graph")

    def _embedded(self, image_name: str, key: str) -> dict[str, Any] | None:
        data = self._client.http.get_json(_image_path(image_name, "/workflow"))
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

    # ------------------------------------------------------------------ changes

    def delete_image(self, image_name: str) -> bool:
        """Delete an image for good. True if the server deleted it.

        Raises :class:`NotFoundError` when there is no such image.
        """
        data = self._client.http.request("DELETE", _image_path(image_name)).json()
        return image_name in (data.get("deleted_images") or [])

    def delete_images(self, image_names: list[str]) -> list[str]:
        """Delete several images in one request; returns the names actually deleted."""
        if not image_names:
            return []
        data = self._client.http.request(
            "POST", f"{IMAGES}/delete", json={"image_names": list(image_names)}, retry=True
        ).json()
        return [str(n) for n in data.get("deleted_images") or []]

    def star_images(self, image_names: list[str]) -> list[str]:
        """Star images; returns the names the server starred."""
        return self._star("star", image_names)

    def unstar_images(self, image_names: list[str]) -> list[str]:
        """Unstar images; returns the names the server unstarred."""
        return self._star("unstar", image_names)

    def star_image(self, image_name: str) -> bool:
        """Star one image. True if the server starred it."""
        return image_name in self._star("star", [image_name])

    def unstar_image(self, image_name: str) -> bool:
        """Unstar one image. True if the server unstarred it."""
        return image_name in self._star("unstar", [image_name])

    def _star(self, action: str, image_names: list[str]) -> list[str]:
        if not image_names:
            return []
        data = self._client.http.request(
            "POST", f"{IMAGES}/{action}", json={"image_names": list(image_names)}, retry=True
        ).json()
        key = "starred_images" if action == "star" else "unstarred_images"
        return [str(n) for n in data.get(key) or []]

    # ------------------------------------------------------------------ board membership

    def add_to_board(self, image_name: str, board_id: str) -> None:
        """Put an image on a board (it leaves its previous board). ``"none"`` = uncategorize."""
        if board_id == UNCATEGORIZED_BOARD_ID:
            self.remove_from_board(image_name)
            return
        self._client.http.request(
            "POST",
            f"{BOARD_IMAGES}/",
            json={"board_id": board_id, "image_name": image_name},
            retry=True,
        )

    def remove_from_board(self, image_name: str) -> None:
        """Take an image off its board: it becomes uncategorized (it is not deleted)."""
        self._client.http.request("DELETE", f"{BOARD_IMAGES}/", json={"image_name": image_name})
