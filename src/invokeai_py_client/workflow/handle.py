"""``WorkflowHandle``: the typed inputs of one workflow, and the payload they produce.

A handle owns its values (typed fields); the definition's raw JSON is never touched.
Submission, waiting and output mapping come from
:class:`~invokeai_py_client.workflow.execution.WorkflowExecutionMixin`.

Example::

    wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file("t2i.json"))
    for inp in wf.list_inputs():
        print(inp.input_index, inp.label, type(inp.field).__name__)
    wf.set("Positive Prompt", "a lighthouse at dusk")     # by label
    wf.set(5, 30)                                          # by index
    wf.set(("noise:1", "width"), 1024)                     # by (node_id, field)
    wf.validate_inputs()
    body = wf.build_payload()                              # dry run: the exact POST body
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invokeai_py_client.exceptions import (
    AmbiguousInputError,
    FieldValueError,
    InputNotFoundError,
    InputValidationError,
)
from invokeai_py_client.ivk_fields import IvkBoardField, IvkField
from invokeai_py_client.workflow.definition import WorkflowDefinition
from invokeai_py_client.workflow.detection import (
    DetectionContext,
    FieldTypeRegistry,
    default_registry,
)
from invokeai_py_client.workflow.execution import WorkflowExecutionMixin
from invokeai_py_client.workflow.graph import (
    DEFAULT_ORIGIN,
    _copy_json,
    build_enqueue_payload,
    check_node_types,
    compile_plan,
    is_executable,
)
from invokeai_py_client.workflow.schema import NodeSchemaIndex, start_case

if TYPE_CHECKING:
    from invokeai_py_client.client import InvokeAIClient

__all__ = ["InputKey", "IvkWorkflowInput", "OutputNode", "WorkflowHandle"]

InputKey = int | str | tuple[str, str]

_CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusive_minimum",
    "exclusive_maximum",
    "multiple_of",
    "choices",
    "options",
    "min_length",
    "max_length",
    "item_kind",
    "allowed_bases",
    "allowed_types",
)


@dataclass(eq=False)
class IvkWorkflowInput:
    """One input placed in the workflow's Form, in GUI order.

    ``label`` is what the GUI shows (the input's label, else the field's schema title);
    ``node_name`` is the node's label, else its type's title. ``field`` is the typed field
    holding the current value. ``jsonpath`` locates the saved value in the workflow JSON.
    """

    input_index: int
    label: str
    field_name: str
    node_name: str
    node_id: str
    field: IvkField[Any]
    required: bool
    jsonpath: str
    node_type: str = ""
    description: str = ""
    connected: bool = False
    element_id: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """``(node_id, field_name)``."""
        return (self.node_id, self.field_name)

    def describe(self) -> str:
        """``[3] 'Width' (noise:1.width)``: used in error messages."""
        return f"[{self.input_index}] {self.label!r} ({self.node_id}.{self.field_name})"


@dataclass(frozen=True)
class OutputNode:
    """A node that saves images to a board (its type has a ``board`` input).

    ``board`` is the value in effect: a board id, ``"none"``, ``"auto"`` or None (unset);
    ``input_index`` is the index of its exposed board input, or None when not in the Form.
    """

    node_id: str
    node_type: str
    label: str
    board: str | None
    input_index: int | None

    @property
    def board_id(self) -> str | None:
        """The board the images go to; None means uncategorized (``"none"``/``"auto"``)."""
        return None if self.board in (None, "none", "auto") else self.board


def _board_str(value: Any) -> str | None:
    if isinstance(value, Mapping):
        v = value.get("board_id")
        return v if isinstance(v, str) else None
    return value if isinstance(value, str) else None


class WorkflowHandle(WorkflowExecutionMixin):
    """A workflow bound to a client (or to none, for dry runs) with typed, settable inputs.

    ``schema`` defaults to ``client.node_schema()`` (the server's, cached by the client)
    when the client has it, else to the offline InvokeAI 6.14.2 snapshot.

    Example::

        wf = WorkflowHandle(WorkflowDefinition.from_file("blur.json"))   # offline schema
        wf.input("Radius").field.value = 4
        payload = wf.build_payload(runs=2)
    """

    def __init__(
        self,
        definition: WorkflowDefinition,
        client: InvokeAIClient | None = None,
        schema: NodeSchemaIndex | None = None,
        *,
        registry: FieldTypeRegistry | None = None,
    ) -> None:
        self.definition = definition
        self.client = client
        if schema is None:
            getter: Any = getattr(client, "node_schema", None)
            fetched = getter(node_types=definition.node_types()) if callable(getter) else None
            schema = fetched if isinstance(fetched, NodeSchemaIndex) else NodeSchemaIndex.offline()
        self.schema: NodeSchemaIndex = schema
        self.registry = registry or default_registry()
        self._inputs: list[IvkWorkflowInput] = self._discover()

    # ------------------------------------------------------------------ discovery

    def _discover(self) -> list[IvkWorkflowInput]:
        defn = self.definition
        connected_keys = {(e.target, e.target_handle) for e in defn.edges}
        out: list[IvkWorkflowInput] = []
        shared: dict[tuple[str, str], IvkField[Any]] = {}
        for i, ref in enumerate(defn.form_fields):
            node = defn.nodes[ref.node_id]
            node_schema = self.schema.get(node.type) if node.type else None
            in_schema = node_schema.inputs.get(ref.field_name) if node_schema else None
            saved = node.inputs[ref.field_name]
            key = (ref.node_id, ref.field_name)
            fld = shared.get(key)
            if fld is None:
                has_value = "value" in saved
                value = saved.get("value")
                ctx = DetectionContext(
                    node_id=node.id,
                    node_type=node.type,
                    field_name=ref.field_name,
                    value=_copy_json(value),
                    has_value=has_value,
                    settings=ref.settings,
                    schema=in_schema,
                )
                fld = self.registry.detect(ctx)
                shared[key] = fld
            label = saved.get("label") if isinstance(saved.get("label"), str) else ""
            if not label:
                label = in_schema.title if in_schema else start_case(ref.field_name)
            node_name = node.label or (node_schema.title if node_schema else "") or node.type
            description = saved.get("description")
            out.append(
                IvkWorkflowInput(
                    input_index=i,
                    label=label,
                    field_name=ref.field_name,
                    node_name=node_name,
                    node_id=node.id,
                    field=fld,
                    required=bool(in_schema.required) if in_schema else False,
                    jsonpath=ref.json_path,
                    node_type=node.type,
                    description=description if isinstance(description, str) else "",
                    connected=key in connected_keys,
                    element_id=ref.element_id,
                )
            )
        return out

    # ------------------------------------------------------------------ access

    def list_inputs(self) -> list[IvkWorkflowInput]:
        """The Form's inputs in GUI order (depth-first pre-order); index = position."""
        return list(self._inputs)

    def __len__(self) -> int:
        return len(self._inputs)

    def input(self, key: InputKey) -> IvkWorkflowInput:
        """Find one input by index, label, ``"node_id.field"`` or ``(node_id, field)``.

        Labels are matched exactly, then case-insensitively, then as ``node_id.field``,
        then as a bare field name. Raises :class:`InputNotFoundError`, or
        :class:`AmbiguousInputError` listing the candidates with their indices.

        Example::

            wf.input("Positive Prompt").field.value = "a cat"
            wf.input(("noise:1", "width")).input_index
        """
        if isinstance(key, bool):
            raise InputNotFoundError(f"an input key cannot be a boolean ({key!r})")
        if isinstance(key, int):
            if 0 <= key < len(self._inputs):
                return self._inputs[key]
            raise InputNotFoundError(
                f"no input with index {key}: this workflow has {len(self._inputs)} inputs "
                f"(0..{len(self._inputs) - 1})"
            )
        if isinstance(key, tuple):
            if len(key) == 2 and all(isinstance(k, str) for k in key):
                hits = [i for i in self._inputs if i.key == key]
                return self._one(hits, f"{key[0]}.{key[1]}")
            raise InputNotFoundError(f"an input key tuple must be (node_id, field_name): {key!r}")
        if not isinstance(key, str):
            raise InputNotFoundError(
                f"an input key must be an int, a str or (node_id, field_name), got {key!r}"
            )
        for match in (
            lambda i: i.label == key,
            lambda i: i.label.casefold() == key.casefold(),
            lambda i: f"{i.node_id}.{i.field_name}" == key,
            lambda i: i.field_name == key,
        ):
            hits = [i for i in self._inputs if match(i)]
            if hits:
                return self._one(hits, key)
        labels = ", ".join(repr(i.label) for i in self._inputs[:20])
        raise InputNotFoundError(f"no input labelled {key!r}; the inputs are: {labels}")

    def _one(self, hits: list[IvkWorkflowInput], key: str) -> IvkWorkflowInput:
        if not hits:
            raise InputNotFoundError(f"no input {key!r} in this workflow's Form")
        if len(hits) > 1:
            listing = "; ".join(h.describe() for h in hits)
            raise AmbiguousInputError(
                f"{key!r} matches {len(hits)} inputs: {listing}. Use an index or "
                "(node_id, field_name) instead",
                candidates=[(h.input_index, h.label, h.node_id, h.field_name) for h in hits],
            )
        return hits[0]

    def get_input(self, index: InputKey) -> IvkWorkflowInput:
        """The input descriptor at ``index`` (any key :meth:`input` accepts)."""
        return self.input(index)

    def get_input_value(self, index: InputKey) -> IvkField[Any]:
        """The typed field at ``index``; set ``.value`` (or attributes) on it directly.

        Example::

            wf.get_input_value(1).value = "A cinematic sunset"
        """
        return self.input(index).field

    def set_input_value(self, index: InputKey, value: IvkField[Any]) -> None:
        """Replace the field at ``index`` with another field of the *same concrete class*.

        Constraints the new field does not set (bounds, choices, allowed model bases) are
        taken from the current field and checked.
        """
        inp = self.input(index)
        current = inp.field
        if type(value) is not type(current):
            raise FieldValueError(
                f"input {inp.describe()} holds a {type(current).__name__}; "
                f"got a {type(value).__name__} (set_input_value keeps the field class)"
            )
        new = value.copy_field()
        fields = type(new).model_fields
        for name in _CONSTRAINTS:
            if name not in fields:
                continue
            kept = getattr(current, name)
            if getattr(new, name) in (None, []) and kept not in (None, []):
                new.__dict__[name] = kept
        try:
            new.validate_field()
        except FieldValueError as exc:
            raise FieldValueError(f"input {inp.describe()}: {exc}") from None
        for other in self._inputs:
            if other.key == inp.key:
                other.field = new

    def set(self, key: InputKey, value: Any) -> IvkField[Any]:
        """Assign a plain Python value (coerced and validated) and return the field.

        Example::

            wf.set("Steps", 30)
            wf.set("Scheduler", SchedulerName.EULER_A)
            wf.set(("save:1", "board"), "my-board-id")
        """
        inp = self.input(key)
        if isinstance(value, IvkField):
            self.set_input_value(inp.input_index, value)
            return self.input(inp.input_index).field
        try:
            inp.field.set_value(value)
        except FieldValueError as exc:
            raise FieldValueError(f"input {inp.describe()}: {exc}") from None
        return inp.field

    def set_many(self, values: Mapping[InputKey, Any]) -> None:
        """:meth:`set` several inputs."""
        for k, v in values.items():
            self.set(k, v)

    # ------------------------------------------------------------------ values

    def api_values(self) -> dict[tuple[str, str], Any]:
        """``(node_id, field) -> API value`` for every form input (None = leave out)."""
        return {inp.key: inp.field.to_api_value() for inp in self._inputs}

    def _saved_values(self) -> dict[tuple[str, str], Any]:
        return {
            inp.key: inp.field.saved_value()
            for inp in self._inputs
            if isinstance(inp.field, IvkBoardField)
        }

    def validate_inputs(self) -> None:
        """Check every input; raise :class:`InputValidationError` listing each bad one.

        Checks: node types known to the schema (raises
        :class:`~invokeai_py_client.exceptions.UnknownNodeTypeError`), each field's
        constraints, required Form inputs that have no value, and required inputs outside
        the Form that are neither set nor connected (the server would refuse the graph).
        """
        check_node_types(self.definition, self.schema)
        problems: list[tuple[int, str, str]] = []
        seen: set[tuple[str, str]] = set()
        for inp in self._inputs:
            seen.add(inp.key)
            try:
                inp.field.validate_field()
            except FieldValueError as exc:
                problems.append((inp.input_index, inp.label, str(exc)))
                continue
            if inp.required and not inp.connected and not inp.field.is_set():
                problems.append((inp.input_index, inp.label, "required, but has no value"))
        plan = compile_plan(self.definition, self.schema)
        for node in self.definition.nodes.values():
            if not is_executable(node):
                continue
            node_schema = self.schema.get(node.type)
            if node_schema is None:
                continue
            for name, s in node_schema.inputs.items():
                if not s.required or (node.id, name) in seen:
                    continue
                if (node.id, name) in plan.connected or node.value(name) is not None:
                    continue
                where = f"{node.label or node_schema.title}.{s.title}"
                problems.append(
                    (-1, where, f"required input {node.id}.{name} is neither set nor connected")
                )
        if problems:
            lines = "\n".join(
                f"  [{i}] {label}: {msg}" if i >= 0 else f"  (not in the Form) {label}: {msg}"
                for i, label, msg in problems
            )
            raise InputValidationError(
                f"{len(problems)} workflow input(s) are invalid:\n{lines}", problems=problems
            )

    # ------------------------------------------------------------------ payload

    def build_payload(
        self,
        *,
        batch_id: str | None = None,
        runs: int = 1,
        data: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        prepend: bool = False,
        origin: str | None = None,
        destination: str | None = None,
    ) -> dict[str, Any]:
        """The exact ``enqueue_batch`` POST body for the current values (a dry run).

        See :func:`~invokeai_py_client.workflow.graph.build_enqueue_payload` for the GUI
        rules and the board policy (``"none"``/``"auto"`` are left out).

        Example::

            body = wf.build_payload(runs=3, destination="my-run")
            json.dumps(body)   # what submit would POST
        """
        return build_enqueue_payload(
            self.definition,
            self.api_values(),
            schema=self.schema,
            batch_id=batch_id,
            runs=runs,
            data=data,
            origin=origin or DEFAULT_ORIGIN,
            destination=destination,
            prepend=prepend,
            saved_values=self._saved_values(),
        )

    def output_nodes(self) -> list[OutputNode]:
        """Every graph node whose type has a ``board`` input, in workflow order."""
        board_inputs = {inp.node_id: inp for inp in self._inputs if inp.field_name == "board"}
        out: list[OutputNode] = []
        for node in self.definition.nodes.values():
            if not is_executable(node):
                continue
            node_schema = self.schema.get(node.type)
            if node_schema is None or not node_schema.has_board:
                continue
            inp = board_inputs.get(node.id)
            if inp is not None:
                board = _board_str(inp.field.display_value())
            else:
                board = _board_str(node.value("board"))
            out.append(
                OutputNode(
                    node_id=node.id,
                    node_type=node.type,
                    label=node.label or node_schema.title,
                    board=board,
                    input_index=inp.input_index if inp is not None else None,
                )
            )
        return out

    # ------------------------------------------------------------------ tools

    def preview(self) -> list[dict[str, Any]]:
        """One dict per input: index, label, field name, node, type and current value.

        Example::

            for row in wf.preview():
                print(f"[{row['index']:02d}] {row['label']} = {row['value']!r}")
        """
        return [
            {
                "index": inp.input_index,
                "label": inp.label,
                "field_name": inp.field_name,
                "node_id": inp.node_id,
                "node_name": inp.node_name,
                "type": type(inp.field).__name__,
                "required": inp.required,
                "value": inp.field.display_value(),
            }
            for inp in self._inputs
        ]

    def export_input_index_map(self, path: str | Path) -> Path:
        """Write the index -> input map to ``path`` (JSON) for later drift checks."""
        from invokeai_py_client.workflow.drift import export_input_index_map

        return export_input_index_map(self, path)

    def verify_input_index_map(self, path: str | Path) -> dict[str, list[dict[str, Any]]]:
        """Compare a saved map with the current inputs: unchanged / moved / missing / new."""
        from invokeai_py_client.workflow.drift import verify_input_index_map

        return verify_input_index_map(self, path)

    def sync_dnn_model(
        self, by_name: bool = True, by_base: bool = True
    ) -> list[tuple[object, object]]:
        """Point model inputs at models installed on the server (see ``dnn_model.sync``)."""
        # imported lazily: the model module talks to the server, this one does not
        sync_module = importlib.import_module("invokeai_py_client.dnn_model.sync")
        result: list[tuple[object, object]] = sync_module.sync_dnn_model(
            self, by_name=by_name, by_base=by_base
        )
        return result

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.definition.name!r}, {len(self._inputs)} inputs)"
