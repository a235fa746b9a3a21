"""WorkflowDefinition: loads every real GUI export, refuses malformed ones precisely."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from _workflow_helpers import (
    blur_workflow,
    corpus_params,
    edge,
    form_of,
    inv_node,
    load_json,
    shipped_files,
    workflow,
)
from invokeai_py_client.exceptions import (
    FormCycleError,
    UnsupportedWorkflowVersionError,
    WorkflowDefinitionError,
    WorkflowReferenceError,
)
from invokeai_py_client.workflow import WorkflowDefinition, WorkflowRepository


@pytest.mark.parametrize("path", corpus_params())
def test_every_corpus_workflow_loads(path: Path) -> None:
    d = WorkflowDefinition.from_file(path)
    raw = load_json(path)
    assert d.schema_version in ("3.0.0", "4.0.0")
    assert d.to_dict() == raw
    assert len(d.nodes) == len(raw["nodes"])
    assert d.source_path == path


def test_shipped_corpus_is_the_26_workflows_in_both_schemas() -> None:
    files = shipped_files()
    if not files:
        pytest.skip("invokeai is not installed")
    assert len(files) == 26
    versions = {load_json(p)["meta"]["version"] for p in files}
    assert versions == {"3.0.0", "4.0.0"}


def test_from_dict_copies_and_to_dict_is_a_copy() -> None:
    data = blur_workflow()
    d = WorkflowDefinition.from_dict(data)
    data["nodes"][0]["data"]["inputs"]["width"]["value"] = 999
    assert d.nodes["canvas"].value("width") == 64
    out = d.to_dict()
    out["nodes"].clear()
    assert len(d.to_dict()["nodes"]) == 3
    assert json.loads(d.to_json()) == d.to_dict()


def test_raw_json_never_mutated_by_handles_and_payloads() -> None:
    data = blur_workflow()
    d = WorkflowDefinition.from_dict(data)
    before = copy.deepcopy(d.to_dict())
    wf = WorkflowRepository().create_workflow(d)
    wf.set("Width", 128)
    wf.set("Radius", 9.5)
    wf.set("Board", {"board_id": "b1"})
    payload = wf.build_payload(runs=2)
    wf.validate_inputs()
    wf.preview()
    # mutate what the library handed out: the definition must not notice
    payload["batch"]["graph"]["nodes"]["canvas"]["width"] = 1
    payload["batch"]["graph"]["nodes"]["canvas"]["color"]["r"] = 77
    for inp in wf.list_inputs():
        inp.field.validate_field()
    assert d.to_dict() == before
    assert d.nodes["canvas"].value("width") == 64


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0", "1.1"])
def test_old_schemas_are_refused_with_a_re_export_hint(version: str) -> None:
    with pytest.raises(UnsupportedWorkflowVersionError) as info:
        WorkflowDefinition.from_dict(workflow([], version=version))
    msg = str(info.value)
    assert version in msg and "export it again" in msg
    assert info.value.json_path == "$.meta.version"


def test_missing_version_and_future_version() -> None:
    data = workflow([])
    del data["meta"]
    with pytest.raises(UnsupportedWorkflowVersionError, match=r"no meta\.version"):
        WorkflowDefinition.from_dict(data)
    with pytest.raises(UnsupportedWorkflowVersionError, match="newer than this client"):
        WorkflowDefinition.from_dict(workflow([], version="5.0.0"))


def test_not_json(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text("{not json", encoding="utf-8")
    with pytest.raises(WorkflowDefinitionError, match="not valid JSON") as info:
        WorkflowDefinition.from_file(p)
    assert info.value.json_path == "$"
    with pytest.raises(WorkflowDefinitionError, match="not valid JSON"):
        WorkflowDefinition.from_json("[1,")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorkflowDefinitionError, match="cannot read workflow file"):
        WorkflowDefinition.from_file(tmp_path / "nope.json")


def test_not_an_object() -> None:
    with pytest.raises(WorkflowDefinitionError, match="JSON object"):
        WorkflowDefinition.from_json("[1, 2]")


def test_missing_nodes() -> None:
    data = workflow([])
    del data["nodes"]
    with pytest.raises(WorkflowDefinitionError, match="no 'nodes' list") as info:
        WorkflowDefinition.from_dict(data)
    assert info.value.json_path == "$.nodes"


def _bad(mutate: Any) -> WorkflowDefinitionError:
    data = blur_workflow()
    mutate(data)
    with pytest.raises(WorkflowDefinitionError) as info:
        WorkflowDefinition.from_dict(data)
    return info.value


def test_node_without_id() -> None:
    err = _bad(lambda d: d["nodes"][1].pop("id"))
    assert "has no 'id'" in str(err) and err.json_path == "$.nodes[1].id"


def test_node_without_type() -> None:
    err = _bad(lambda d: d["nodes"][2].pop("type"))
    assert "'save' has no 'type'" in str(err) and err.json_path == "$.nodes[2].type"


def test_invocation_without_data_type() -> None:
    err = _bad(lambda d: d["nodes"][0]["data"].pop("type"))
    assert "no 'data.type'" in str(err) and err.json_path == "$.nodes[0].data.type"


def test_duplicate_node_id() -> None:
    err = _bad(lambda d: d["nodes"][1].update(id="canvas"))
    assert "duplicate node id 'canvas'" in str(err)


def test_edge_to_missing_node() -> None:
    err = _bad(lambda d: d["edges"].append(edge("canvas", "image", "ghost", "image")))
    assert isinstance(err, WorkflowReferenceError)
    assert "missing node 'ghost'" in str(err) and err.json_path == "$.edges[2].target"


def test_edge_to_missing_input() -> None:
    err = _bad(lambda d: d["edges"].append(edge("canvas", "image", "blur", "nonexistent")))
    assert isinstance(err, WorkflowReferenceError)
    assert "missing input 'nonexistent'" in str(err) and "blur" in str(err)


def test_form_field_to_missing_node_and_input() -> None:
    err = _bad(lambda d: d.update(form=form_of([("ghost", "width")])))
    assert isinstance(err, WorkflowReferenceError) and "missing node 'ghost'" in str(err)
    err = _bad(lambda d: d.update(form=form_of([("canvas", "depth")])))
    assert isinstance(err, WorkflowReferenceError)
    assert "missing input 'depth' of node 'canvas'" in str(err)
    assert err.json_path is not None and err.json_path.endswith("fieldName")


def test_exposed_field_to_missing_input() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["form"] = {}
        d["exposedFields"] = [{"nodeId": "canvas", "fieldName": "depth"}]

    err = _bad(mutate)
    assert isinstance(err, WorkflowReferenceError)
    assert err.json_path == "$.exposedFields[0].fieldName"


def test_form_missing_child() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["form"]["elements"]["root"]["data"]["children"].append("node-field-missing")

    err = _bad(mutate)
    assert isinstance(err, WorkflowReferenceError)
    assert "missing child element 'node-field-missing'" in str(err)
    assert err.json_path == "$.form.elements['root'].data.children[3]"


def test_form_root_missing() -> None:
    err = _bad(lambda d: d["form"].update(rootElementId="nope"))
    assert isinstance(err, WorkflowReferenceError) and "rootElementId 'nope'" in str(err)


def test_form_cycle() -> None:
    def mutate(d: dict[str, Any]) -> None:
        els = d["form"]["elements"]
        els["box"] = {
            "id": "box",
            "type": "container",
            "data": {"layout": "row", "children": ["root"]},
        }
        els["root"]["data"]["children"].append("box")

    err = _bad(mutate)
    assert isinstance(err, FormCycleError)
    assert "contains itself" in str(err) and "root -> box -> root" in str(err)


def test_form_shared_child() -> None:
    def mutate(d: dict[str, Any]) -> None:
        els = d["form"]["elements"]
        els["box"] = {
            "id": "box",
            "type": "container",
            "data": {"layout": "row", "children": ["node-field-0"]},
        }
        els["root"]["data"]["children"].append("box")

    err = _bad(mutate)
    assert isinstance(err, FormCycleError) and "reached twice" in str(err)


def test_unknown_form_element_type() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["form"]["elements"]["node-field-0"]["type"] = "sparkle"

    err = _bad(mutate)
    assert "unknown form element type 'sparkle'" in str(err)


def test_collapsed_edges_are_visual_only() -> None:
    data = blur_workflow()
    data["edges"].append(edge("canvas", "width", "save", "nothing", kind="collapsed"))
    d = WorkflowDefinition.from_dict(data)
    assert len(d.edges) == 2


def test_notes_and_connector_nodes_load() -> None:
    data = blur_workflow()
    data["nodes"].append({"id": "n1", "type": "notes", "data": {"notes": "hi"}})
    data["nodes"].append({"id": "c1", "type": "connector", "data": {}})
    d = WorkflowDefinition.from_dict(data)
    assert d.nodes["n1"].kind == "notes" and d.nodes["c1"].kind == "connector"
    assert d.node_types() == {"blank_image", "img_blur", "save_image"}
    assert "nodes=5" in repr(d)


def test_node_inputs_must_be_objects() -> None:
    data = workflow([inv_node("a", "integer", {"value": 1})])
    data["nodes"][0]["data"]["inputs"]["value"] = 5
    with pytest.raises(WorkflowDefinitionError, match=r"data\.inputs"):
        WorkflowDefinition.from_dict(data)
