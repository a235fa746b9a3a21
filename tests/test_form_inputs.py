"""Form inputs: GUI order, labels, field classes, addressing, setting and validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from _workflow_helpers import (
    SEED_WORKFLOWS,
    blur_workflow,
    corpus_params,
    edge,
    form_of,
    inv_node,
    labelled,
    load_json,
    unset,
    workflow,
)
from invokeai_py_client.exceptions import (
    AmbiguousInputError,
    FieldValueError,
    InputNotFoundError,
    InputValidationError,
    UnknownNodeTypeError,
)
from invokeai_py_client.ivk_fields import (
    IvkBoardField,
    IvkBooleanField,
    IvkCollectionField,
    IvkColorField,
    IvkEnumField,
    IvkField,
    IvkFloatField,
    IvkImageField,
    IvkIntegerField,
    IvkModelIdentifierField,
    IvkRawField,
    IvkSchedulerField,
    IvkStringField,
    SchedulerName,
)
from invokeai_py_client.workflow import (
    DetectionContext,
    FieldTypeRegistry,
    NodeSchemaIndex,
    WorkflowDefinition,
    WorkflowHandle,
    WorkflowRepository,
)

SCHEMA = NodeSchemaIndex.offline()

KIND_CLASSES: dict[str, type[IvkField[Any]]] = {
    "string": IvkStringField,
    "integer": IvkIntegerField,
    "float": IvkFloatField,
    "boolean": IvkBooleanField,
    "enum": IvkEnumField,
    "scheduler": IvkSchedulerField,
    "image": IvkImageField,
    "board": IvkBoardField,
    "model": IvkModelIdentifierField,
    "color": IvkColorField,
    "collection": IvkCollectionField,
}


def handle_for(data: dict[str, Any], schema: NodeSchemaIndex | None = None) -> WorkflowHandle:
    return WorkflowRepository(schema=schema).create_workflow(WorkflowDefinition.from_dict(data))


def gui_order(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """Reference implementation of the GUI's order (recursive, independent of form.py)."""
    form = raw.get("form") or {}
    elements = form.get("elements") or {}
    found: list[tuple[str, str]] = []

    def walk(el_id: str) -> None:
        el = elements[el_id]
        if el["type"] == "container":
            for child in el["data"]["children"]:
                walk(child)
        elif el["type"] == "node-field":
            ident = el["data"]["fieldIdentifier"]
            found.append((ident["nodeId"], ident["fieldName"]))

    if elements:
        walk(form["rootElementId"])
    if not found:
        found = [(e["nodeId"], e["fieldName"]) for e in raw.get("exposedFields") or []]
    return found


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_inputs_in_gui_order_with_right_classes(path: Path) -> None:
    raw = load_json(path)
    wf = WorkflowRepository().create_workflow(WorkflowDefinition.from_file(path))
    inputs = wf.list_inputs()
    assert [(i.node_id, i.field_name) for i in inputs] == gui_order(raw)
    assert [i.input_index for i in inputs] == list(range(len(inputs)))
    types = {n["id"]: n["data"].get("type") for n in raw["nodes"]}
    for inp in inputs:
        assert inp.node_type == types[inp.node_id]
        assert inp.label and inp.node_name
        path = f"$.nodes[?(@.id=='{inp.node_id}')].data.inputs.{inp.field_name}.value"
        assert inp.jsonpath == path
        s = SCHEMA.input(inp.node_type, inp.field_name)
        if s is None:
            continue
        expected = KIND_CLASSES.get(s.kind)
        saved_is_list = isinstance(wf.definition.nodes[inp.node_id].value(inp.field_name), list)
        if expected is not None and not (s.allows_list and saved_is_list):
            assert type(inp.field) is expected, (inp.describe(), s.kind)
        assert inp.required == s.required


