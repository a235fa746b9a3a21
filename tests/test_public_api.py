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
