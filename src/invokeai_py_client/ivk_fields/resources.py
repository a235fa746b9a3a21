"""Fields that name a server-side resource: image, board, latents, tensor, conditioning.

Board policy (what :class:`IvkBoardField` sends):

- a board id (``"3f2a..."`` or ``{"board_id": "3f2a..."}``) is sent as ``{"board_id": id}``;
- ``"none"`` (uncategorized) and ``"auto"`` are *left out* of the graph, so the server saves
  the images uncategorized. (The GUI replaces ``"auto"`` with its own auto-add board; a
  script has no such board, so this client does not guess one.)

Example::

    board = IvkBoardField(value={"board_id": "abc"})
    board.value                # "abc"
    board.to_api_value()       # {"board_id": "abc"}
    IvkBoardField(value="none").to_api_value()   # None: left out of the graph
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import field_validator

from invokeai_py_client.ivk_fields.base import IvkValueField

__all__ = [
    "BOARD_AUTO",
    "BOARD_NONE",
    "IvkBoardField",
    "IvkConditioningField",
    "IvkImageField",
    "IvkLatentsField",
    "IvkTensorField",
]

BOARD_NONE = "none"
BOARD_AUTO = "auto"


def _name_from(v: Any, key: str) -> Any:
    if isinstance(v, dict):
        if key not in v:
            raise ValueError(f"expected a dict with {key!r}")
        return v[key]
    return v


class _NamedResourceField(IvkValueField[str]):
    """A resource addressed by a name; sent as ``{<key>: name}``."""

    api_key: ClassVar[str] = "name"

    @field_validator("value", mode="before")
    @classmethod
    def _accept_dict(cls, v: Any) -> Any:
        v = _name_from(v, cls.api_key)
        if isinstance(v, str) and not v:
            raise ValueError("the name must not be empty")
        return v

    def to_api_value(self) -> Any:
        return None if self.value is None else {self.api_key: self.value}


class IvkImageField(_NamedResourceField):
    """An image on the server, by ``image_name`` (``"abc.png"`` or ``{"image_name": ...}``).

    Example::

        f = IvkImageField()
        f.value = "my_upload.png"
        f.to_api_value()   # {"image_name": "my_upload.png"}
    """

    kind: ClassVar[str] = "image"
    api_key: ClassVar[str] = "image_name"


class IvkLatentsField(_NamedResourceField):
    """Latents by ``latents_name`` (usually fed by an edge)."""

    kind: ClassVar[str] = "latents"
    api_key: ClassVar[str] = "latents_name"


class IvkTensorField(_NamedResourceField):
    """A tensor by ``tensor_name`` (usually fed by an edge)."""

    kind: ClassVar[str] = "tensor"
    api_key: ClassVar[str] = "tensor_name"


class IvkConditioningField(_NamedResourceField):
    """Conditioning by ``conditioning_name`` (usually fed by an edge)."""

    kind: ClassVar[str] = "conditioning"
    api_key: ClassVar[str] = "conditioning_name"


class IvkBoardField(IvkValueField[str]):
    """The board a node saves its images to.

    ``value`` is a board id, ``"none"`` (uncategorized) or ``"auto"``; a ``{"board_id": id}``
    dict is accepted and stored as its id. ``"none"`` and ``"auto"`` are left out of the
    graph (images land uncategorized); a board id is sent as ``{"board_id": id}``.

    Example::

        f = IvkBoardField(value="auto")
        f.value = "my-board-id"
        f.to_api_value()   # {"board_id": "my-board-id"}
    """

    kind: ClassVar[str] = "board"

    @field_validator("value", mode="before")
    @classmethod
    def _accept(cls, v: Any) -> Any:
        v = _name_from(v, "board_id")
        if isinstance(v, str) and not v:
            raise ValueError('a board id must not be empty (use "none" for uncategorized)')
        return v

    def to_api_value(self) -> Any:
        if self.value is None or self.value in (BOARD_NONE, BOARD_AUTO):
            return None
        return {"board_id": self.value}

    def saved_value(self) -> Any:
        """The value as the GUI saves it in a workflow (``"none"``/``"auto"``/dict)."""
        if self.value is None or self.value in (BOARD_NONE, BOARD_AUTO):
            return self.value
        return {"board_id": self.value}

    def display_value(self) -> Any:
        return self.value