def test_sdxl_seed_inputs() -> None:
    path = SEED_WORKFLOWS / "sdxl-text-to-image.json"
    if not path.exists():
        pytest.skip("seed fixtures absent")
    wf = WorkflowRepository().create_workflow(WorkflowDefinition.from_file(path))
    got = [(i.label, type(i.field).__name__) for i in wf.list_inputs()]
    assert got == [
        ("Model", "IvkModelIdentifierField"),
        ("positive prompt", "IvkStringField"),
        ("negative prompt", "IvkStringField"),
        ("Width", "IvkIntegerField"),
        ("Height", "IvkIntegerField"),
        ("Steps", "IvkIntegerField"),
        ("CFG Scale", "IvkFloatField"),
        ("Scheduler", "IvkSchedulerField"),
        ("Board", "IvkBoardField"),
    ]
    # node_name: the node's label, else the type's title
    assert wf.get_input(1).node_name == "Positive Prompt"
    assert wf.get_input(3).node_name == "Create Latent Noise"
    sched = wf.get_input_value(7)
    assert isinstance(sched, IvkSchedulerField) and sched.value == "dpmpp_3m_k"
    sched.value = SchedulerName.EULER_A
    steps = wf.get_input_value(5)
    with pytest.raises(FieldValueError, match="greater than 0"):
        steps.value = 0  # the schema's gt=0 is enforced
    assert wf.get_input_value(0).to_api_value()["base"] == "sdxl"


def test_root_element_id_is_not_hard_coded() -> None:
    data = blur_workflow()
    data["form"] = form_of([("blur", "radius"), ("canvas", "width")], root="container-XYZ")
    wf = handle_for(data)
    assert [i.field_name for i in wf.list_inputs()] == ["radius", "width"]


def test_nested_containers_headings_and_dividers() -> None:
    data = blur_workflow()
    els: dict[str, Any] = {
        "root": {
            "id": "root",
            "type": "container",
            "data": {"layout": "column", "children": ["h", "row", "d", "f3"]},
        },
        "h": {"id": "h", "type": "heading", "data": {"content": "Title"}},
        "d": {"id": "d", "type": "divider"},
        "t": {"id": "t", "type": "text", "data": {"content": "x"}},
        "row": {
            "id": "row",
            "type": "container",
            "data": {"layout": "row", "children": ["f2", "t", "f1"]},
        },
        "f1": {
            "id": "f1",
            "type": "node-field",
            "data": {"fieldIdentifier": {"nodeId": "canvas", "fieldName": "width"}},
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
    }
    data["form"] = {"elements": els, "rootElementId": "root"}
    wf = handle_for(data)
    assert [(i.field_name, i.element_id) for i in wf.list_inputs()] == [
        ("radius", "f2"),
        ("width", "f1"),
        ("board", "f3"),
    ]


def test_empty_form_falls_back_to_exposed_fields() -> None:
    data = blur_workflow()
    data["form"] = {
        "elements": {
            "root": {
                "id": "root",
                "type": "container",
                "data": {"layout": "column", "children": []},
            }
        },
        "rootElementId": "root",
    }
    data["exposedFields"] = [
        {"nodeId": "save", "fieldName": "board"},
        {"nodeId": "canvas", "fieldName": "height"},
    ]
    wf = handle_for(data)
    assert wf.definition.form_source == "exposedFields"
    assert [i.label for i in wf.list_inputs()] == ["Board", "Height"]


def test_no_form_and_no_exposed_fields_means_no_inputs() -> None:
    data = blur_workflow()
    data["form"] = {}
    wf = handle_for(data)
    assert wf.list_inputs() == [] and wf.definition.form_source == "none"


def test_labels_prefer_the_input_label_then_schema_title() -> None:
    nodes = [
        inv_node(
            "n",
            "img_blur",
            {"radius": labelled(2.0, "Softness"), "blur_type": "box", "image": unset()},
            label="My Blur",
        )
    ]
    wf = handle_for(workflow(nodes, form=form_of([("n", "radius"), ("n", "blur_type")])))
    a, b = wf.list_inputs()
    assert (a.label, b.label) == ("Softness", "Blur Type")
    assert a.node_name == "My Blur"
    assert isinstance(b.field, IvkEnumField) and b.field.choices == ["gaussian", "box"]


def test_float_saved_as_integer_is_a_float_field() -> None:
    nodes = [inv_node("f", "float", {"value": 0}), inv_node("g", "float", {"value": 7})]
    wf = handle_for(workflow(nodes, form=form_of([("f", "value"), ("g", "value")])))
    for inp in wf.list_inputs():
        assert isinstance(inp.field, IvkFloatField)
        assert isinstance(inp.field.value, float)


def test_form_settings_come_first() -> None:
    data = workflow(
        [inv_node("s", "string", {"value": "b"}), inv_node("i", "integer", {"value": 5})],
        form=form_of([("s", "value"), ("i", "value")]),
    )
    els = data["form"]["elements"]
    els["node-field-0"]["data"]["settings"] = {
        "type": "string-field-config",
        "component": "dropdown",
        "options": [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}],
    }
    els["node-field-1"]["data"]["settings"] = {
        "type": "integer-field-config",
        "component": "slider",
        "min": 1,
        "max": 10,
    }
    wf = handle_for(data)
    s, i = wf.get_input_value(0), wf.get_input_value(1)
    assert isinstance(s, IvkStringField) and s.options == ["a", "b"]
    with pytest.raises(FieldValueError, match="not one of the options"):
        s.value = "c"
    assert isinstance(i, IvkIntegerField) and (i.minimum, i.maximum) == (1, 10)
    with pytest.raises(FieldValueError, match="above the maximum 10"):
        wf.set(1, 11)


