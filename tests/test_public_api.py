"""The public surface changes only on purpose: this test pins it."""

from __future__ import annotations

import invokeai_py_client
from invokeai_py_client import exceptions

EXPECTED = {
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
}


def test_all_is_pinned() -> None:
    assert set(invokeai_py_client.__all__) == EXPECTED
    for name in invokeai_py_client.__all__:
        assert hasattr(invokeai_py_client, name), name


def test_seed_import_paths_work() -> None:
    from invokeai_py_client import InvokeAIClient, WorkflowDefinition  # noqa: F401
    from invokeai_py_client.dnn_model import BaseDnnModelType, DnnModelType  # noqa: F401
    from invokeai_py_client.ivk_fields import IvkStringField, SchedulerName  # noqa: F401
    from invokeai_py_client.ivk_fields.model_conversion import to_ivk_model_field  # noqa: F401
    from invokeai_py_client.workflow import WorkflowDefinition as WD  # noqa: F401
    from invokeai_py_client.workflow import WorkflowRepository  # noqa: F401


def test_every_error_is_in_one_tree() -> None:
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert issubclass(cls, exceptions.InvokeAIError), name
        assert name in (exceptions.__doc__ or ""), f"{name} is not drawn in the module docstring"


def test_public_classes_have_docstrings() -> None:
    for name in invokeai_py_client.__all__:
        obj = getattr(invokeai_py_client, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__doc__, f"{name} has no docstring"
