"""invokeai_py_client: run InvokeAI GUI workflows as typed, high-throughput batch pipelines.

Example::

    from invokeai_py_client import InvokeAIClient, WorkflowDefinition

    client = InvokeAIClient.from_url("http://127.0.0.1:9090")
    wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file("blur.json"))
    for inp in wf.list_inputs():
        print(inp.input_index, inp.label)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .exceptions import (
    AmbiguousInputError,
    APIError,
    AuthenticationError,
    BoardError,
    EnqueueError,
    FieldValueError,
    InputNotFoundError,
    InputValidationError,
    InvokeAIConnectionError,
    InvokeAIError,
    InvokeAITimeoutError,
    JobCanceledError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    ModelError,
    ModelNotFoundError,
    ModelSyncError,
    NotFoundError,
    RequestValidationError,
    RunError,
    SweepError,
    UnknownNodeTypeError,
    WorkflowDefinitionError,
    WorkflowError,
)

if TYPE_CHECKING:
    from .board import BoardHandle, BoardRepository, IvkBoard
    from .client import InvokeAIClient
    from .dnn_model import (
        BaseDnnModelType,
        DnnModelFormat,
        DnnModelRepository,
        DnnModelType,
        IvkDnnModel,
        sync_dnn_model,
    )
    from .events import EventHub
    from .images import ImageRepository, IvkImage
    from .ivk_fields.model_conversion import to_ivk_model_field
    from .local_server import LocalServer
    from .queue import QueueClient
    from .quick import QuickClient
    from .run import BatchRun, resume
    from .sweep import Sweep
    from .workflow import (
        IvkWorkflowInput,
        WorkflowDefinition,
        WorkflowHandle,
        WorkflowRepository,
    )

    __version__: str

# Everything but the exceptions is imported on first use (``invokeai_py_client.X`` or
# ``from invokeai_py_client import X``): a program pays only for the parts it touches, and
# ``import invokeai_py_client`` loads neither socket.io / aiohttp nor Pillow nor pydantic.
_LAZY: dict[str, str] = {
    "BoardHandle": ".board",
    "BoardRepository": ".board",
    "IvkBoard": ".board",
    "InvokeAIClient": ".client",
    "BaseDnnModelType": ".dnn_model",
    "DnnModelFormat": ".dnn_model",
    "DnnModelRepository": ".dnn_model",
    "DnnModelType": ".dnn_model",
    "IvkDnnModel": ".dnn_model",
    "sync_dnn_model": ".dnn_model",
    "EventHub": ".events",
    "ImageRepository": ".images",
    "IvkImage": ".images",
    "to_ivk_model_field": ".ivk_fields.model_conversion",
    "LocalServer": ".local_server",
    "QueueClient": ".queue",
    "QuickClient": ".quick",
    "BatchRun": ".run",
    "resume": ".run",
    "Sweep": ".sweep",
    "IvkWorkflowInput": ".workflow",
    "WorkflowDefinition": ".workflow",
    "WorkflowHandle": ".workflow",
    "WorkflowRepository": ".workflow",
}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("invokeai-py-client")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0.0.0"


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562) and cache the name here."""
    if name == "__version__":
        value: Any = _package_version()
    else:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "APIError",
    "AmbiguousInputError",
    "AuthenticationError",
    "BaseDnnModelType",
    "BatchRun",
    "BoardError",
    "BoardHandle",
    "BoardRepository",
    "DnnModelFormat",
    "DnnModelRepository",
    "DnnModelType",
    "EnqueueError",
    "EventHub",
    "FieldValueError",
    "ImageRepository",
    "InputNotFoundError",
    "InputValidationError",
    "InvokeAIClient",
    "InvokeAIConnectionError",
    "InvokeAIError",
    "InvokeAITimeoutError",
    "IvkBoard",
    "IvkDnnModel",
    "IvkImage",
    "IvkWorkflowInput",
    "JobCanceledError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "LocalServer",
    "ModelError",
    "ModelNotFoundError",
    "ModelSyncError",
    "NotFoundError",
    "QueueClient",
    "QuickClient",
    "RequestValidationError",
    "RunError",
    "Sweep",
    "SweepError",
    "UnknownNodeTypeError",
    "WorkflowDefinition",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowHandle",
    "WorkflowRepository",
    "__version__",
    "resume",
    "sync_dnn_model",
    "to_ivk_model_field",
]
