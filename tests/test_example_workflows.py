"""The example workflows are real GUI exports: InvokeAI's own model and server accept them.

Each file in ``examples/workflows/`` must (1) validate in InvokeAI's workflow pydantic model,
(2) have a Form that the GUI would accept (root container, every element reachable, parent
links consistent, every field pointing at an existing node input), and (3) be accepted by a
real server's workflow library.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
NAMES = [
    "blur.json",
    "img2img.json",
    "two_boards.json",
    "primitives_math.json",
    "batch_width.json",
    "crop_fail.json",
    "lora_blank.json",
]

# (node type, field name) of each Form field, in Form order.
FORM_FIELDS = {
    "blur.json": [
        ("blank_image", "width"),
        ("blank_image", "height"),
        ("blank_image", "color"),
        ("img_blur", "radius"),
        ("save_image", "board"),
    ],
    "img2img.json": [
        ("image", "image"),
        ("img_resize", "width"),
        ("img_resize", "height"),
        ("img_blur", "radius"),
        ("save_image", "board"),
    ],
    "two_boards.json": [
        ("blank_image", "width"),
        ("save_image", "board"),
        ("img_blur", "radius"),
        ("save_image", "board"),
    ],
    "primitives_math.json": [
        ("integer", "value"),
        ("float", "value"),
        ("integer_math", "b"),
        ("string", "value"),
        ("float_math", "b"),
        ("save_image", "board"),
    ],
    "batch_width.json": [
        ("integer_batch", "integers"),
        ("blank_image", "height"),
        ("save_image", "board"),
    ],
    "crop_fail.json": [
        ("img_crop", "width"),
        ("img_crop", "height"),
        ("save_image", "board"),
    ],
    "lora_blank.json": [
        ("lora_selector", "lora"),
        ("lora_selector", "weight"),
        ("blank_image", "width"),
        ("save_image", "board"),
    ],
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def form_fields(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """Walk the Form depth-first and return (node type, field name) per node-field."""
    form = workflow["form"]
    elements = form["elements"]
    types = {n["id"]: n["data"]["type"] for n in workflow["nodes"]}
    found: list[tuple[str, str]] = []

    def walk(element_id: str) -> None:
        element = elements[element_id]
        if element["type"] == "container":
            for child in element["data"]["children"]:
                walk(child)
        elif element["type"] == "node-field":
            ident = element["data"]["fieldIdentifier"]
            found.append((types[ident["nodeId"]], ident["fieldName"]))

    walk(form["rootElementId"])
    return found


def test_all_examples_present() -> None:
    present = sorted(p.name for p in EXAMPLES.glob("*.json"))
    assert present == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_loads_in_invokeai_workflow_model(name: str) -> None:
    from invokeai.app.services.workflow_records.workflow_records_common import (
        WorkflowWithoutIDValidator,
    )

    workflow = load(name)
    model = WorkflowWithoutIDValidator.validate_python(workflow)
    assert model.meta.version == "4.0.0"
    assert model.meta.category == "user"
    assert "id" not in workflow  # a downloaded, never-saved GUI workflow has no id


@pytest.mark.parametrize("name", NAMES)
def test_form_structure_is_what_the_gui_accepts(name: str) -> None:
    workflow = load(name)
    form = workflow["form"]
    elements = form["elements"]
    root_id = form["rootElementId"]
    assert elements[root_id]["type"] == "container"
    assert "parentId" not in elements[root_id]

    reached: set[str] = set()

    def walk(element_id: str) -> None:
        reached.add(element_id)
        element = elements[element_id]
        assert element["id"] == element_id
        if element_id != root_id:
            parent = elements[element["parentId"]]
            assert parent["type"] == "container"
            assert element_id in parent["data"]["children"]
        if element["type"] == "container":
            assert element["data"]["layout"] in ("row", "column")
            for child in element["data"]["children"]:
                walk(child)

    walk(root_id)
    assert reached == set(elements), "elements not reachable from the root"

    nodes = {n["id"]: n for n in workflow["nodes"]}
    for element in elements.values():
        if element["type"] == "node-field":
            ident = element["data"]["fieldIdentifier"]
            assert ident["fieldName"] in nodes[ident["nodeId"]]["data"]["inputs"]

    assert form_fields(workflow) == FORM_FIELDS[name]


@pytest.mark.parametrize("name", NAMES)
def test_edges_connect_existing_inputs(name: str) -> None:
    workflow = load(name)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    for edge in workflow["edges"]:
        assert edge["type"] == "default"
        assert edge["source"] in nodes
        assert edge["targetHandle"] in nodes[edge["target"]]["data"]["inputs"]


def test_primitives_math_has_integer_looking_float_and_row() -> None:
    workflow = load("primitives_math.json")
    floats = [n for n in workflow["nodes"] if n["data"]["type"] == "float"]
    assert floats[0]["data"]["inputs"]["value"]["value"] == 7
    # The JSON text holds `7`, not `7.0`: the type must come from the schema, not the value.
    assert isinstance(floats[0]["data"]["inputs"]["value"]["value"], int)
    rows = [
        e
        for e in workflow["form"]["elements"].values()
        if e["type"] == "container" and e["data"]["layout"] == "row"
    ]
    assert len(rows) == 1 and len(rows[0]["data"]["children"]) == 2


@pytest.mark.server
@pytest.mark.parametrize("name", NAMES)
def test_server_accepts_in_workflow_library(server: Any, name: str) -> None:
    workflow = load(name)
    response = httpx.post(
        f"{server.url}/api/v1/workflows/", json={"workflow": workflow}, timeout=30
    )
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["workflow"]["name"] == workflow["name"]
    assert record["workflow"]["id"] == record["workflow_id"]
    assert record["workflow"]["meta"]["category"] == "user"
