"""Workflows: load a GUI export, discover its typed Form inputs, build the GUI's graph.

Example::

    from invokeai_py_client.workflow import WorkflowDefinition, WorkflowRepository

    wf = WorkflowRepository().create_workflow(WorkflowDefinition.from_file("blur.json"))
    wf.set("Radius", 4)
    body = wf.build_payload()
"""

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
