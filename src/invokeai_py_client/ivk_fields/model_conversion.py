"""Turn an installed model's record into a model input value: :func:`to_ivk_model_field`.

Example::

    from invokeai_py_client.ivk_fields.model_conversion import to_ivk_model_field

    sdxl = client.dnn_model_repo.list_models(base="sdxl", type="main")[0]
    wf.set_input_value(0, to_ivk_model_field(sdxl))
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from invokeai_py_client.exceptions import FieldValueError
from invokeai_py_client.ivk_fields import IvkModelIdentifierField

__all__ = ["to_ivk_model_field"]

_KEYS = ("key", "hash", "name", "base", "type", "submodel_type")


def to_ivk_model_field(model: Any) -> IvkModelIdentifierField:
    """An :class:`IvkModelIdentifierField` pointing at ``model``.

    ``model`` is an ``IvkDnnModel`` (from ``client.dnn_model_repo``), a dict with
    ``key, hash, name, base, type`` (as the v2 API returns), or another identifier field.

    Example::

        field = to_ivk_model_field(model)
        field.to_api_value()   # {"key": ..., "hash": ..., "name": ..., "base": ..., "type": ...}
    """
    if isinstance(model, IvkModelIdentifierField):
        return model.copy_field()
    if isinstance(model, Mapping):
        src = {k: model[k] for k in _KEYS if k in model}
    else:
        src = {k: getattr(model, k) for k in _KEYS if hasattr(model, k)}
    if not src.get("key"):
        raise FieldValueError(
            f"to_ivk_model_field needs a model with a key (an installed model), got {model!r:.200}"
        )
    clean: dict[str, Any] = {}
    for k, v in src.items():
        if v is None:
            continue
        clean[k] = str(v.value) if isinstance(v, Enum) else str(v)
    return IvkModelIdentifierField(**clean)