def test_value_shape_detection_without_a_schema() -> None:
    nodes = [
        inv_node(
            "x",
            "mystery_pack_node",
            {
                "img": {"image_name": "a.png"},
                "b": {"board_id": "b1"},
                "m": {"key": "k", "hash": "h", "name": "n", "base": "sdxl", "type": "main"},
                "c": {"r": 1, "g": 2, "b": 3, "a": 4},
                "n": 3,
                "f": 0.5,
                "t": "text",
                "yes": True,
                "odd": {"weird": [1, 2]},
                "nothing": unset(),
            },
        )
    ]
    fields = ["img", "b", "m", "c", "n", "f", "t", "yes", "odd", "nothing"]
    wf = handle_for(workflow(nodes, form=form_of([("x", f) for f in fields])))
    classes = [type(i.field) for i in wf.list_inputs()]
    assert classes == [
        IvkImageField,
        IvkBoardField,
        IvkModelIdentifierField,
        IvkColorField,
        IvkIntegerField,
        IvkFloatField,
        IvkStringField,
        IvkBooleanField,
        IvkRawField,
        IvkRawField,
    ]
    odd = wf.get_input_value("odd")
    assert odd.to_api_value() == {"weird": [1, 2]}  # kept exactly, never stringified
    assert wf.get_input_value("nothing").to_api_value() is None


def test_user_rules_run_first() -> None:
    registry = FieldTypeRegistry.with_builtin_rules()
    registry.register(
        lambda ctx: ctx.node_type == "string" and ctx.field_name == "value",
        lambda ctx: IvkStringField(value=ctx.value, max_length=5),
        name="short-strings",
    )
    assert registry.rules[0].name == "short-strings"
    data = workflow([inv_node("s", "string", {"value": "abc"})], form=form_of([("s", "value")]))
    wf = WorkflowRepository(registry=registry).create_workflow(WorkflowDefinition.from_dict(data))
    with pytest.raises(FieldValueError, match="longer than 5"):
        wf.set(0, "abcdefgh")
    registry.unregister("short-strings")
    assert all(r.name != "short-strings" for r in registry.rules)


def test_detection_context_settings_type() -> None:
    ctx = DetectionContext("n", "t", "f", 1, True, {"type": "integer-field-config"}, None)
    assert ctx.settings_type == "integer-field-config"


