"""The base of every typed workflow field: :class:`IvkField` and :class:`IvkValueField`.

A field is a small pydantic model holding one input's value plus the constraints that apply
to it (bounds, choices). It is validated on construction and on every assignment; a bad
value raises :class:`~invokeai_py_client.exceptions.FieldValueError` (a ``ValueError``) and
leaves the field unchanged.

Example::

    from invokeai_py_client.ivk_fields import IvkIntegerField

    steps = IvkIntegerField(value=30, minimum=1, maximum=150)
    steps.value = 40          # fine
    steps.value = 0           # raises FieldValueError, steps.value stays 40
    steps.to_api_value()      # 40, what is sent in the graph
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from invokeai_py_client.exceptions import FieldValueError

__all__ = ["IvkField", "IvkNumericField", "IvkValueField"]

T = TypeVar("T")

_MISSING = object()


def _describe(cls: type, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if not loc:  # a whole-model check: the message names the value
            parts.append(msg)
            continue
        shown = repr(err.get("input"))
        if len(shown) > 80:
            shown = shown[:77] + "..."
        parts.append(f"{loc}: {msg} (got {shown})")
    return f"{cls.__name__}: " + "; ".join(parts)


class IvkField(BaseModel, Generic[T]):
    """Base of every typed field.

    Subclasses implement :meth:`to_api_value` (the value sent in the graph, ``None`` when
    unset) and :meth:`from_api_value` (build a field from a saved workflow value).
    Every subclass is default-constructable: ``IvkStringField()`` is a valid, unset field.
    """

    model_config = ConfigDict(validate_assignment=True, extra="forbid", frozen=False)

    #: short type name shown by ``preview()`` and written to input index maps
    kind: ClassVar[str] = "field"

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise FieldValueError(_describe(type(self), exc)) from None

    def __setattr__(self, name: str, value: Any) -> None:
        old = self.__dict__.get(name, _MISSING)
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            if old is not _MISSING:
                self.__dict__[name] = old
            raise FieldValueError(_describe(type(self), exc)) from None

    # ------------------------------------------------------------------ API conversion

    def to_api_value(self) -> Any:
        """The JSON value sent to the server for this input, or None when unset."""
        raise NotImplementedError

    @classmethod
    def from_api_value(cls, value: Any, **config: Any) -> Self:
        """Build a field from a value saved in a workflow (``config`` = bounds, choices...)."""
        return cls(value=value, **config)

    def is_set(self) -> bool:
        """True when the field has a value to send."""
        return self.to_api_value() is not None

    def set_value(self, value: Any) -> None:
        """Assign a plain Python value (coerced and validated).

        ``field.set_value(x)`` is what ``handle.set(key, x)`` calls.
        """
        self.value = value

    def validate_field(self) -> None:
        """Re-check the current state; raise :class:`FieldValueError` when invalid."""
        try:
            type(self).model_validate(self.model_dump(warnings=False))
        except ValidationError as exc:
            raise FieldValueError(_describe(type(self), exc)) from None

    def copy_field(self) -> Self:
        """An independent deep copy of this field."""
        return self.model_copy(deep=True)

    def display_value(self) -> Any:
        """A short value for previews (the API value by default)."""
        return self.to_api_value()


class IvkValueField(IvkField[T], Generic[T]):
    """A field whose state is one ``value`` (None = unset)."""

    value: T | None = None

    def to_api_value(self) -> Any:
        return self.value

    def display_value(self) -> Any:
        return self.value


class IvkNumericField(IvkValueField[T], Generic[T]):
    """Shared bounds for integer and float fields (JSON-schema ``ge/le/gt/lt/multipleOf``)."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    multiple_of: float | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise ValueError("a boolean is not a number")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("the number must be finite")
        return v

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        v: Any = self.value
        if v is None:
            return self
        if self.minimum is not None and v < self.minimum:
            raise ValueError(f"{v} is below the minimum {self.minimum:g}")
        if self.maximum is not None and v > self.maximum:
            raise ValueError(f"{v} is above the maximum {self.maximum:g}")
        if self.exclusive_minimum is not None and v <= self.exclusive_minimum:
            raise ValueError(f"{v} must be greater than {self.exclusive_minimum:g}")
        if self.exclusive_maximum is not None and v >= self.exclusive_maximum:
            raise ValueError(f"{v} must be less than {self.exclusive_maximum:g}")
        if self.multiple_of:
            q = v / self.multiple_of
            if abs(q - round(q)) > 1e-9:
                raise ValueError(f"{v} is not a multiple of {self.multiple_of:g}")
        return self
