"""Per-board operations: :class:`BoardHandle`.

A handle names one board (``"none"`` = uncategorized) and runs image operations against it.
It builds on :class:`~invokeai_py_client.images.ImageRepository`; it keeps the board record it
was made with (``handle.board``) until :meth:`BoardHandle.refresh`.

Example::

    board = client.board_repo.create_board("My Project")
    img = board.upload_image("reference.png")
    data = board.download_image(img.image_name, full_resolution=True)
    board.move_image_to(img.image_name, "none")      # back to uncategorized

Every method that talks to the server has an asyncio twin named with an ``a`` in front
(``await board.aupload_image("reference.png")``): same arguments, results and errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .._steps import StepRunner, Steps
from ..exceptions import BoardError, NotFoundError, ServerError
from ..images import (
    IvkImage,
    _add_to_board,
    _count_images,
    _delete_image,
    _download_image,
    _get_image,
    _list_image_names,
    _list_images,
    _remove_from_board,
    _star_one,
    _try_get_image,
    _upload_image,
)
from .models import UNCATEGORIZED_BOARD_ID, IvkBoard

if TYPE_CHECKING:
    from ..client import InvokeAIClient

__all__ = ["BoardHandle"]


class BoardHandle(StepRunner):
    """Operations on one board's images.

    Each method that talks to the server has an asyncio twin with an ``a`` in front
    (``alist_images``, ``aupload_image``...): same arguments, results and errors.

    Example::

        handle = client.board_repo.get_board_handle("none")   # uncategorized
        for img in handle.list_images(offset=0, limit=20):
            print(img.image_name, img.starred)
    """

    def __init__(self, client: InvokeAIClient, board: IvkBoard) -> None:
        self._client = client
        self._board = board

    # ------------------------------------------------------------------ identity

    @property
    def client(self) -> InvokeAIClient:
        """The client this handle talks through."""
        return self._client

    @property
    def board(self) -> IvkBoard:
        """The board record (as of creation or the last :meth:`refresh`)."""
        return self._board

    @property
    def board_id(self) -> str:
        """The board's id (``"none"`` for uncategorized)."""
        return self._board.board_id

    @property
    def board_name(self) -> str:
        """The board's name (``"Uncategorized"`` for ``"none"``)."""
        return self._board.board_name

    @property
    def is_uncategorized(self) -> bool:
        """True for the uncategorized pseudo-board."""
        return self._board.is_uncategorized()

    def refresh(self) -> IvkBoard:
        """Re-read the board record (name, counts) from the server and return it."""
        return self._run(self._refresh())

    async def arefresh(self) -> IvkBoard:
        """Asyncio twin of :meth:`refresh`.

        Example::

            print((await handle.arefresh()).image_count)
        """
        return await self._arun(self._refresh())

    def _refresh(self) -> Steps[IvkBoard]:
        repo = self._client.board_repo
        try:
            self._board = yield from repo._get_board(self.board_id)
        except BoardError:
            repo._forget(self.board_id)
            raise
        return self._board

    def __repr__(self) -> str:
        return f"BoardHandle(board_id={self.board_id!r}, board_name={self.board_name!r})"

    # ------------------------------------------------------------------ listing

    def list_images(
        self,
        offset: int = 0,
        limit: int = 100,
        *,
        categories: list[str] | None = None,
        is_intermediate: bool | None = None,
        starred_first: bool = True,
        order_dir: str = "DESC",
        search_term: str | None = None,
    ) -> list[IvkImage]:
        """One page of this board's images (newest first; starred first by default).

        ``offset``/``limit`` are sent to the server (``limit`` at most 100).

        Example::

            first_page = handle.list_images(offset=0, limit=10)
            second_page = handle.list_images(offset=10, limit=10)
        """
        steps = _list_images(
            self.board_id,
            offset,
            limit,
            categories,
            is_intermediate,
            starred_first,
            order_dir,
            search_term,
        )
        return self._run(steps).items

    async def alist_images(
        self,
        offset: int = 0,
        limit: int = 100,
        *,
        categories: list[str] | None = None,
        is_intermediate: bool | None = None,
        starred_first: bool = True,
        order_dir: str = "DESC",
        search_term: str | None = None,
    ) -> list[IvkImage]:
        """Asyncio twin of :meth:`list_images`.

        Example::

            first_page = await handle.alist_images(offset=0, limit=10)
        """
        steps = _list_images(
            self.board_id,
            offset,
            limit,
            categories,
            is_intermediate,
            starred_first,
            order_dir,
            search_term,
        )
        return (await self._arun(steps)).items

    def list_image_names(self) -> list[str]:
        """Every image name on this board, in one request."""
        return self._run(_list_image_names(self.board_id))

    async def alist_image_names(self) -> list[str]:
        """Asyncio twin of :meth:`list_image_names`.

        Example::

            names = await handle.alist_image_names()
        """
        return await self._arun(_list_image_names(self.board_id))

    def count_images(self) -> int:
        """How many images this board holds (one cheap request)."""
        return self._run(_count_images(self.board_id))

    async def acount_images(self) -> int:
        """Asyncio twin of :meth:`count_images`.

        Example::

            n = await handle.acount_images()
        """
        return await self._arun(_count_images(self.board_id))

    # ------------------------------------------------------------------ upload / download

    def upload_image(self, file_path: str | Path, *, is_intermediate: bool = False) -> IvkImage:
        """Upload an image file onto this board; returns its record.

        Example::

            img = handle.upload_image("image.png")
        """
        return self._run(_upload_image(file_path, None, self.board_id, "user", is_intermediate))

    async def aupload_image(
        self, file_path: str | Path, *, is_intermediate: bool = False
    ) -> IvkImage:
        """Asyncio twin of :meth:`upload_image`.

        Example::

            img = await handle.aupload_image("image.png")
        """
        steps = _upload_image(file_path, None, self.board_id, "user", is_intermediate)
        return await self._arun(steps)

    def upload_image_data(
        self,
        image_data: bytes,
        filename: str = "image.png",
        *,
        is_intermediate: bool = False,
    ) -> IvkImage:
        """Upload image bytes onto this board; ``filename`` sets the content type.

        Example::

            img = handle.upload_image_data(open("image.png", "rb").read(), filename="image.png")
        """
        return self._run(
            _upload_image(image_data, filename, self.board_id, "user", is_intermediate)
        )

    async def aupload_image_data(
        self,
        image_data: bytes,
        filename: str = "image.png",
        *,
        is_intermediate: bool = False,
    ) -> IvkImage:
        """Asyncio twin of :meth:`upload_image_data`.

        Example::

            imgs = await asyncio.gather(*(handle.aupload_image_data(b) for b in pngs))
        """
        steps = _upload_image(image_data, filename, self.board_id, "user", is_intermediate)
        return await self._arun(steps)

    def download_image(self, image_name: str, full_resolution: bool = True) -> bytes:
        """Download an image in one request (full PNG, or the WebP thumbnail).

        Works for any image name, whatever board it is on.

        Example::

            open(img.image_name, "wb").write(handle.download_image(img.image_name))
        """
        return self._run(_download_image(image_name, full_resolution))

    async def adownload_image(self, image_name: str, full_resolution: bool = True) -> bytes:
        """Asyncio twin of :meth:`download_image`.

        Example::

            png = await handle.adownload_image(img.image_name)
        """
        return await self._arun(_download_image(image_name, full_resolution))

    # ------------------------------------------------------------------ organize

    def _require_member(self, image_name: str, action: str) -> Steps[IvkImage]:
        record = yield from _get_image(image_name)
        where = record.board_id or UNCATEGORIZED_BOARD_ID
        if where != self.board_id:
            raise BoardError(
                f"cannot {action} image {image_name!r} through board {self.board_name!r} "
                f"({self.board_id}): the image is on board {where!r}; use that board's handle"
            )
        return record

    def move_image_to(self, image_name: str, target_board_id: str | None) -> bool:
        """Move an image to another board (``"none"`` or ``None`` = uncategorized).

        The image moves from whatever board it is on (an image is on one board at most),
        in one request; the target board must exist.

        Example::

            client.board_repo.get_uncategorized_handle().move_image_to(name, board.board_id)
        """
        return self._run(self._put_on_board(image_name, target_board_id or UNCATEGORIZED_BOARD_ID))

    async def amove_image_to(self, image_name: str, target_board_id: str | None) -> bool:
        """Asyncio twin of :meth:`move_image_to`.

        Example::

            await handle.amove_image_to(name, other_board.board_id)
        """
        target = target_board_id or UNCATEGORIZED_BOARD_ID
        return await self._arun(self._put_on_board(image_name, target))

    def add_image(self, image_name: str) -> bool:
        """Put an existing image (from any board) on this board."""
        return self._run(self._put_on_board(image_name, self.board_id))

    async def aadd_image(self, image_name: str) -> bool:
        """Asyncio twin of :meth:`add_image`.

        Example::

            await handle.aadd_image(name)
        """
        return await self._arun(self._put_on_board(image_name, self.board_id))

    def _put_on_board(self, image_name: str, target: str) -> Steps[bool]:
        try:
            yield from _add_to_board(image_name, target)
        except NotFoundError as exc:
            raise BoardError(
                f"cannot move image {image_name!r}: no board with id {target!r}"
            ) from exc
        except ServerError as exc:
            # the server answers 500 rather than 404 for an unknown image name
            if (yield from _try_get_image(image_name)) is None:
                raise BoardError(
                    f"cannot move image {image_name!r}: there is no image with that name"
                ) from exc
            raise
        return True

    def remove_image(self, image_name: str) -> bool:
        """Take an image off this board; it becomes uncategorized (not deleted).

        Raises :class:`BoardError` if the image is not on this board.
        """
        return self._run(self._remove_image(image_name))

    async def aremove_image(self, image_name: str) -> bool:
        """Asyncio twin of :meth:`remove_image` (:class:`BoardError` if not on this board).

        Example::

            await handle.aremove_image(name)   # now uncategorized
        """
        return await self._arun(self._remove_image(image_name))

    def _remove_image(self, image_name: str) -> Steps[bool]:
        yield from self._require_member(image_name, "remove")
        if not self.is_uncategorized:
            yield from _remove_from_board(image_name)
        return True

    def delete_image(self, image_name: str) -> bool:
        """Delete an image of this board for good.

        Raises :class:`BoardError` if the image is not on this board.
        """
        return self._run(self._delete_image(image_name))

    async def adelete_image(self, image_name: str) -> bool:
        """Asyncio twin of :meth:`delete_image` (:class:`BoardError` if not on this board).

        Example::

            await handle.adelete_image(name)
        """
        return await self._arun(self._delete_image(image_name))

    def _delete_image(self, image_name: str) -> Steps[bool]:
        yield from self._require_member(image_name, "delete")
        return (yield from _delete_image(image_name))

    def star_image(self, image_name: str) -> bool:
        """Star an image. True if the server starred it."""
        return self._run(_star_one("star", image_name))

    async def astar_image(self, image_name: str) -> bool:
        """Asyncio twin of :meth:`star_image`.

        Example::

            assert await handle.astar_image(name)
        """
        return await self._arun(_star_one("star", image_name))

    def unstar_image(self, image_name: str) -> bool:
        """Unstar an image. True if the server unstarred it."""
        return self._run(_star_one("unstar", image_name))

    async def aunstar_image(self, image_name: str) -> bool:
        """Asyncio twin of :meth:`unstar_image`.

        Example::

            await handle.aunstar_image(name)
        """
        return await self._arun(_star_one("unstar", image_name))

    def get_image(self, image_name: str) -> IvkImage:
        """An image's record (any board)."""
        return self._run(_get_image(image_name))

    async def aget_image(self, image_name: str) -> IvkImage:
        """Asyncio twin of :meth:`get_image`.

        Example::

            record = await handle.aget_image(name)
        """
        return await self._arun(_get_image(image_name))
