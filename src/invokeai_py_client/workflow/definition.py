"""``WorkflowDefinition``: a GUI-exported workflow, validated once and never mutated.

Accepted: workflow schema ``3.x`` (InvokeAI 4.0 to 6.12) and ``4.x`` (6.13+). Schemas 1.x and
2.x predate the Form panel and are refused with
:class:`~invokeai_py_client.exceptions.UnsupportedWorkflowVersionError` (re-open the workflow
in a current InvokeAI and export it again).

Example::

    from invokeai_py_client.workflow import WorkflowDefinition

    wf = WorkflowDefinition.from_file("sdxl-text-to-image.json")
    wf.name, wf.schema_version, len(wf.nodes)
    wf.to_dict()          # a deep copy of the original JSON
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invokeai_py_client.exceptions import (
    UnsupportedWorkflowVersionError,
    WorkflowDefinitionError,
    WorkflowReferenceError,
)

__all__ = ["EdgeInfo", "FormFieldRef", "NodeInfo", "WorkflowDefinition"]

SUPPORTED_MAJOR_VERSIONS = (3, 4)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A parsed workflow node (read-only view over the raw JSON)."""

    index: int
    id: str
    kind: str  # "invocation" | "notes" | "connector" | other
    type: str  # invocation type ("" for non-invocations)
    label: str
    version: str
    inputs: Mapping[str, Mapping[str, Any]]
    is_intermediate: bool
    use_cache: bool

    def has_value(self, field_name: str) -> bool:
        """True when the saved input carries a ``value``."""
        inp = self.inputs.get(field_name)
        return inp is not None and "value" in inp

    def value(self, field_name: str) -> Any:
        """The saved value of an input (None when unset). Do not mutate it."""
        inp = self.inputs.get(field_name)
        return None if inp is None else inp.get("value")


@dataclass(frozen=True, slots=True)
class EdgeInfo:
    """A default (data) edge; collapsed edges are visual only and not kept."""

    index: int
    source: str
    source_handle: str
    target: str
    target_handle: str


@dataclass(frozen=True, slots=True)
class FormFieldRef:
    """One ``node-field`` element reached by the form walk."""

    node_id: str
    field_name: str
    element_id: str | None
    settings: Mapping[str, Any] | None = None
    json_path: str = ""


@dataclass(slots=True)
class _Parsed:
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    edges: list[EdgeInfo] = field(default_factory=list)
    form_fields: list[FormFieldRef] = field(default_factory=list)
    form_source: str = "form"


