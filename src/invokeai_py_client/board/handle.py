"""Per-board operations: :class:`BoardHandle`.

A handle names one board (``"none"`` = uncategorized) and runs image operations against it.
It builds on :class:`~invokeai_py_client.images.ImageRepository`; it keeps the board record it
was made with (``handle.board``) until :meth:`BoardHandle.refresh`.

Example::

    board = client.board_repo.create_board("My Project")
    img = board.upload_image("reference.png")
    data = board.download_image(img.image_name, full_resolution=True)
    board.move_image_to(img.image_name, "none")      # back to uncategorized
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..exceptions import BoardError, NotFoundError, ServerError
from ..images import IvkImage
from .models import UNCATEGORIZED_BOARD_ID, IvkBoard

if TYPE_CHECKING:
    from ..client import InvokeAIClient
    from ..images import ImageRepository

__all__ = ["BoardHandle"]


class BoardHandle:
    """Operations on one board's images.

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

    @property
    def _images(self) -> ImageRepository:
        return self._client.images

    def refresh(self) -> IvkBoard:
        """Re-read the board record (name, counts) from the server and return it."""
        try:
            self._board = self._client.board_repo.get_board(self.board_id)
        except BoardError:
            self._client.board_repo._forget(self.board_id)
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
        return self._images.list_images(
            self.board_id,
            offset=offset,
            limit=limit,
            categories=categories,
            is_intermediate=is_intermediate,
            starred_first=starred_first,
            order_dir=order_dir,
            search_term=search_term,
        ).items

    def list_image_names(self) -> list[str]:
        """Every image name on this board, in one request."""
        return self._images.list_image_names(self.board_id)

    def count_images(self) -> int:
        """How many images this board holds (one cheap request)."""
        return self._images.count_images(self.board_id)

    # ------------------------------------------------------------------ upload / download

    def upload_image(self, file_path: str | Path, *, is_intermediate: bool = False) -> IvkImage:
        """Upload an image file onto this board; returns its record.

        Example::

            img = handle.upload_image("image.png")
        """
        return self._images.upload_image(
            file_path, board_id=self.board_id, is_intermediate=is_intermediate
        )

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
        return self._images.upload_image(
            image_data, filename=filename, board_id=self.board_id, is_intermediate=is_intermediate
        )

    def download_image(self, image_name: str, full_resolution: bool = True) -> bytes:
        """Download an image in one request (full PNG, or the WebP thumbnail).

        Works for any image name, whatever board it is on.

        Example::

            open(img.image_name, "wb").write(handle.download_image(img.image_name))
        """
        return self._images.download_image(image_name, full_resolution=full_resolution)

    # ------------------------------------------------------------------ organize

    def _require_member(self, image_name: str, action: str) -> IvkImage:
        record = self._images.get_image(image_name)
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
        self._put_on_board(image_name, target_board_id or UNCATEGORIZED_BOARD_ID)
        return True

    def add_image(self, image_name: str) -> bool:
        """Put an existing image (from any board) on this board."""
        self._put_on_board(image_name, self.board_id)
        return True

    def _put_on_board(self, image_name: str, target: str) -> None:
        try:
            self._images.add_to_board(image_name, target)
        except NotFoundError as exc:
            raise BoardError(
                f"cannot move image {image_name!r}: no board with id {target!r}"
            ) from exc
        except ServerError as exc:
            # the server answers 500 rather than 404 for an unknown image name
            if self._images.try_get_image(image_name) is None:
                raise BoardError(
                    f"cannot move image {image_name!r}: there is no image with that name"
                ) from exc
            raise

    def remove_image(self, image_name: str) -> bool:
        """Take an image off this board; it becomes uncategorized (not deleted).

        Raises :class:`BoardError` if the image is not on this board.
        """
        self._require_member(image_name, "remove")
        if not self.is_uncategorized:
            self._images.remove_from_board(image_name)
        return True

    def delete_image(self, image_name: str) -> bool:
        """Delete an image of this board for good.

        Raises :class:`BoardError` if the image is not on this board.
        """
        self._require_member(image_name, "delete")
        return self._images.delete_image(image_name)

    def star_image(self, image_name: str) -> bool:
        """Star an image. True if the server starred it."""
        return self._images.star_image(image_name)

    def unstar_image(self, image_name: str) -> bool:
        """Unstar an image. True if the server unstarred it."""
        return self._images.unstar_image(image_name)

    def get_image(self, image_name: str) -> IvkImage:
        """An image's record (any board)."""
        return self._images.get_image(image_name)
