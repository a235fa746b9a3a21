"""Installed models: :class:`DnnModelRepository`, the model taxonomy and :func:`sync_dnn_model`.

Example::

    from invokeai_py_client import InvokeAIClient
    from invokeai_py_client.dnn_model import BaseDnnModelType

    client = InvokeAIClient.from_url("http://localhost:9090")
    models = client.dnn_model_repo.list_models()
    flux_models = [m for m in models if m.is_compatible_with_base(BaseDnnModelType.Flux)]
"""

from .models import (
    BaseDnnModelType,
    DnnModel,
    DnnModelFormat,
    DnnModelType,
    IvkDnnModel,
    SubModelType,
)
from .repository import DnnModelRepository, ModelInstallJob
from .sync import resolve_model, sync_dnn_model

__all__ = [
    "BaseDnnModelType",
    "DnnModel",
    "DnnModelFormat",
    "DnnModelRepository",
    "DnnModelType",
    "IvkDnnModel",
    "ModelInstallJob",
    "SubModelType",
    "resolve_model",
    "sync_dnn_model",
]
