"""Primitive fields: string, integer, float, boolean.

Example::

    IvkFloatField(value=7).value          # 7.0: a float input saved as 0 or 7 stays a float
    IvkStringField(value="b", options=["a", "b"])   # a GUI dropdown
    IvkIntegerField(value=7.0).value      # 7; 7.5 raises FieldValueError
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import field_validator, model_validator

from invokeai_py_client.ivk_fields.base import IvkNumericField, IvkValueField

__all__ = ["IvkBooleanField", "IvkFloatField", "IvkIntegerField", "IvkStringField"]


class IvkStringField(IvkValueField[str]):
    """A text input (prompt, name...). ``options`` restricts it (a GUI dropdown).

    Example::

        f = IvkStringField(value="a cat")
        f.value = "a dog"
    """

    kind: ClassVar[str] = "string"

    min_length: int | None = None
    max_length: int | None = None
    options: list[str] | None = None
    component: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        v = self.value
        if v is None:
            return self
        if self.min_length is not None and len(v) < self.min_length:
            raise ValueError(f"text is shorter than {self.min_length} characters")
        if self.max_length is not None and len(v) > self.max_length:
            raise ValueError(f"text is longer than {self.max_length} characters")
        if self.options and v not in self.options:
            raise ValueError(f"{v!r} is not one of the options {self.options}")
        return self


class IvkIntegerField(IvkNumericField[int]):
    """An integer input with optional bounds (from the schema or the form settings).

    Example::

        f = IvkIntegerField(value=30, exclusive_minimum=0)
        f.value = 0   # FieldValueError: 0 must be greater than 0
    """

    kind: ClassVar[str] = "integer"

    @field_validator("value", mode="before")
    @classmethod
    def _integral(cls, v: Any) -> Any:
        if isinstance(v, float) and not isinstance(v, bool) and v.is_integer():
            return int(v)
        return v


class IvkFloatField(IvkNumericField[float]):
    """A float input; integers are accepted and stored as floats.

    Example::

        f = IvkFloatField(value=7, minimum=0)
        f.value   # 7.0
    """

    kind: ClassVar[str] = "float"


class IvkBooleanField(IvkValueField[bool]):
    """A true/false input.

    Example::

        IvkBooleanField(value=True).to_api_value()   # True
    """

    kind: ClassVar[str] = "boolean"

    @field_validator("value", mode="before")
    @classmethod
    def _strict_bool(cls, v: Any) -> Any:
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise ValueError("expected True or False")
