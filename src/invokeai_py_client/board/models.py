"""The board record: :class:`IvkBoard`.

Example::

    board = client.board_repo.create_board("renders").board
    print(board.board_id, board.board_name, board.image_count)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ..exceptions import BoardError
from ..images import UNCATEGORIZED_BOARD_ID

__all__ = ["UNCATEGORIZED_BOARD_ID", "UNCATEGORIZED_BOARD_NAME", "IvkBoard"]

#: the name the GUI shows for it
UNCATEGORIZED_BOARD_NAME = "Uncategorized"


class IvkBoard(BaseModel):
    """A board as the server describes it (extra server fields are kept).

    The uncategorized pseudo-board has ``board_id == "none"``.

    Example::

        for b in client.board_repo.list_boards(include_uncategorized=True):
            print(b.board_id, b.board_name, b.image_count, b.is_uncategorized())
    """

    model_config = ConfigDict(extra="allow")

    board_id: str
    board_name: str
    image_count: int = 0
    asset_count: int = 0
    cover_image_name: str | None = None
    archived: bool = False
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None

    def is_uncategorized(self) -> bool:
        """True for the ``"none"`` pseudo-board."""
        return self.board_id == UNCATEGORIZED_BOARD_ID

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style read of a field (``board.get("board_id", "none")``), ``default`` if unset.

        The seed docs read board records both as objects and as dicts; this keeps the dict
        spelling working (extra server fields are included).
        """
        if key in type(self).model_fields:
            value = getattr(self, key)
        else:
            value = (self.model_extra or {}).get(key)
        return default if value is None else value

    @classmethod
    def from_api(cls, data: Any) -> IvkBoard:
        """Build from a server board DTO (timestamps kept as strings)."""
        if not isinstance(data, dict) or "board_id" not in data:
            raise BoardError(f"unexpected board record from the server: {data!r:.200}")
        clean = {k: (str(v) if k.endswith("_at") and v is not None else v) for k, v in data.items()}
        return cls.model_validate(clean)

    @classmethod
    def uncategorized(cls, image_count: int = 0) -> IvkBoard:
        """The uncategorized pseudo-board."""
        return cls(
            board_id=UNCATEGORIZED_BOARD_ID,
            board_name=UNCATEGORIZED_BOARD_NAME,
            image_count=image_count,
        )
