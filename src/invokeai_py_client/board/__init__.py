"""Boards: :class:`BoardRepository` (lifecycle) and :class:`BoardHandle` (a board's images).

Example::

    from invokeai_py_client import InvokeAIClient

    client = InvokeAIClient.from_url("http://127.0.0.1:9090")
    boards = client.board_repo.list_boards(include_uncategorized=True)
    new_board = client.board_repo.create_board("My Project")
    image = new_board.upload_image("reference.png")
    uncategorized = client.board_repo.get_uncategorized_handle()
"""

from .handle import BoardHandle
from .models import UNCATEGORIZED_BOARD_ID, UNCATEGORIZED_BOARD_NAME, IvkBoard
from .repository import BoardRepository

__all__ = [
    "UNCATEGORIZED_BOARD_ID",
    "UNCATEGORIZED_BOARD_NAME",
    "BoardHandle",
    "BoardRepository",
    "IvkBoard",
]