def test_saved_value_outside_bounds_loads_and_fails_validation() -> None:
    nodes = [inv_node("d", "img_blur", {"radius": -3.0, "image": unset()})]
    wf = handle_for(workflow(nodes, form=form_of([("d", "radius")])))
    field = wf.get_input_value(0)
    assert isinstance(field, IvkFloatField) and field.value == -3.0
    with pytest.raises(InputValidationError) as info:
        wf.validate_inputs()
    assert info.value.problems[0][0] == 0 and "minimum" in info.value.problems[0][2]


# ---------------------------------------------------------------------- addressing


def test_address_by_index_label_tuple_and_dotted_key() -> None:
    wf = handle_for(blur_workflow())
    assert wf.input(1).field_name == "radius"
    assert wf.input("Radius").node_id == "blur"
    assert wf.input("radius").node_id == "blur"  # case-insensitive label
    assert wf.input(("save", "board")).input_index == 2
    assert wf.input("canvas.width").input_index == 0
    assert wf.get_input("Width") is wf.input(0)
    assert len(wf) == 3


def test_ambiguous_label_lists_candidates() -> None:
    nodes = [inv_node("a", "integer", {"value": 1}), inv_node("b", "integer", {"value": 2})]
    wf = handle_for(workflow(nodes, form=form_of([("a", "value"), ("b", "value")])))
    with pytest.raises(AmbiguousInputError) as info:
        wf.input("Value")
    assert info.value.candidates == [(0, "Value", "a", "value"), (1, "Value", "b", "value")]
    assert "[0] 'Value' (a.value)" in str(info.value) and "[1]" in str(info.value)


@pytest.mark.parametrize("key", [5, -1, "Nope", ("x", "y"), True, 1.5, ("a",)])
def test_input_not_found(key: Any) -> None:
    wf = handle_for(blur_workflow())
    with pytest.raises(InputNotFoundError) as info:
        wf.input(key)
    assert isinstance(info.value, LookupError)
    if key == 5:
        assert "index 5" in str(info.value) and "3 inputs" in str(info.value)
    if key == "Nope":
        assert "'Width'" in str(info.value)


# ---------------------------------------------------------------------- setting


def test_set_coerces_and_validates_naming_the_input() -> None:
    wf = handle_for(blur_workflow())
    assert wf.set("Width", 128.0).to_api_value() == 128
    wf.set("Board", {"board_id": "b1"})
    assert wf.get_input_value(2).to_api_value() == {"board_id": "b1"}
    with pytest.raises(FieldValueError) as info:
        wf.set("Width", "wide")
    assert "[0] 'Width' (canvas.width)" in str(info.value)
    with pytest.raises(FieldValueError, match=r"\[1\] 'Radius'.*minimum 0"):
        wf.set("Radius", -1)
    assert wf.get_input_value(1).to_api_value() == 4.0
    wf.set_many({"Width": 32, ("blur", "radius"): 1.5})
    assert wf.api_values()[("blur", "radius")] == 1.5


def test_set_input_value_same_class_only_and_keeps_constraints() -> None:
    wf = handle_for(blur_workflow())
    wf.set_input_value(1, IvkFloatField(value=3.0))
    assert wf.get_input_value(1).value == 3.0
    assert wf.get_input_value(1).minimum == 0  # the schema's bound carried over
    with pytest.raises(FieldValueError, match="minimum"):
        wf.set_input_value(1, IvkFloatField(value=-2.0))
    with pytest.raises(FieldValueError, match="holds a IvkFloatField; got a IvkIntegerField"):
        wf.set_input_value(1, IvkIntegerField(value=3))
    wf.set("Radius", IvkFloatField(value=2.5))
    assert wf.get_input_value("Radius").value == 2.5


