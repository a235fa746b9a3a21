"""The public surface changes only on purpose: this test pins it."""

from __future__ import annotations

import invokeai_py_client
from invokeai_py_client import exceptions

EXPECTED = {
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


def test_seed_type_names_import() -> None:
    """Every type the seed docs name (fields, enums, records) imports where they say."""
    import invokeai_py_client.ivk_fields as fields
    from invokeai_py_client.models import (  # noqa: F401
        BaseModelEnum,
        ImageCategory,
        IvkDnnModel,
        IvkImage,
        IvkJob,
        JobStatus,
    )

    for name in [
        "IvkField",
        "IvkStringField",
        "IvkIntegerField",
        "IvkFloatField",
        "IvkBooleanField",
        "IvkImageField",
        "IvkBoardField",
        "IvkLatentsField",
        "IvkTensorField",
        "IvkModelIdentifierField",
        "IvkUNetField",
        "IvkCLIPField",
        "IvkTransformerField",
        "IvkLoRAField",
        "IvkColorField",
        "IvkBoundingBoxField",
        "IvkCollectionField",
        "IvkEnumField",
        "IvkSchedulerField",
        "SchedulerName",
    ]:
        assert hasattr(fields, name), name
    assert fields.SchedulerName.DPMPP_3M_K.value == "dpmpp_3m_k"


def _params(func: object) -> dict[str, object]:
    import inspect

    sig = inspect.signature(func)  # type: ignore[arg-type]
    return {n: p.default for n, p in sig.parameters.items() if n != "self"}


def test_seed_signatures() -> None:
    """The methods the seeds call, with the argument names and defaults they document."""
    from invokeai_py_client import (
        BoardHandle,
        BoardRepository,
        DnnModelRepository,
        InvokeAIClient,
        QuickClient,
        WorkflowDefinition,
        WorkflowHandle,
        WorkflowRepository,
    )

    h = WorkflowHandle
    assert _params(h.wait_for_completion_sync) == {
        "poll_interval": 2.0,
        "timeout": 300.0,
        "progress_callback": None,
    }
    assert _params(h.sync_dnn_model) == {"by_name": True, "by_base": True}
    assert next(iter(_params(h.submit_sync))) == "board_id"
    assert list(_params(h.submit))[:5] == [
        "subscribe_events",
        "on_invocation_started",
        "on_invocation_progress",
        "on_invocation_complete",
        "on_invocation_error",
    ]
    assert "timeout" in _params(h.wait_for_completion)
    for name in [
        "list_inputs",
        "get_input",
        "get_input_value",
        "set_input_value",
        "list_outputs",
        "map_outputs_to_images",
        "validate_inputs",
        "preview",
        "submit_sync_monitor_async",
        "export_input_index_map",
        "verify_input_index_map",
        "_convert_to_api_format",
    ]:
        assert callable(getattr(h, name)), name
    assert list(_params(WorkflowDefinition.from_file)) == ["path", "filepath"]
    assert list(_params(WorkflowRepository.create_workflow)) == ["definition"]
    assert callable(WorkflowRepository.create_workflow_from_file)
    assert isinstance(WorkflowDefinition.workflow, property)
    assert list(_params(InvokeAIClient))[:4] == ["host", "port", "use_https", "timeout"]
    for name in (
        "from_url",
        "health_check",
        "socketio_session",
        "board_repo",
        "workflow_repo",
        "dnn_model_repo",
    ):
        assert hasattr(InvokeAIClient, name), name
    assert _params(BoardRepository.list_boards)["include_uncategorized"] is not None
    for name in ("create_board", "get_board_handle", "get_uncategorized_handle"):
        assert callable(getattr(BoardRepository, name)), name
    assert callable(BoardRepository.get_uncategorized_board)
    assert _params(BoardHandle.download_image) == {"image_name": _EMPTY, "full_resolution": True}
    assert list(_params(BoardHandle.upload_image_data))[:2] == ["image_data", "filename"]
    assert list(_params(BoardHandle.move_image_to)) == ["image_name", "target_board_id"]
    assert callable(BoardHandle.upload_image)
    for name in ("list_models", "get_model_by_key"):
        assert callable(getattr(DnnModelRepository, name)), name
    for name in ("copy_image_to_board", "generate_image_sdxl_t2i"):
        assert callable(getattr(QuickClient, name)), name


_EMPTY = __import__("inspect").Parameter.empty


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


def _fresh_interpreter(code: str) -> str:
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_import_stays_light() -> None:
    """``import invokeai_py_client`` loads neither socket.io / aiohttp nor Pillow (lazy names)."""
    heavy = ("socketio", "engineio", "aiohttp", "PIL", "pydantic", "httpx", "typer", "rich")
    probe = f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = _fresh_interpreter("import sys, invokeai_py_client\n" + probe)
    assert loaded == "", f"imported at `import invokeai_py_client`: {loaded}"


def test_client_and_workflow_do_not_load_events_or_images() -> None:
    """A client and a workflow handle do not need socket.io / aiohttp or Pillow until used."""
    loaded = _fresh_interpreter(
        "import sys\n"
        "from invokeai_py_client import InvokeAIClient, WorkflowDefinition\n"
        "from invokeai_py_client.run import BatchRun\n"
        "from invokeai_py_client.sweep import Sweep\n"
        "InvokeAIClient.from_url('http://127.0.0.1:9').close()\n"
        "print(','.join(m for m in ('socketio', 'aiohttp', 'PIL') if m in sys.modules))"
    )
    assert loaded == ""


def test_lazy_names_resolve_to_their_modules() -> None:
    from invokeai_py_client.client import InvokeAIClient
    from invokeai_py_client.events import EventHub

    assert invokeai_py_client.InvokeAIClient is InvokeAIClient
    assert invokeai_py_client.EventHub is EventHub
    assert set(invokeai_py_client.__all__) <= set(dir(invokeai_py_client))
    assert invokeai_py_client.__version__
    try:
        invokeai_py_client.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchName" in str(exc)
    else:
        raise AssertionError("unknown names must raise AttributeError")