class WorkflowDefinition:
    """An exported workflow: the raw JSON (kept as loaded, never mutated) plus parsed views.

    Build with :meth:`from_file`, :meth:`from_dict` or :meth:`from_json`. Loading validates
    the structure and raises a :class:`WorkflowDefinitionError` subclass whose ``json_path``
    says where the problem is.

    Example::

        d = WorkflowDefinition.from_dict(json.load(open("wf.json")))
        [f.field_name for f in d.form_fields]   # the form's node fields, GUI order
    """

    __slots__ = ("__weakref__", "_cache", "_parsed", "_raw", "source_path")

    def __init__(self, raw: Mapping[str, Any], *, source_path: Path | None = None) -> None:
        if not isinstance(raw, Mapping):
            raise WorkflowDefinitionError(
                f"a workflow must be a JSON object, got {type(raw).__name__}", json_path="$"
            )
        self._raw: dict[str, Any] = copy.deepcopy(dict(raw))
        self.source_path = source_path
        self._cache: dict[str, Any] = {}
        self._parsed = _parse(self._raw)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowDefinition:
        """Validate and wrap a workflow dict (it is copied; later edits to it do not leak)."""
        return cls(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkflowDefinition:
        """Parse workflow JSON text."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WorkflowDefinitionError(f"not valid JSON: {exc}", json_path="$") from None
        return cls(data)

    @classmethod
    def from_file(
        cls, path: str | Path | None = None, *, filepath: str | Path | None = None
    ) -> WorkflowDefinition:
        """Load a workflow exported from the GUI.

        ``filepath=`` is the seed docs' name for ``path`` (give one of them).

        Example::

            try:
                d = WorkflowDefinition.from_file("complex-workflow.json")
            except ValueError as e:   # WorkflowDefinitionError is a ValueError
                print(f"Invalid workflow: {e}")
        """
        source = path if path is not None else filepath
        if source is None or (path is not None and filepath is not None):
            raise WorkflowDefinitionError(
                "give the workflow file as from_file(path) or from_file(filepath=...), once"
            )
        p = Path(source)
        try:
            text = p.read_bytes()
        except OSError as exc:
            raise WorkflowDefinitionError(f"cannot read workflow file {p}: {exc}") from None
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WorkflowDefinitionError(f"{p} is not valid JSON: {exc}", json_path="$") from None
        return cls(data, source_path=p)

    # ------------------------------------------------------------------ views

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the original workflow JSON."""
        return copy.deepcopy(self._raw)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The original workflow JSON as text."""
        return json.dumps(self._raw, indent=indent)

    @property
    def raw(self) -> Mapping[str, Any]:
        """The original JSON, shared and read-only by contract (use :meth:`to_dict` to edit)."""
        return self._raw

    @property
    def workflow(self) -> Mapping[str, Any]:
        """The original JSON (same object as :attr:`raw`), read-only by contract.

        Kept for scripts written against the seed docs, e.g. ``wf.definition.workflow.get(
        "nodes", [])`` for the raw node list (each ``{"id", "type", "data": {...}}``).
        """
        return self._raw

    @property
    def name(self) -> str:
        """The workflow's name (``""`` when it has none)."""
        return str(self._raw.get("name") or "")

    @property
    def description(self) -> str:
        """The workflow's description."""
        return str(self._raw.get("description") or "")

    @property
    def schema_version(self) -> str:
        """``meta.version`` (``"3.0.0"`` or ``"4.0.0"``)."""
        return str(self._raw["meta"]["version"])

    @property
    def nodes(self) -> Mapping[str, NodeInfo]:
        """Parsed nodes by id, in file order."""
        return self._parsed.nodes

    @property
    def edges(self) -> list[EdgeInfo]:
        """Default edges (collapsed edges dropped), in file order."""
        return list(self._parsed.edges)

    @property
    def form_fields(self) -> list[FormFieldRef]:
        """The form's node fields in GUI order (depth-first pre-order).

        For a workflow whose form is empty, the GUI shows its ``exposedFields`` as one
        column: so does this.
        """
        return list(self._parsed.form_fields)

    @property
    def form_source(self) -> str:
        """``"form"``, ``"exposedFields"`` or ``"none"``: where :attr:`form_fields` came from."""
        return self._parsed.form_source

    def node_types(self) -> set[str]:
        """Every invocation type used."""
        return {n.type for n in self._parsed.nodes.values() if n.kind == "invocation"}

    def __repr__(self) -> str:
        return (
            f"WorkflowDefinition(name={self.name!r}, version={self.schema_version!r}, "
            f"nodes={len(self._parsed.nodes)}, inputs={len(self._parsed.form_fields)})"
        )


# ---------------------------------------------------------------------- parsing


def _check_version(raw: Mapping[str, Any]) -> None:
    meta = raw.get("meta")
    version = meta.get("version") if isinstance(meta, Mapping) else None
    if not isinstance(version, str) or not version:
        raise UnsupportedWorkflowVersionError(
            "the workflow has no meta.version: it predates InvokeAI 4 or is not a GUI "
            "export; open it in a current InvokeAI and export it again",
            json_path="$.meta.version",
        )
    try:
        major = int(version.split(".", 1)[0])
    except ValueError:
        raise UnsupportedWorkflowVersionError(
            f"unreadable workflow schema version {version!r}", json_path="$.meta.version"
        ) from None
    if major < SUPPORTED_MAJOR_VERSIONS[0]:
        raise UnsupportedWorkflowVersionError(
            f"workflow schema {version} predates the Form panel (this client reads 3.x and "
            "4.x): open the workflow in a current InvokeAI and export it again",
            json_path="$.meta.version",
        )
    if major > SUPPORTED_MAJOR_VERSIONS[-1]:
        raise UnsupportedWorkflowVersionError(
            f"workflow schema {version} is newer than this client understands (3.x, 4.x): "
            "upgrade invokeai-py-client",
            json_path="$.meta.version",
        )


def _parse(raw: Mapping[str, Any]) -> _Parsed:
    _check_version(raw)
    out = _Parsed()
    nodes = raw.get("nodes")
    if not isinstance(nodes, list):
        raise WorkflowDefinitionError("the workflow has no 'nodes' list", json_path="$.nodes")
    for i, node in enumerate(nodes):
        info = _parse_node(i, node)
        if info.id in out.nodes:
            raise WorkflowDefinitionError(
                f"duplicate node id {info.id!r}", json_path=f"$.nodes[{i}].id"
            )
        out.nodes[info.id] = info
    edges = raw.get("edges", [])
    if not isinstance(edges, list):
        raise WorkflowDefinitionError("'edges' must be a list", json_path="$.edges")
    for i, edge in enumerate(edges):
        parsed = _parse_edge(i, edge, out.nodes)
        if parsed is not None:
            out.edges.append(parsed)
    from invokeai_py_client.workflow.form import walk_form

    out.form_fields, out.form_source = walk_form(raw, out.nodes)
    return out


def _parse_node(i: int, node: Any) -> NodeInfo:
    path = f"$.nodes[{i}]"
    if not isinstance(node, Mapping):
        raise WorkflowDefinitionError("a node must be an object", json_path=path)
    node_id = node.get("id")
    if not isinstance(node_id, str) or not node_id:
        raise WorkflowDefinitionError("a node has no 'id'", json_path=f"{path}.id")
    kind = node.get("type")
    if not isinstance(kind, str) or not kind:
        raise WorkflowDefinitionError(f"node {node_id!r} has no 'type'", json_path=f"{path}.type")
    data = node.get("data")
    if kind != "invocation":
        return NodeInfo(i, node_id, kind, "", "", "", {}, True, True)
    if not isinstance(data, Mapping):
        raise WorkflowDefinitionError(
            f"invocation node {node_id!r} has no 'data'", json_path=f"{path}.data"
        )
    inv_type = data.get("type")
    if not isinstance(inv_type, str) or not inv_type:
        raise WorkflowDefinitionError(
            f"invocation node {node_id!r} has no 'data.type'", json_path=f"{path}.data.type"
        )
    inputs = data.get("inputs", {})
    if not isinstance(inputs, Mapping) or not all(isinstance(v, Mapping) for v in inputs.values()):
        raise WorkflowDefinitionError(
            f"node {node_id!r}: 'data.inputs' must map input names to objects",
            json_path=f"{path}.data.inputs",
        )
    label = data.get("label")
    version = data.get("version")
    return NodeInfo(
        index=i,
        id=node_id,
        kind=kind,
        type=inv_type,
        label=label if isinstance(label, str) else "",
        version=version if isinstance(version, str) else "",
        inputs=inputs,
        is_intermediate=bool(data.get("isIntermediate", True)),
        use_cache=bool(data.get("useCache", True)),
    )


def _parse_edge(i: int, edge: Any, nodes: Mapping[str, NodeInfo]) -> EdgeInfo | None:
    path = f"$.edges[{i}]"
    if not isinstance(edge, Mapping):
        raise WorkflowDefinitionError("an edge must be an object", json_path=path)
    if edge.get("type", "default") == "collapsed":
        return None
    for end in ("source", "target"):
        ref = edge.get(end)
        if not isinstance(ref, str) or ref not in nodes:
            raise WorkflowReferenceError(
                f"edge {edge.get('id', i)!r} {end} points at a missing node {ref!r}",
                json_path=f"{path}.{end}",
            )
    s_handle, t_handle = edge.get("sourceHandle"), edge.get("targetHandle")
    if not isinstance(s_handle, str) or not isinstance(t_handle, str):
        raise WorkflowDefinitionError(
            f"edge {edge.get('id', i)!r} lacks sourceHandle/targetHandle", json_path=path
        )
    target = nodes[edge["target"]]
    if target.kind == "invocation" and t_handle not in target.inputs:
        raise WorkflowReferenceError(
            f"edge {edge.get('id', i)!r} points at a missing input {t_handle!r} of node "
            f"{target.id!r} ({target.type})",
            json_path=f"{path}.targetHandle",
        )
    return EdgeInfo(i, edge["source"], s_handle, edge["target"], t_handle)
