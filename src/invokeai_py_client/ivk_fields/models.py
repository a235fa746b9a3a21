"""Model fields: a model identifier, and the loader outputs (UNet, CLIP, transformer, LoRA).

A model identifier is ``{key, hash, name, base, type, submodel_type?}``. Keys differ between
installs; names and hashes do not (``sync_dnn_model`` uses that). An identifier with an
empty ``key`` is unset and left out of the graph.

Example::

    m = IvkModelIdentifierField()
    m.key, m.hash, m.name = "k1", "blake3:...", "juggernautXL"
    m.base, m.type = "sdxl", "main"
    m.to_api_value()   # {"key": "k1", "hash": "blake3:...", "name": ..., "base": ..., "type": ...}
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import model_validator

from invokeai_py_client.ivk_fields.base import IvkField, IvkValueField

__all__ = [
    "IvkCLIPEmbedField",
    "IvkCLIPField",
    "IvkFluxModelField",
    "IvkLoRAField",
    "IvkModelIdentifierField",
    "IvkSDXLModelField",
    "IvkT5EncoderField",
    "IvkTransformerField",
    "IvkUNetField",
    "IvkVAEModelField",
]


class IvkModelIdentifierField(IvkField[dict[str, Any]]):
    """A reference to an installed model. Set its attributes (no ``.value``).

    ``allowed_bases`` / ``allowed_types`` come from the node schema (``ui_model_base`` /
    ``ui_model_type``); a set identifier must match them, an unset one (empty ``key``)
    always passes and is left out of the graph.

    Example::

        f = IvkModelIdentifierField(key="k", hash="h", name="n", base="sdxl", type="main")
        f.set_value({"key": "k2", "hash": "h2", "name": "n2", "base": "sdxl", "type": "main"})
    """

    kind: ClassVar[str] = "model"

    key: str = ""
    hash: str = ""
    name: str = ""
    base: str = "any"
    type: str = "main"
    submodel_type: str | None = None
    allowed_bases: list[str] | None = None
    allowed_types: list[str] | None = None

    @model_validator(mode="after")
    def _check_taxonomy(self) -> Self:
        if not self.key:
            return self
        if (
            self.allowed_bases
            and self.base not in self.allowed_bases
            and "any" not in (self.allowed_bases)
        ):
            raise ValueError(f"model base {self.base!r} is not one of {self.allowed_bases}")
        if self.allowed_types and self.type not in self.allowed_types:
            raise ValueError(f"model type {self.type!r} is not one of {self.allowed_types}")
        return self

    def to_api_value(self) -> Any:
        if not self.key:
            return None
        out: dict[str, Any] = {
            "key": self.key,
            "hash": self.hash,
            "name": self.name,
            "base": self.base,
            "type": self.type,
        }
        if self.submodel_type is not None:
            out["submodel_type"] = self.submodel_type
        return out

    @classmethod
    def from_api_value(cls, value: Any, **config: Any) -> Self:
        if value is None:
            return cls(**config)
        if not isinstance(value, dict):
            raise_value_error(cls, value)
        known = {k: value[k] for k in ("key", "hash", "name", "base", "type") if k in value}
        if value.get("submodel_type") is not None:
            known["submodel_type"] = value["submodel_type"]
        return cls(**known, **config)

    def set_value(self, value: Any) -> None:
        """Assign from a dict or another identifier (or anything with key/hash/name...)."""
        if value is None:
            src: dict[str, Any] = {"key": "", "hash": "", "name": ""}
        elif isinstance(value, IvkModelIdentifierField):
            src = value.model_dump(include={"key", "hash", "name", "base", "type", "submodel_type"})
        elif isinstance(value, dict):
            src = dict(value)
        else:
            src = {
                a: getattr(value, a)
                for a in ("key", "hash", "name", "base", "type")
                if hasattr(value, a)
            }
            if not src:
                raise_value_error(type(self), value)
        candidate = self.model_dump()
        for k in ("key", "hash", "name", "base", "type", "submodel_type"):
            if k in src:
                v = src[k]
                candidate[k] = getattr(v, "value", v)  # enums -> their value
        checked = type(self)(**candidate)
        for k in ("key", "hash", "name", "base", "type", "submodel_type"):
            self.__dict__[k] = getattr(checked, k)

    def display_value(self) -> Any:
        return f"{self.name} ({self.base}/{self.type})" if self.key else None


def raise_value_error(cls: type, value: Any) -> Any:
    from invokeai_py_client.exceptions import FieldValueError

    raise FieldValueError(f"{cls.__name__}: expected a model identifier dict, got {value!r}")


# Aliases kept for readability in user code: they are the same class, so
# ``set_input_value`` accepts any of them for a model input.
IvkSDXLModelField = IvkModelIdentifierField
IvkFluxModelField = IvkModelIdentifierField
IvkT5EncoderField = IvkModelIdentifierField
IvkCLIPEmbedField = IvkModelIdentifierField
IvkVAEModelField = IvkModelIdentifierField


class _StructField(IvkValueField[dict[str, Any]]):
    """A loader output structure (a dict) with a few required keys; sent unchanged."""

    required_keys: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _keys(self) -> Self:
        if self.value is not None:
            missing = [k for k in self.required_keys if k not in self.value]
            if missing:
                raise ValueError(f"missing keys {missing}")
        return self


class IvkUNetField(_StructField):
    """A UNet bundle (``unet``, ``scheduler``, ``loras``...), usually fed by an edge."""

    kind: ClassVar[str] = "unet"
    required_keys: ClassVar[tuple[str, ...]] = ("unet", "scheduler")


class IvkCLIPField(_StructField):
    """A CLIP bundle (``tokenizer``, ``text_encoder``, ``skipped_layers``, ``loras``)."""

    kind: ClassVar[str] = "clip"
    required_keys: ClassVar[tuple[str, ...]] = ("tokenizer", "text_encoder")


class IvkTransformerField(_StructField):
    """A transformer bundle (``transformer``, ``loras``), usually fed by an edge."""

    kind: ClassVar[str] = "transformer"
    required_keys: ClassVar[tuple[str, ...]] = ("transformer",)


class IvkLoRAField(_StructField):
    """A LoRA with its weight: ``{"lora": <model identifier>, "weight": 0.75}``."""

    kind: ClassVar[str] = "lora"
    required_keys: ClassVar[tuple[str, ...]] = ("lora", "weight")
