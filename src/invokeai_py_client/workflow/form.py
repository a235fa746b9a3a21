"""The form walk: which inputs a workflow exposes, in the order the GUI shows them.

Rule: depth-first pre-order over the form tree from ``form.rootElementId`` (not a hard-coded
``"root"``); containers (row or column layout) are descended in child order; ``heading``,
``text`` and ``divider`` elements are skipped. A workflow whose form has no fields but has
``exposedFields`` is shown by the GUI as one column of those fields, in order: so here too.

Example::

    refs, source = walk_form(raw_json, definition.nodes)
    [(r.node_id, r.field_name) for r in refs]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from invokeai_py_client.exceptions import (
    FormCycleError,
    WorkflowDefinitionError,
    WorkflowReferenceError,
)

if TYPE_CHECKING:
    from invokeai_py_client.workflow.definition import FormFieldRef, NodeInfo

__all__ = ["field_json_path", "walk_form"]

SKIPPED_ELEMENTS = frozenset({"heading", "text", "divider"})


def field_json_path(node_id: str, field_name: str) -> str:
    """The JSONPath of an input's value in the workflow JSON (stable across re-exports)."""
    return f"$.nodes[?(@.id=='{node_id}')].data.inputs.{field_name}.value"


def walk_form(
    raw: Mapping[str, Any], nodes: Mapping[str, NodeInfo]
) -> tuple[list[FormFieldRef], str]:
    """Return the form's node fields in GUI order and where they came from.

    The second item is ``"form"``, ``"exposedFields"`` or ``"none"``.
    Raises :class:`WorkflowReferenceError` for a child or field pointing at nothing and
    :class:`FormCycleError` when the container tree loops.
    """
    form = raw.get("form")
    fields: list[FormFieldRef] = []
    if form is not None:
        if not isinstance(form, Mapping):
            raise WorkflowDefinitionError("'form' must be an object", json_path="$.form")
        fields = _walk(form, nodes)
    if fields:
        return fields, "form"
    exposed = raw.get("exposedFields") or []
    if not isinstance(exposed, list):
        raise WorkflowDefinitionError("'exposedFields' must be a list", json_path="$.exposedFields")
    for i, ef in enumerate(exposed):
        path = f"$.exposedFields[{i}]"
        if not isinstance(ef, Mapping):
            raise WorkflowDefinitionError("an exposed field must be an object", json_path=path)
        fields.append(_field_ref(ef.get("nodeId"), ef.get("fieldName"), None, None, nodes, path))
    return fields, ("exposedFields" if fields else "none")


def _walk(form: Mapping[str, Any], nodes: Mapping[str, NodeInfo]) -> list[FormFieldRef]:
    elements = form.get("elements")
    if elements is None or (isinstance(elements, Mapping) and not elements):
        return []
    if not isinstance(elements, Mapping):
        raise WorkflowDefinitionError("'form.elements' must be an object", json_path="$.form")
    root_id = form.get("rootElementId")
    if not isinstance(root_id, str) or root_id not in elements:
        raise WorkflowReferenceError(
            f"form.rootElementId {root_id!r} is not one of the form's elements",
            json_path="$.form.rootElementId",
        )
    out: list[FormFieldRef] = []
    seen: set[str] = set()
    # explicit stack of (element id, path of ancestors) -> no recursion limit
    stack: list[tuple[str, tuple[str, ...]]] = [(root_id, ())]
    while stack:
        el_id, ancestors = stack.pop()
        path = f"$.form.elements[{el_id!r}]"
        if el_id in ancestors:
            raise FormCycleError(
                f"the form element {el_id!r} contains itself ({' -> '.join([*ancestors, el_id])})",
                json_path=path,
            )
        if el_id in seen:
            raise FormCycleError(
                f"the form element {el_id!r} is reached twice (shared by two containers)",
                json_path=path,
            )
        seen.add(el_id)
        el = elements[el_id]
        if not isinstance(el, Mapping):
            raise WorkflowDefinitionError("a form element must be an object", json_path=path)
        el_type = el.get("type")
        if not isinstance(el_type, str):
            raise WorkflowDefinitionError(
                f"form element {el_id!r} has no 'type'", json_path=f"{path}.type"
            )
        data = el.get("data")
        if el_type == "container":
            children = data.get("children") if isinstance(data, Mapping) else None
            if not isinstance(children, list):
                raise WorkflowDefinitionError(
                    f"container {el_id!r} has no 'data.children' list",
                    json_path=f"{path}.data.children",
                )
            for k, child in enumerate(children):
                if not isinstance(child, str) or child not in elements:
                    raise WorkflowReferenceError(
                        f"container {el_id!r} lists a missing child element {child!r}",
                        json_path=f"{path}.data.children[{k}]",
                    )
            sub = (*ancestors, el_id)
            stack.extend((c, sub) for c in reversed(children))
        elif el_type == "node-field":
            if not isinstance(data, Mapping):
                raise WorkflowDefinitionError(
                    f"node-field {el_id!r} has no 'data'", json_path=f"{path}.data"
                )
            ident = data.get("fieldIdentifier")
            if not isinstance(ident, Mapping):
                raise WorkflowDefinitionError(
                    f"node-field {el_id!r} has no 'data.fieldIdentifier'",
                    json_path=f"{path}.data.fieldIdentifier",
                )
            settings = data.get("settings")
            out.append(
                _field_ref(
                    ident.get("nodeId"),
                    ident.get("fieldName"),
                    el_id,
                    settings if isinstance(settings, Mapping) else None,
                    nodes,
                    f"{path}.data.fieldIdentifier",
                )
            )
        elif el_type in SKIPPED_ELEMENTS:
            continue
        else:
            raise WorkflowDefinitionError(
                f"unknown form element type {el_type!r} in element {el_id!r}",
                json_path=f"{path}.type",
            )
    return out


def _field_ref(
    node_id: Any,
    field_name: Any,
    element_id: str | None,
    settings: Mapping[str, Any] | None,
    nodes: Mapping[str, NodeInfo],
    path: str,
) -> FormFieldRef:
    from invokeai_py_client.workflow.definition import FormFieldRef

    if not isinstance(node_id, str) or node_id not in nodes:
        raise WorkflowReferenceError(
            f"form field points at a missing node {node_id!r}", json_path=f"{path}.nodeId"
        )
    node = nodes[node_id]
    if not isinstance(field_name, str) or field_name not in node.inputs:
        raise WorkflowReferenceError(
            f"form field points at a missing input {field_name!r} of node {node_id!r} "
            f"({node.type or node.kind})",
            json_path=f"{path}.fieldName",
        )
    return FormFieldRef(
        node_id=node_id,
        field_name=field_name,
        element_id=element_id,
        settings=settings,
        json_path=field_json_path(node_id, field_name),
    )
