"""Board lifecycle: :class:`BoardRepository` (list, create, look up, rename, delete).

Example::

    repo = client.board_repo
    for b in repo.list_boards(include_uncategorized=True):
        print(b.board_id, b.board_name, b.image_count)
    handle = repo.create_board("My Project")
    repo.update_board(handle.board_id, board_name="My Project v2")
    repo.delete_board(handle.board_id)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..exceptions import BoardError, NotFoundError
from .handle import BoardHandle
from .models import UNCATEGORIZED_BOARD_ID, UNCATEGORIZED_BOARD_NAME, IvkBoard

if TYPE_CHECKING:
    from ..client import InvokeAIClient

__all__ = ["BoardRepository"]

BOARDS = "/api/v1/boards"
MAX_NAME_LENGTH = 300
_ASSET_CATEGORIES = ["user", "control", "mask", "other"]


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BoardError(f"a board name must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise BoardError(f"a board name is at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    return name


def _board_path(board_id: str) -> str:
    if not board_id or not isinstance(board_id, str):
        raise BoardError(f"a board id is required, got {board_id!r}")
    return f"{BOARDS}/{quote(board_id, safe='')}"


class BoardRepository:
    """Boards on the server. Reach it as ``client.board_repo``.

    Example::

        handle = client.board_repo.get_board_handle_by_name("samples")
        img = handle.upload_image("in.png")
    """

    def __init__(self, client: InvokeAIClient) -> None:
        self._client = client
        self._handles: dict[str, BoardHandle] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ listing

    def list_boards(
        self, include_uncategorized: bool = False, include_archived: bool = False
    ) -> list[IvkBoard]:
        """Every board (one request), newest first.

        ``include_uncategorized`` prepends the ``"none"`` pseudo-board with its image count.

        Example::

            names = [b.board_name for b in client.board_repo.list_boards()]
        """
        params = {"all": True, "include_archived": include_archived}
        data = self._client.http.get_json(f"{BOARDS}/", params=params)
        items = data.get("items", []) if isinstance(data, dict) else data
        boards = [IvkBoard.from_api(d) for d in items]
        if include_uncategorized:
            boards.insert(0, self._uncategorized_record())
        return boards

    def _uncategorized_record(self) -> IvkBoard:
        images = self._client.images
        board = IvkBoard.uncategorized(
            image_count=images.list_images(
                UNCATEGORIZED_BOARD_ID, limit=0, categories=["general"], is_intermediate=False
            ).total
        )
        board.asset_count = images.list_images(
            UNCATEGORIZED_BOARD_ID, limit=0, categories=_ASSET_CATEGORIES, is_intermediate=False
        ).total
        return board

    def get_board(self, board_id: str) -> IvkBoard:
        """A board's record (``"none"`` gives the uncategorized pseudo-board).

        Raises :class:`BoardError` when there is no such board.
        """
        if board_id in (None, UNCATEGORIZED_BOARD_ID):
            return self._uncategorized_record()
        try:
            return IvkBoard.from_api(self._client.http.get_json(_board_path(board_id)))
        except NotFoundError as exc:
            raise BoardError(
                f"no board with id {board_id!r}; list_boards() shows the existing ones"
            ) from exc

    def find_boards_by_name(self, name: str) -> list[IvkBoard]:
        """Every board named exactly ``name`` (names are not unique), oldest first."""
        found = [b for b in self.list_boards() if b.board_name == name]
        return sorted(found, key=lambda b: b.created_at or "")

    # ------------------------------------------------------------------ handles

    def get_board_handle(self, board_id: str | None, *, refresh: bool = False) -> BoardHandle:
        """A handle for a board id; ``"none"`` (or ``None``) is uncategorized.

        The board is checked with one request the first time; later calls return the same
        handle without a request (``refresh=True`` re-reads the record). Raises
        :class:`BoardError` when there is no such board.

        Example::

            handle = client.board_repo.get_board_handle(mapping["board_id"])
            data = handle.download_image(name)
        """
        if board_id is None or board_id == UNCATEGORIZED_BOARD_ID:
            return self.get_uncategorized_handle()
        with self._lock:
            cached = self._handles.get(board_id)
        if cached is not None and not refresh:
            return cached
        return self._remember(BoardHandle(self._client, self.get_board(board_id)))

    def _remember(self, handle: BoardHandle) -> BoardHandle:
        with self._lock:
            cached = self._handles.get(handle.board_id)
            if cached is not None:
                cached._board = handle.board  # keep one handle per board, with fresh data
                return cached
            self._handles[handle.board_id] = handle
            return handle

    def _forget(self, board_id: str) -> None:
        with self._lock:
            self._handles.pop(board_id, None)

    def get_board_handle_by_name(self, name: str) -> BoardHandle:
        """A handle for the board with this exact name (the oldest if several share it).

        ``"Uncategorized"`` gives the uncategorized handle unless a real board has that name.
        Raises :class:`BoardError` when no board has that name.

        Example::

            handle = client.board_repo.get_board_handle_by_name("samples")
        """
        _check_name(name)
        found = self.find_boards_by_name(name)
        if found:
            return self._remember(BoardHandle(self._client, found[0]))
        if name == UNCATEGORIZED_BOARD_NAME:
            return self.get_uncategorized_handle()
        raise BoardError(
            f"no board named {name!r}; create it with board_repo.create_board({name!r}) "
            "or list existing names with board_repo.list_boards()"
        )

    def get_uncategorized_handle(self) -> BoardHandle:
        """The handle for uncategorized images (``board_id == "none"``); no request.

        Example::

            client.board_repo.get_uncategorized_handle().upload_image("in.png")
        """
        return BoardHandle(self._client, IvkBoard.uncategorized())

    def get_uncategorized_board(self) -> BoardHandle:
        """Alias of :meth:`get_uncategorized_handle` (the name the guides use)."""
        return self.get_uncategorized_handle()

    # ------------------------------------------------------------------ changes

    def create_board(self, board_name: str) -> BoardHandle:
        """Create a board and return its handle (names need not be unique).

        Example::

            board = client.board_repo.create_board("My Project")
            print(board.board_id)
        """
        name = _check_name(board_name)
        resp = self._client.http.request(
            "POST", f"{BOARDS}/", params={"board_name": name}, retry=False
        )
        return self._remember(BoardHandle(self._client, IvkBoard.from_api(resp.json())))

    def get_or_create_board(self, board_name: str) -> BoardHandle:
        """The oldest board with this name, created when there is none."""
        found = self.find_boards_by_name(_check_name(board_name))
        if found:
            return self._remember(BoardHandle(self._client, found[0]))
        return self.create_board(board_name)

    def update_board(
        self,
        board_id: str,
        board_name: str | None = None,
        *,
        archived: bool | None = None,
        cover_image_name: str | None = None,
    ) -> IvkBoard:
        """Rename / archive a board, or set its cover; returns the updated record.

        Example::

            client.board_repo.update_board(board.board_id, board_name="Final renders")
        """
        if board_id == UNCATEGORIZED_BOARD_ID:
            raise BoardError("the uncategorized board cannot be renamed or changed")
        changes: dict[str, Any] = {}
        if board_name is not None:
            changes["board_name"] = _check_name(board_name)
        if archived is not None:
            changes["archived"] = archived
        if cover_image_name is not None:
            changes["cover_image_name"] = cover_image_name
        if not changes:
            raise BoardError("update_board needs board_name, archived or cover_image_name")
        try:
            resp = self._client.http.request("PATCH", _board_path(board_id), json=changes)
        except NotFoundError as exc:
            raise BoardError(f"no board with id {board_id!r} to update") from exc
        board = IvkBoard.from_api(resp.json())
        self._remember(BoardHandle(self._client, board))
        return board

    def rename_board(self, board_id: str, new_name: str) -> IvkBoard:
        """Rename a board; returns the updated record."""
        return self.update_board(board_id, board_name=new_name)

    def delete_board(self, board_id: str, delete_images: bool = False) -> bool:
        """Delete a board. Its images become uncategorized unless ``delete_images``.

        Raises :class:`BoardError` when there is no such board (or for ``"none"``).

        Example::

            client.board_repo.delete_board(board.board_id)
        """
        if board_id == UNCATEGORIZED_BOARD_ID:
            raise BoardError("the uncategorized board cannot be deleted")
        try:
            self._client.http.request(
                "DELETE", _board_path(board_id), params={"include_images": delete_images}
            )
        except NotFoundError as exc:
            self._forget(board_id)
            raise BoardError(f"no board with id {board_id!r} to delete") from exc
        self._forget(board_id)
        return True
