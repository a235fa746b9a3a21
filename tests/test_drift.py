"""Input index maps: export, then verify after the Form changed (unchanged/moved/missing/new)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _workflow_helpers import blur_workflow, form_of
from invokeai_py_client.exceptions import WorkflowError
from invokeai_py_client.workflow import WorkflowDefinition, WorkflowHandle, WorkflowRepository


def handle(fields: list[tuple[str, str]]) -> WorkflowHandle:
    data = blur_workflow()
    data["form"] = form_of(fields)
    return WorkflowRepository().create_workflow(WorkflowDefinition.from_dict(data))


def test_export_writes_every_input(tmp_path: Path) -> None:
    wf = handle([("canvas", "width"), ("blur", "radius"), ("save", "board")])
    path = wf.export_input_index_map(tmp_path / "map.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == 1 and data["workflow"] == "test"
    assert [e["input_index"] for e in data["inputs"]] == [0, 1, 2]
    assert data["inputs"][1] == {
        "input_index": 1,
        "label": "Radius",
        "node_id": "blur",
        "field_name": "radius",
        "node_name": "Blur Image",
        "field_type": "IvkFloatField",
        "jsonpath": "$.nodes[?(@.id=='blur')].data.inputs.radius.value",
    }


def test_verify_unchanged(tmp_path: Path) -> None:
    wf = handle([("canvas", "width"), ("blur", "radius")])
    wf.export_input_index_map(tmp_path / "m.json")
    report = wf.verify_input_index_map(tmp_path / "m.json")
    assert [e["field_name"] for e in report["unchanged"]] == ["width", "radius"]
    assert report["moved"] == report["missing"] == report["new"] == []


def test_verify_moved_missing_new(tmp_path: Path) -> None:
    old = handle([("canvas", "width"), ("blur", "radius"), ("canvas", "height")])
    old.export_input_index_map(tmp_path / "m.json")
    new = handle([("blur", "radius"), ("canvas", "width"), ("save", "board")])
    report = new.verify_input_index_map(tmp_path / "m.json")
    moved = {e["field_name"]: (e["old_index"], e["new_index"]) for e in report["moved"]}
    assert moved == {"width": (0, 1), "radius": (1, 0)}
    assert [e["field_name"] for e in report["missing"]] == ["height"]
    assert [e["field_name"] for e in report["new"]] == ["board"]
    assert report["unchanged"] == []


@pytest.mark.parametrize("content", ["not json", "[]", '{"inputs": [{"label": "x"}]}'])
def test_verify_rejects_a_bad_map(tmp_path: Path, content: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content, encoding="utf-8")
    wf = handle([("canvas", "width")])
    with pytest.raises(WorkflowError, match="input index map"):
        wf.verify_input_index_map(p)


def test_verify_missing_file(tmp_path: Path) -> None:
    wf = handle([("canvas", "width")])
    with pytest.raises(WorkflowError, match="cannot read input index map"):
        wf.verify_input_index_map(tmp_path / "absent.json")
