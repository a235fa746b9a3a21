"""Structured fields: color, bounding box, collection; and the raw fallback field.

Example::

    c = IvkColorField()
    c.set_value("#ff8000")       # r=255 g=128 b=0 a=255
    c.to_api_value()             # {"r": 255, "g": 128, "b": 0, "a": 255}

    IvkCollectionField(value=[1, 2, 3], item_kind="integer").to_api_value()   # [1, 2, 3]

    raw = IvkRawField(value={"anything": [1, 2]})   # an input no rule recognised
    raw.to_api_value()           # the exact original value
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from invokeai_py_client.exceptions import FieldValueError
from invokeai_py_client.ivk_fields.base import IvkField, IvkValueField

__all__ = ["IvkBoundingBoxField", "IvkCollectionField", "IvkColorField", "IvkRawField"]


class IvkColorField(IvkField[dict[str, int]]):
    """An RGBA color, each channel 0-255 (no ``.value``: set ``r g b a`` or use ``set_value``).

    ``set_value`` accepts ``{"r","g","b","a"}``, ``(r, g, b[, a])`` or ``"#rrggbb[aa]"``.
    """

    kind: ClassVar[str] = "color"

    r: int = Field(default=0, ge=0, le=255)
    g: int = Field(default=0, ge=0, le=255)
    b: int = Field(default=0, ge=0, le=255)
    a: int = Field(default=255, ge=0, le=255)

    def to_api_value(self) -> Any:
        return {"r": self.r, "g": self.g, "b": self.b, "a": self.a}

    @classmethod
    def from_api_value(cls, value: Any, **config: Any) -> Self:
        if value is None:
            return cls(**config)
        obj = cls(**config)
        obj.set_value(value)
        return obj

    def set_value(self, value: Any) -> None:
        if isinstance(value, dict):
            parts = dict(value)
        elif isinstance(value, tuple | list) and len(value) in (3, 4):
            parts = dict(zip("rgba", value, strict=False))
        elif isinstance(value, str) and value.startswith("#") and len(value) in (7, 9):
            try:
                nums = [int(value[i : i + 2], 16) for i in range(1, len(value), 2)]
            except ValueError:
                raise FieldValueError(f"IvkColorField: bad hex color {value!r}") from None
            parts = dict(zip("rgba", nums, strict=False))
        else:
            raise FieldValueError(
                f"IvkColorField: expected {{r,g,b,a}}, (r, g, b[, a]) or '#rrggbb', got {value!r}"
            )
        unknown = set(parts) - set("rgba")
        if unknown:
            raise FieldValueError(f"IvkColorField: unknown channels {sorted(unknown)}")
        merged = {**self.to_api_value(), **parts}
        checked = IvkColorField(**merged)
        for k in "rgba":
            self.__dict__[k] = getattr(checked, k)

    def is_set(self) -> bool:
        return True


class IvkBoundingBoxField(IvkField[dict[str, Any]]):
    """A box ``x_min, x_max, y_min, y_max`` (+ optional ``score`` 0..1)."""

    kind: ClassVar[str] = "bbox"

    x_min: int = 0
    x_max: int = 0
    y_min: int = 0
    y_max: int = 0
    score: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.x_max < self.x_min or self.y_max < self.y_min:
            raise ValueError("x_max/y_max must not be below x_min/y_min")
        return self

    def to_api_value(self) -> Any:
        out: dict[str, Any] = {
            "x_min": self.x_min,
            "x_max": self.x_max,
            "y_min": self.y_min,
            "y_max": self.y_max,
        }
        if self.score is not None:
            out["score"] = self.score
        return out

    @classmethod
    def from_api_value(cls, value: Any, **config: Any) -> Self:
        if value is None:
            return cls(**config)
        if not isinstance(value, dict):
            raise FieldValueError(f"{cls.__name__}: expected a dict, got {value!r}")
        return cls(**value, **config)

    def set_value(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise FieldValueError(f"IvkBoundingBoxField: expected a dict, got {value!r}")
        checked = IvkBoundingBoxField(**{**self.to_api_value(), **value})
        for k in ("x_min", "x_max", "y_min", "y_max", "score"):
            self.__dict__[k] = getattr(checked, k)

    def is_set(self) -> bool:
        return True


class IvkCollectionField(IvkValueField[list[Any]]):
    """A list of values (``item_kind`` names the item type when known).

    Items are checked for the simple kinds (integer, float, string, boolean, image).
    """

    kind: ClassVar[str] = "collection"

    item_kind: str | None = None
    min_length: int | None = None
    max_length: int | None = None

    @model_validator(mode="after")
    def _items(self) -> Self:
        v = self.value
        if v is None:
            return self
        if self.min_length is not None and len(v) < self.min_length:
            raise ValueError(f"needs at least {self.min_length} items")
        if self.max_length is not None and len(v) > self.max_length:
            raise ValueError(f"takes at most {self.max_length} items")
        check = _ITEM_CHECKS.get(self.item_kind or "")
        if check is not None:
            for i, item in enumerate(v):
                if not check(item):
                    raise ValueError(f"item {i} ({item!r}) is not a valid {self.item_kind}")
        return self

    def set_value(self, value: Any) -> None:
        if self.item_kind == "image" and isinstance(value, list | tuple):
            value = [{"image_name": x} if isinstance(x, str) else x for x in value]
        self.value = list(value) if isinstance(value, tuple) else value


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


_ITEM_CHECKS: dict[str, Any] = {
    "integer": _is_int,
    "float": _is_num,
    "string": lambda x: isinstance(x, str),
    "boolean": lambda x: isinstance(x, bool),
    "image": lambda x: isinstance(x, dict) and isinstance(x.get("image_name"), str),
}


class IvkRawField(IvkField[Any]):
    """An input no detection rule recognised: keeps the exact original value.

    ``to_api_value()`` returns a copy of what was saved, never ``None``-ified or stringified
    (``has_value`` tells an unset input from a saved ``null``).
    """

    kind: ClassVar[str] = "raw"

    value: Any = None
    has_value: bool = False

    @model_validator(mode="before")
    @classmethod
    def _mark(cls, data: Any) -> Any:
        if isinstance(data, dict) and "value" in data and "has_value" not in data:
            data = {**data, "has_value": True}
        return data

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name == "value":
            self.__dict__["has_value"] = True

    def to_api_value(self) -> Any:
        return copy.deepcopy(self.value) if self.has_value else None

    def is_set(self) -> bool:
        return self.has_value and self.value is not None

    @classmethod
    def from_api_value(cls, value: Any, **config: Any) -> Self:
        config.pop("has_value", None)
        return cls(value=value, has_value=True)

    def display_value(self) -> Any:
        return self.value
