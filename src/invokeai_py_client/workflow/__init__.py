"""Workflows: load a GUI export, discover its typed Form inputs, build the GUI's graph.

Example::

    from invokeai_py_client.workflow import WorkflowDefinition, WorkflowRepository

    wf = WorkflowRepository().create_workflow(WorkflowDefinition.from_file("blur.json"))
    wf.set("Radius", 4)
    body = wf.build_payload()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invokeai_py_client.workflow.definition import WorkflowDefinition
    from invokeai_py_client.workflow.detection import (
        DetectionContext,
        FieldRule,
        FieldTypeRegistry,
        default_registry,
    )
    from invokeai_py_client.workflow.graph import build_enqueue_payload, build_graph
    from invokeai_py_client.workflow.handle import IvkWorkflowInput, OutputNode, WorkflowHandle
    from invokeai_py_client.workflow.repository import WorkflowRepository
    from invokeai_py_client.workflow.schema import InputSchema, NodeSchemaIndex, NodeTypeSchema

    build_payload = build_enqueue_payload

# name -> (module, attribute): imported on first use, so that reading a definition
# (``WorkflowDefinition``) does not load the typed fields (pydantic) or the execution code
_LAZY: dict[str, tuple[str, str]] = {
    "WorkflowDefinition": ("definition", "WorkflowDefinition"),
    "DetectionContext": ("detection", "DetectionContext"),
    "FieldRule": ("detection", "FieldRule"),
    "FieldTypeRegistry": ("detection", "FieldTypeRegistry"),
    "default_registry": ("detection", "default_registry"),
    "build_enqueue_payload": ("graph", "build_enqueue_payload"),
    "build_payload": ("graph", "build_enqueue_payload"),
    "build_graph": ("graph", "build_graph"),
    "IvkWorkflowInput": ("handle", "IvkWorkflowInput"),
    "OutputNode": ("handle", "OutputNode"),
    "WorkflowHandle": ("handle", "WorkflowHandle"),
    "WorkflowRepository": ("repository", "WorkflowRepository"),
    "InputSchema": ("schema", "InputSchema"),
    "NodeSchemaIndex": ("schema", "NodeSchemaIndex"),
    "NodeTypeSchema": ("schema", "NodeTypeSchema"),
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562) and cache the name here."""
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{target[0]}")
    value = getattr(module, target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "DetectionContext",
    "FieldRule",
    "FieldTypeRegistry",
    "InputSchema",
    "IvkWorkflowInput",
    "NodeSchemaIndex",
    "NodeTypeSchema",
    "OutputNode",
    "WorkflowDefinition",
    "WorkflowHandle",
    "WorkflowRepository",
    "build_enqueue_payload",
    "build_graph",
    "build_payload",
    "default_registry",
]
