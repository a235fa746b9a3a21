"""Property-based tests over generated form trees and malformed workflows."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _workflow_helpers import edge, inv_node, workflow
from invokeai_py_client.exceptions import InvokeAIError
from invokeai_py_client.workflow import WorkflowDefinition, WorkflowRepository

REPO = WorkflowRepository()

# A form tree: ("field", name) | ("heading"|"text"|"divider",) | ("container", layout, [..])
leaf = st.one_of(
    st.tuples(st.just("field"), st.sampled_from(["value"])),
    st.tuples(st.sampled_from(["heading", "text", "divider"])),
)
trees = st.recursive(
    leaf,
    lambda children: st.tuples(
        st.just("container"),
        st.sampled_from(["row", "column"]),
        st.lists(children, max_size=5),
    ),
    max_leaves=25,
)


def build(tree: Any, root_id: str) -> tuple[dict[str, Any], list[str]]:
    """(workflow dict, expected node ids in GUI order) for a tree (the root is a container)."""
    elements: dict[str, Any] = {}
    nodes: list[dict[str, Any]] = []
    expected: list[str] = []
    counter = [0]

    def new_id(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}-{counter[0]:03d}"

    def emit(t: Any, el_id: str, parent: str | None) -> None:
        kind = t[0]
        el: dict[str, Any] = {"id": el_id, "type": "node-field" if kind == "field" else kind}
        if parent is not None:
            el["parentId"] = parent
        if kind == "container":
            child_ids = [new_id("el") for _ in t[2]]
            el["data"] = {"layout": t[1], "children": child_ids}
            elements[el_id] = el
            for child, cid in zip(t[2], child_ids, strict=True):
                emit(child, cid, el_id)
            return
        if kind == "field":
            node_id = new_id("node")
            nodes.append(inv_node(node_id, "integer", {"value": len(nodes)}))
            expected.append(node_id)
            el["data"] = {"fieldIdentifier": {"nodeId": node_id, "fieldName": "value"}}
        elif kind != "divider":
            el["data"] = {"content": "x"}
        elements[el_id] = el

    root = tree if tree[0] == "container" else ("container", "column", [tree])
    emit(root, root_id, None)
    # the element dict's order must not matter: reverse it
    form = {"elements": dict(reversed(list(elements.items()))), "rootElementId": root_id}
    return workflow(nodes, form=form), expected


@settings(max_examples=150, deadline=None)
@given(trees, st.sampled_from(["root", "container-XSINSu999B", "a"]))
def test_inputs_follow_depth_first_pre_order(tree: Any, root_id: str) -> None:
    data, expected = build(tree, root_id)
    wf = REPO.create_workflow(WorkflowDefinition.from_dict(data))
    inputs = wf.list_inputs()
    assert [i.node_id for i in inputs] == expected
    assert [i.input_index for i in inputs] == list(range(len(expected)))
    payload = wf.build_payload()
    assert set(payload["batch"]["graph"]["nodes"]) == set(expected)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _base_workflow() -> dict[str, Any]:
    nodes = [
        inv_node(
            "canvas",
            "blank_image",
            {"width": 64, "height": 64, "color": {"r": 0, "g": 0, "b": 0, "a": 255}},
        ),
        inv_node("blur", "img_blur", {"radius": 2.0, "blur_type": "gaussian"}),
        inv_node("b", "integer_batch", {"integers": [1, 2], "batch_group_id": "None"}),
        inv_node("save", "save_image", {"board": "auto"}),
        {"id": "conn", "type": "connector", "data": {}},
        {"id": "note", "type": "notes", "data": {"notes": "n"}},
    ]
    nodes[1]["data"]["inputs"]["image"] = {"name": "image", "label": "", "description": ""}
    nodes[3]["data"]["inputs"]["image"] = {"name": "image", "label": "", "description": ""}
    edges = [
        edge("canvas", "image", "conn", "in"),
        edge("conn", "out", "blur", "image"),
        edge("blur", "image", "save", "image"),
        edge("b", "integers", "canvas", "height"),
    ]
    form = {
        "rootElementId": "root",
        "elements": {
            "root": {
                "id": "root",
                "type": "container",
                "data": {"layout": "column", "children": ["f1", "h", "row"]},
            },
            "h": {"id": "h", "type": "heading", "data": {"content": "t"}},
            "row": {
                "id": "row",
                "type": "container",
                "data": {"layout": "row", "children": ["f2", "f3", "f4"]},
            },
            "f1": {
                "id": "f1",
                "type": "node-field",
                "data": {
                    "fieldIdentifier": {"nodeId": "canvas", "fieldName": "width"},
                    "settings": {"type": "integer-field-config", "min": 8, "max": 512},
                },
            },
            "f2": {
                "id": "f2",
                "type": "node-field",
                "data": {"fieldIdentifier": {"nodeId": "blur", "fieldName": "radius"}},
            },
            "f3": {
                "id": "f3",
                "type": "node-field",
                "data": {"fieldIdentifier": {"nodeId": "save", "fieldName": "board"}},
            },
            "f4": {
                "id": "f4",
                "type": "node-field",
                "data": {"fieldIdentifier": {"nodeId": "b", "fieldName": "integers"}},
            },
        },
    }
    return workflow(nodes, edges, form, exposed=[("canvas", "width")])


BASE = _base_workflow()
BASE_PATHS = [p for p in _paths(BASE) if p]
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.sampled_from(["root", "canvas", "none", "auto", "container"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.sampled_from(BASE_PATHS), st.booleans(), junk), min_size=1, max_size=3)
)
def test_malformed_workflows_raise_only_library_errors(
    mutations: list[tuple[tuple[Any, ...], bool, Any]],
) -> None:
    data = copy.deepcopy(BASE)
    for path, delete, value in mutations:
        parent: Any = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            if delete and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict) or (isinstance(parent, list) and path[-1] < len(parent)):
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    try:
        defn = WorkflowDefinition.from_dict(data)
        wf = REPO.create_workflow(defn)
        for inp in wf.list_inputs():
            inp.field.to_api_value()
        wf.preview()
        wf.output_nodes()
        wf.build_payload()
        wf.validate_inputs()
    except InvokeAIError:
        pass  # a library error: what a user is promised


def test_base_workflow_is_valid() -> None:
    wf = REPO.create_workflow(WorkflowDefinition.from_dict(BASE))
    assert [i.field_name for i in wf.list_inputs()] == ["width", "radius", "board", "integers"]
    p = wf.build_payload()
    assert p["batch"]["data"] == [
        [{"node_path": "canvas", "field_name": "height", "items": [1, 2]}]
    ]
    assert p["batch"]["graph"]["edges"][0]["source"] == {"node_id": "canvas", "field": "image"}


any_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
keys = st.one_of(
    st.integers(-3, 8),
    st.text(max_size=8),
    st.sampled_from(["Width", "Radius", "Board", "Integers", "canvas.width", "radius"]),
    st.tuples(st.text(max_size=4), st.text(max_size=4)),
    st.none(),
    st.floats(),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(keys, any_value)
def test_setting_anything_raises_only_library_errors(key: Any, value: Any) -> None:
    wf = REPO.create_workflow(WorkflowDefinition.from_dict(BASE))
    before = [i.field.to_api_value() for i in wf.list_inputs()]
    try:
        field = wf.set(key, value)
    except InvokeAIError:
        # a refused value leaves every input as it was
        assert [i.field.to_api_value() for i in wf.list_inputs()] == before
        return
    field.validate_field()
    try:
        wf.build_payload()
    except InvokeAIError as exc:  # e.g. a batch node given no items
        assert "batch node" in str(exc)
