"""Board lifecycle: :class:`BoardRepository` (list, create, look up, rename, delete).

Example::

    repo = client.board_repo
    for b in repo.list_boards(include_uncategorized=True):
        print(b.board_id, b.board_name, b.image_count)
    handle = repo.create_board("My Project")
    repo.update_board(handle.board_id, board_name="My Project v2")
    repo.delete_board(handle.board_id)

Every method that talks to the server has an asyncio twin named with an ``a`` in front
(``await repo.acreate_board("My Project")``): same arguments, results and errors, one body
of steps shared by both (:mod:`.._steps`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._steps import StepRunner, Steps, get_json, request
from ..exceptions import BoardError, NotFoundError
from ..images import _list_images
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


class BoardRepository(StepRunner):
    """Boards on the server. Reach it as ``client.board_repo``.

    Each method that asks the server has an asyncio twin with an ``a`` in front
    (``alist_boards``, ``acreate_board``...): same arguments, results and errors.

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
        return self._run(self._list_boards(include_uncategorized, include_archived))

    async def alist_boards(
        self, include_uncategorized: bool = False, include_archived: bool = False
    ) -> list[IvkBoard]:
        """Asyncio twin of :meth:`list_boards`.

        Example::

            names = [b.board_name for b in await client.board_repo.alist_boards()]
        """
        return await self._arun(self._list_boards(include_uncategorized, include_archived))

    def _list_boards(
        self, include_uncategorized: bool, include_archived: bool
    ) -> Steps[list[IvkBoard]]:
        params = {"all": True, "include_archived": include_archived}
        data = yield from get_json(f"{BOARDS}/", params=params)
        items = data.get("items", []) if isinstance(data, dict) else data
        boards = [IvkBoard.from_api(d) for d in items]
        if include_uncategorized:
            boards.insert(0, (yield from self._uncategorized_record()))
        return boards

    def _uncategorized_record(self) -> Steps[IvkBoard]:
        general = yield from _list_images(
            UNCATEGORIZED_BOARD_ID, 0, 0, ["general"], False, True, "DESC", None
        )
        assets = yield from _list_images(
            UNCATEGORIZED_BOARD_ID, 0, 0, _ASSET_CATEGORIES, False, True, "DESC", None
        )
        board = IvkBoard.uncategorized(image_count=general.total)
        board.asset_count = assets.total
        return board

    def get_board(self, board_id: str) -> IvkBoard:
        """A board's record (``"none"`` gives the uncategorized pseudo-board).

        Raises :class:`BoardError` when there is no such board.
        """
        return self._run(self._get_board(board_id))

    async def aget_board(self, board_id: str) -> IvkBoard:
        """Asyncio twin of :meth:`get_board` (:class:`BoardError` when there is none).

        Example::

            record = await client.board_repo.aget_board(board_id)
            print(record.board_name, record.image_count)
        """
        return await self._arun(self._get_board(board_id))

    def _get_board(self, board_id: str) -> Steps[IvkBoard]:
        if board_id in (None, UNCATEGORIZED_BOARD_ID):
            return (yield from self._uncategorized_record())
        try:
            return IvkBoard.from_api((yield from get_json(_board_path(board_id))))
        except NotFoundError as exc:
            raise BoardError(
                f"no board with id {board_id!r}; list_boards() shows the existing ones"
            ) from exc

    def find_boards_by_name(self, name: str) -> list[IvkBoard]:
        """Every board named exactly ``name`` (names are not unique), oldest first."""
        return self._run(self._find_boards_by_name(name))

    async def afind_boards_by_name(self, name: str) -> list[IvkBoard]:
        """Asyncio twin of :meth:`find_boards_by_name`.

        Example::

            same_name = await client.board_repo.afind_boards_by_name("samples")
        """
        return await self._arun(self._find_boards_by_name(name))

    def _find_boards_by_name(self, name: str) -> Steps[list[IvkBoard]]:
        boards = yield from self._list_boards(False, False)
        found = [b for b in boards if b.board_name == name]
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
        return self._run(self._board_handle(board_id, refresh))

    async def aget_board_handle(
        self, board_id: str | None, *, refresh: bool = False
    ) -> BoardHandle:
        """Asyncio twin of :meth:`get_board_handle` (shares its handle cache).

        Example::

            handle = await client.board_repo.aget_board_handle(mapping["board_id"])
            data = await handle.adownload_image(name)
        """
        return await self._arun(self._board_handle(board_id, refresh))

    def _board_handle(self, board_id: str | None, refresh: bool) -> Steps[BoardHandle]:
        if board_id is None or board_id == UNCATEGORIZED_BOARD_ID:
            return self.get_uncategorized_handle()
        with self._lock:
            cached = self._handles.get(board_id)
        if cached is not None and not refresh:
            return cached
        board = yield from self._get_board(board_id)
        return self._remember(BoardHandle(self._client, board))

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
        return self._run(self._board_handle_by_name(name))

    async def aget_board_handle_by_name(self, name: str) -> BoardHandle:
        """Asyncio twin of :meth:`get_board_handle_by_name`.

        Example::

            handle = await client.board_repo.aget_board_handle_by_name("samples")
        """
        return await self._arun(self._board_handle_by_name(name))

    def _board_handle_by_name(self, name: str) -> Steps[BoardHandle]:
        _check_name(name)
        found = yield from self._find_boards_by_name(name)
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
        return self._run(self._create_board(board_name))

    async def acreate_board(self, board_name: str) -> BoardHandle:
        """Asyncio twin of :meth:`create_board`.

        Example::

            board = await client.board_repo.acreate_board("My Project")
        """
        return await self._arun(self._create_board(board_name))

    def _create_board(self, board_name: str) -> Steps[BoardHandle]:
        name = _check_name(board_name)
        resp = yield from request("POST", f"{BOARDS}/", params={"board_name": name}, retry=False)
        return self._remember(BoardHandle(self._client, IvkBoard.from_api(resp.json())))

    def get_or_create_board(self, board_name: str) -> BoardHandle:
        """The oldest board with this name, created when there is none."""
        return self._run(self._get_or_create_board(board_name))

    async def aget_or_create_board(self, board_name: str) -> BoardHandle:
        """Asyncio twin of :meth:`get_or_create_board`.

        Example::

            board = await client.board_repo.aget_or_create_board("renders")
        """
        return await self._arun(self._get_or_create_board(board_name))

    def _get_or_create_board(self, board_name: str) -> Steps[BoardHandle]:
        found = yield from self._find_boards_by_name(_check_name(board_name))
        if found:
            return self._remember(BoardHandle(self._client, found[0]))
        return (yield from self._create_board(board_name))

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
        return self._run(self._update_board(board_id, board_name, archived, cover_image_name))

    async def aupdate_board(
        self,
        board_id: str,
        board_name: str | None = None,
        *,
        archived: bool | None = None,
        cover_image_name: str | None = None,
    ) -> IvkBoard:
        """Asyncio twin of :meth:`update_board`.

        Example::

            await client.board_repo.aupdate_board(board.board_id, archived=True)
        """
        steps = self._update_board(board_id, board_name, archived, cover_image_name)
        return await self._arun(steps)

    def _update_board(
        self,
        board_id: str,
        board_name: str | None,
        archived: bool | None,
        cover_image_name: str | None,
    ) -> Steps[IvkBoard]:
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
            resp = yield from request("PATCH", _board_path(board_id), json=changes)
        except NotFoundError as exc:
            raise BoardError(f"no board with id {board_id!r} to update") from exc
        board = IvkBoard.from_api(resp.json())
        self._remember(BoardHandle(self._client, board))
        return board

    def rename_board(self, board_id: str, new_name: str) -> IvkBoard:
        """Rename a board; returns the updated record."""
        return self._run(self._update_board(board_id, new_name, None, None))

    async def arename_board(self, board_id: str, new_name: str) -> IvkBoard:
        """Asyncio twin of :meth:`rename_board`.

        Example::

            await client.board_repo.arename_board(board.board_id, "Final renders")
        """
        return await self._arun(self._update_board(board_id, new_name, None, None))

    def delete_board(self, board_id: str, delete_images: bool = False) -> bool:
        """Delete a board. Its images become uncategorized unless ``delete_images``.

        Raises :class:`BoardError` when there is no such board (or for ``"none"``).

        Example::

            client.board_repo.delete_board(board.board_id)
        """
        return self._run(self._delete_board(board_id, delete_images))

    async def adelete_board(self, board_id: str, delete_images: bool = False) -> bool:
        """Asyncio twin of :meth:`delete_board` (:class:`BoardError` when there is none).

        Example::

            await client.board_repo.adelete_board(board.board_id, delete_images=True)
        """
        return await self._arun(self._delete_board(board_id, delete_images))

    def _delete_board(self, board_id: str, delete_images: bool) -> Steps[bool]:
        if board_id == UNCATEGORIZED_BOARD_ID:
            raise BoardError("the uncategorized board cannot be deleted")
        try:
            yield from request(
                "DELETE", _board_path(board_id), params={"include_images": delete_images}
            )
        except NotFoundError as exc:
            self._forget(board_id)
            raise BoardError(f"no board with id {board_id!r} to delete") from exc
        self._forget(board_id)
        return True
