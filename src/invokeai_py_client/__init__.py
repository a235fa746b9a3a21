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

from .client import InvokeAIClient
from .exceptions import InvokeAIError

try:
    __version__ = version("invokeai-py-client")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "InvokeAIClient",
    "InvokeAIError",
    "__version__",
]
