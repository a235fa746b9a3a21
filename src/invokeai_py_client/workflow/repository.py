"""``WorkflowRepository``: turn definitions into handles bound to a client.

The node schema comes from ``client.node_schema()`` (the server's ``/openapi.json``, fetched
once and cached by the client) when the client has that method, else from the offline
InvokeAI 6.14.2 snapshot. This module makes no HTTP call itself.

Example::

    wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file("t2i.json"))
    wf = WorkflowRepository(client).create_workflow_from_file("t2i.json")
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invokeai_py_client.workflow.definition import WorkflowDefinition
from invokeai_py_client.workflow.detection import FieldTypeRegistry
from invokeai_py_client.workflow.handle import WorkflowHandle
from invokeai_py_client.workflow.schema import NodeSchemaIndex

if TYPE_CHECKING:
    from invokeai_py_client.client import InvokeAIClient

__all__ = ["WorkflowRepository"]


class WorkflowRepository:
    """Factory for :class:`WorkflowHandle` objects.

    ``client`` may be None (offline: dry runs, tests). ``schema`` overrides where node
    schemas come from; ``registry`` overrides the field detection rules.
    """

    def __init__(
        self,
        client: InvokeAIClient | None = None,
        *,
        schema: NodeSchemaIndex | None = None,
        registry: FieldTypeRegistry | None = None,
    ) -> None:
        self.client = client
        self._schema = schema
        self.registry = registry

    def node_schema(self, node_types: Iterable[str] | None = None) -> NodeSchemaIndex:
        """The schema handles are built against (the client's, else the offline snapshot).

        ``node_types`` (the types a workflow uses) lets the client skip fetching the server's
        schema when its packaged snapshot matches the server and knows every type.
        """
        if self._schema is not None:
            return self._schema
        getter: Any = getattr(self.client, "node_schema", None)
        if callable(getter):
            schema = getter(node_types=node_types)
            if isinstance(schema, NodeSchemaIndex):
                return schema
        return NodeSchemaIndex.offline()

    def create_workflow(self, definition: WorkflowDefinition) -> WorkflowHandle:
        """Bind a definition to the client and return a handle with typed inputs."""
        schema = self.node_schema(definition.node_types())
        return WorkflowHandle(definition, self.client, schema, registry=self.registry)

    def create_workflow_from_file(self, path: str | Path) -> WorkflowHandle:
        """``create_workflow(WorkflowDefinition.from_file(path))``."""
        return self.create_workflow(WorkflowDefinition.from_file(path))