def test_validate_inputs_names_each_bad_input() -> None:
    nodes = [
        inv_node("img", "image", {"image": unset("Source")}),
        inv_node("blur", "img_blur", {"image": unset(), "radius": 2.0}),
    ]
    wf = handle_for(
        workflow(
            nodes,
            [edge("img", "image", "blur", "image")],
            form_of([("img", "image"), ("blur", "radius")]),
        )
    )
    wf.get_input_value(1).__dict__["value"] = -5.0  # bypass validation on purpose
    with pytest.raises(InputValidationError) as info:
        wf.validate_inputs()
    msg = str(info.value)
    assert "[0] Source: required, but has no value" in msg
    assert "[1] Radius" in msg
    assert [p[0] for p in info.value.problems] == [0, 1]
    wf.set("Source", "a.png")
    wf.set("Radius", 1.0)
    wf.validate_inputs()


def test_validate_inputs_reports_required_inputs_outside_the_form() -> None:
    nodes = [
        inv_node("loader", "sdxl_model_loader", {"model": unset()}),
        inv_node("i", "integer", {"value": 1}),
    ]
    wf = handle_for(workflow(nodes, form=form_of([("i", "value")])))
    with pytest.raises(InputValidationError) as info:
        wf.validate_inputs()
    assert "(not in the Form)" in str(info.value) and "loader.model" in str(info.value)


def test_unknown_node_type_with_a_schema() -> None:
    nodes = [
        inv_node("old", "canny_image_processor", {"image": unset()}),
        inv_node("i", "integer", {"value": 1}),
    ]
    wf = handle_for(workflow(nodes, form=form_of([("i", "value")])))
    assert wf.list_inputs()[0].label == "Value"  # inputs still work
    with pytest.raises(UnknownNodeTypeError) as info:
        wf.validate_inputs()
    assert info.value.node_id == "old" and info.value.node_type == "canny_image_processor"
    assert "re" in str(info.value) and "export it again" in str(info.value)
    # without any schema (empty index) nothing is checked
    handle_for(workflow(nodes), schema=NodeSchemaIndex.empty()).build_payload()


def test_preview() -> None:
    wf = handle_for(blur_workflow())
    rows = wf.preview()
    assert rows[0] == {
        "index": 0,
        "label": "Width",
        "field_name": "width",
        "node_id": "canvas",
        "node_name": "Blank Image",
        "type": "IvkIntegerField",
        "required": False,
        "value": 64,
    }
    assert rows[2]["value"] == "auto"


def test_repository_takes_the_clients_schema() -> None:
    class FakeClient:
        calls = 0

        def node_schema(self, node_types: object = None) -> NodeSchemaIndex:
            FakeClient.calls += 1
            return NodeSchemaIndex.empty()

    repo = WorkflowRepository(FakeClient())  # type: ignore[arg-type]
    wf = repo.create_workflow(WorkflowDefinition.from_dict(blur_workflow()))
    assert FakeClient.calls == 1 and len(wf.schema) == 0
    assert isinstance(wf.get_input_value(0), IvkIntegerField)  # value-shape fallback
    assert WorkflowRepository(object()).node_schema() is NodeSchemaIndex.offline()  # type: ignore[arg-type]


def test_handle_takes_the_clients_schema_when_none_is_given() -> None:
    class FakeClient:
        def node_schema(self, node_types: object = None) -> NodeSchemaIndex:
            return NodeSchemaIndex.empty()

    defn = WorkflowDefinition.from_dict(blur_workflow())
    assert len(WorkflowHandle(defn, FakeClient()).schema) == 0  # type: ignore[arg-type]
    assert WorkflowHandle(defn).schema is NodeSchemaIndex.offline()
    assert WorkflowHandle(defn, None, NodeSchemaIndex.empty()).client is None


def test_create_workflow_from_file(tmp_path: Path) -> None:
    import json

    p = tmp_path / "wf.json"
    p.write_text(json.dumps(blur_workflow()), encoding="utf-8")
    wf = WorkflowRepository().create_workflow_from_file(p)
    assert "3 inputs" in repr(wf)
