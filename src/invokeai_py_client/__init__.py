"""invokeai_py_client: run InvokeAI GUI workflows as typed, high-throughput batch pipelines.

Example::

    from invokeai_py_client import InvokeAIClient, WorkflowDefinition

    client = InvokeAIClient.from_url("http://127.0.0.1:9090")
    wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file("blur.json"))
    for inp in wf.list_inputs():
        print(inp.input_index, inp.label)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
from .exceptions import (
    AmbiguousInputError,
    APIError,
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

try:
    __version__ = version("invokeai-py-client")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "APIError",
    "AmbiguousInputError",
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
