"""The graph builder follows the GUI's rules, and InvokeAI's own models accept its output."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest

from _workflow_helpers import (
    blur_workflow,
    corpus_params,
    edge,
    fill_unset_models,
    form_of,
    inv_node,
    invokeai_models,
    unset,
    uses_retired_type,
    workflow,
)
from invokeai_py_client.exceptions import UnknownNodeTypeError, WorkflowDefinitionError
from invokeai_py_client.workflow import (
    NodeSchemaIndex,
    WorkflowDefinition,
    WorkflowHandle,
    WorkflowRepository,
    build_enqueue_payload,
    build_graph,
)
from invokeai_py_client.workflow.graph import BATCH_NODE_TYPES, generator_items

SCHEMA = NodeSchemaIndex.offline()
BASE_ATTRS = {"id", "type", "is_intermediate", "use_cache"}


def handle_for(data: dict[str, Any]) -> WorkflowHandle:
    return WorkflowRepository().create_workflow(WorkflowDefinition.from_dict(data))


def check_gui_rules(defn: WorkflowDefinition, payload: dict[str, Any]) -> None:
    """Node by node: what the GUI would send for a workflow without connector nodes."""
    batch = payload["batch"]
    graph = batch["graph"]
    executable = {
        n.id
        for n in defn.nodes.values()
        if n.kind == "invocation"
        and n.type not in BATCH_NODE_TYPES
        and not n.type.endswith("_generator")
    }
    assert set(graph["nodes"]) == executable
    fed = {(e["destination"]["node_id"], e["destination"]["field"]) for e in graph["edges"]}
    for group in batch.get("data") or []:
        fed |= {(d["node_path"], d["field_name"]) for d in group}
    for node_id, gnode in graph["nodes"].items():
        info = defn.nodes[node_id]
        assert gnode["id"] == node_id and gnode["type"] == info.type
        assert gnode["is_intermediate"] is info.is_intermediate
        assert gnode["use_cache"] is info.use_cache
        for name in set(gnode) - BASE_ATTRS:
            assert name in info.inputs, (node_id, name)
            assert (node_id, name) not in fed, f"connected input {node_id}.{name} was sent"
            assert gnode[name] is not None
            if name == "board":
                assert gnode[name] not in ("none", "auto")
        for name, inp in info.inputs.items():
            value = inp.get("value")
            sendable = value is not None and not (name == "board" and value in ("none", "auto"))
            if "value" in inp and sendable and (node_id, name) not in fed:
                assert gnode.get(name) == value, (node_id, name)
    keys = [
        (
            e["source"]["node_id"],
            e["source"]["field"],
            e["destination"]["node_id"],
            e["destination"]["field"],
        )
        for e in graph["edges"]
    ]
    assert len(keys) == len(set(keys)), "duplicate edges"
    for s, _, d, _ in keys:
        assert s in executable and d in executable
    expected = {
        (e.source, e.source_handle, e.target, e.target_handle)
        for e in defn.edges
        if e.source in executable and e.target in executable
    }
    assert set(keys) == expected


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_graphs_follow_gui_rules_and_validate(path: Path, tmp_path: Path) -> None:
    defn = WorkflowDefinition.from_file(path)
    wf = WorkflowRepository().create_workflow(defn)
    if uses_retired_type(path):
        with pytest.raises(UnknownNodeTypeError) as info:
            wf.build_payload()
        assert info.value.node_type == "canny_image_processor"
        assert info.value.node_id is not None and info.value.node_id in str(info.value)
        assert "canny_image_processor" in str(info.value)
        assert "Open the workflow in the InvokeAI GUI" in str(info.value)
        return
    payload = wf.build_payload()
    check_gui_rules(defn, payload)
    if defn.name == "Text to Image - SD1.5, Prompt from File":
        prompts = tmp_path / "prompts.txt"
        prompts.write_text("a cat\na dog\n", encoding="utf-8")
        wf.set("Prompts File Path", str(prompts))
        payload = wf.build_payload()
    graph_validate, batch_validate = invokeai_models()
    graph = fill_unset_models(payload["batch"]["graph"], SCHEMA)
    graph_validate(graph)
    batch_validate({**payload["batch"], "graph": graph})


def test_payload_envelope() -> None:
    wf = handle_for(blur_workflow())
    p = wf.build_payload()
    assert set(p) == {"prepend", "batch"} and p["prepend"] is False
    b = p["batch"]
    assert uuid.UUID(b["batch_id"]).version == 4
    assert b["origin"] == "invokeai_py_client" and b["destination"] is None
    assert b["runs"] == 1 and "data" not in b
    p2 = wf.build_payload(batch_id="my-batch", runs=3, prepend=True, origin="o", destination="d")
    assert p2["prepend"] is True
    assert (p2["batch"]["batch_id"], p2["batch"]["runs"]) == ("my-batch", 3)
    assert (p2["batch"]["origin"], p2["batch"]["destination"]) == ("o", "d")
    assert wf.build_payload()["batch"]["batch_id"] != b["batch_id"]
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="runs must be a positive integer"):
            wf.build_payload(runs=bad)  # type: ignore[arg-type]


def test_values_and_board_policy() -> None:
    wf = handle_for(blur_workflow())
    nodes = wf.build_payload()["batch"]["graph"]["nodes"]
    assert "board" not in nodes["save"]  # "auto" left out
    assert "image" not in nodes["blur"]  # connected input left out
    assert nodes["canvas"]["width"] == 64
    wf.set("Width", 96)
    wf.set("Board", "b-123")
    nodes = wf.build_payload()["batch"]["graph"]["nodes"]
    assert nodes["canvas"]["width"] == 96
    assert nodes["save"]["board"] == {"board_id": "b-123"}
    assert nodes["save"]["is_intermediate"] is False and nodes["save"]["use_cache"] is False
    wf.set("Board", "none")
    assert "board" not in wf.build_payload()["batch"]["graph"]["nodes"]["save"]


def test_embedded_workflow_carries_current_values_and_raw_is_untouched() -> None:
    data = blur_workflow()
    wf = handle_for(data)
    wf.set("Width", 100)
    wf.set("Board", {"board_id": "b1"})
    emb = wf.build_payload()["batch"]["workflow"]
    by_id = {n["id"]: n for n in emb["nodes"]}
    assert by_id["canvas"]["data"]["inputs"]["width"]["value"] == 100
    assert by_id["save"]["data"]["inputs"]["board"]["value"] == {"board_id": "b1"}
    wf.set("Board", "none")
    emb = wf.build_payload()["batch"]["workflow"]
    assert {n["id"]: n for n in emb["nodes"]}["save"]["data"]["inputs"]["board"]["value"] == "none"
    assert wf.definition.to_dict() == data
    assert emb["form"] == data["form"] and emb["meta"] == data["meta"]
    no_wf = build_enqueue_payload(wf.definition, embed_workflow=False)
    assert "workflow" not in no_wf["batch"]


def test_unset_value_is_left_out_and_written_unset_in_the_workflow() -> None:
    wf = handle_for(blur_workflow())
    wf.get_input_value("Width").value = None
    p = wf.build_payload()
    assert "width" not in p["batch"]["graph"]["nodes"]["canvas"]
    canvas = next(n for n in p["batch"]["workflow"]["nodes"] if n["id"] == "canvas")
    assert "value" not in canvas["data"]["inputs"]["width"]


def test_notes_collapsed_and_duplicate_edges() -> None:
    data = blur_workflow()
    data["nodes"].append({"id": "note", "type": "notes", "data": {"notes": "hello"}})
    data["edges"].append(edge("canvas", "image", "blur", "image"))  # duplicate
    data["edges"].append(edge("canvas", "width", "save", "image", kind="collapsed"))
    g = build_graph(WorkflowDefinition.from_dict(data))
    assert set(g["nodes"]) == {"canvas", "blur", "save"}
    assert len(g["edges"]) == 2


def test_connectors_are_resolved_to_their_real_source() -> None:
    nodes = [
        inv_node("canvas", "blank_image", {"width": 8, "height": 8}),
        {"id": "c1", "type": "connector", "data": {}},
        {"id": "c2", "type": "connector", "data": {}},
        {"id": "dangling", "type": "connector", "data": {}},
        inv_node("blur", "img_blur", {"image": unset(), "radius": 1.0}),
        inv_node("save", "save_image", {"image": unset()}),
        inv_node("save2", "save_image", {"image": unset(), "metadata": unset()}),
    ]
    edges = [
        edge("canvas", "image", "c1", "in"),
        edge("c1", "out", "c2", "in"),
        edge("c2", "out", "blur", "image"),
        edge("c1", "out", "save", "image"),
        edge("dangling", "out", "save2", "metadata"),
        edge("blur", "image", "save2", "image"),
    ]
    g = build_graph(WorkflowDefinition.from_dict(workflow(nodes, edges)))
    assert set(g["nodes"]) == {"canvas", "blur", "save", "save2"}
    pairs = {
        (
            e["source"]["node_id"],
            e["source"]["field"],
            e["destination"]["node_id"],
            e["destination"]["field"],
        )
        for e in g["edges"]
    }
    assert pairs == {
        ("canvas", "image", "blur", "image"),
        ("canvas", "image", "save", "image"),
        ("blur", "image", "save2", "image"),
    }
    assert set(g["nodes"]["save2"]) == {"id", "type", "is_intermediate", "use_cache"}


def _batch_wf(batches: list[tuple[str, str, list[Any], str]]) -> dict[str, Any]:
    """blank_image fed by batch nodes: (node id, target field, items, group)."""
    nodes = [
        inv_node("canvas", "blank_image", {"width": 8, "height": 8}),
        inv_node("save", "save_image", {"image": unset()}),
    ]
    edges = [edge("canvas", "image", "save", "image")]
    for bid, target, items, group in batches:
        nodes.append(inv_node(bid, "integer_batch", {"integers": items, "batch_group_id": group}))
        edges.append(edge(bid, "integers", "canvas", target))
    return workflow(nodes, edges)


def test_ungrouped_batch_nodes_multiply() -> None:
    data = _batch_wf([("w", "width", [8, 16], "None"), ("h", "height", [4, 5, 6], "None")])
    p = build_enqueue_payload(WorkflowDefinition.from_dict(data))
    assert p["batch"]["data"] == [
        [{"node_path": "canvas", "field_name": "width", "items": [8, 16]}],
        [{"node_path": "canvas", "field_name": "height", "items": [4, 5, 6]}],
    ]
    assert set(p["batch"]["graph"]["nodes"]) == {"canvas", "save"}
    nodes = p["batch"]["graph"]["nodes"]
    assert "width" not in nodes["canvas"] and "height" not in nodes["canvas"]
    _, batch_validate = invokeai_models()
    batch_validate(p["batch"])


def test_grouped_batch_nodes_zip_and_must_match() -> None:
    data = _batch_wf([("w", "width", [8, 16], "Group 1"), ("h", "height", [4, 5], "Group 1")])
    p = build_enqueue_payload(WorkflowDefinition.from_dict(data))
    assert len(p["batch"]["data"]) == 1
    assert [d["field_name"] for d in p["batch"]["data"][0]] == ["width", "height"]
    bad = _batch_wf([("w", "width", [8, 16], "Group 1"), ("h", "height", [4], "Group 1")])
    with pytest.raises(WorkflowDefinitionError, match="same number of items"):
        build_enqueue_payload(WorkflowDefinition.from_dict(bad))


def test_batch_group_that_is_not_a_name_is_a_definition_error() -> None:
    data = _batch_wf([("w", "width", [8, 16], "None")])
    data["nodes"][2]["data"]["inputs"]["batch_group_id"]["value"] = [0]  # found by hypothesis
    with pytest.raises(WorkflowDefinitionError, match="batch group of type list") as info:
        build_enqueue_payload(WorkflowDefinition.from_dict(data))
    assert info.value.json_path == "$.nodes[2].data.inputs.batch_group_id.value"


def test_batch_node_without_items() -> None:
    data = _batch_wf([("w", "width", [], "None")])
    with pytest.raises(WorkflowDefinitionError, match="'w' \\(integer_batch\\) has no items"):
        build_enqueue_payload(WorkflowDefinition.from_dict(data))


def test_batch_items_from_the_form_and_extra_data_appended() -> None:
    data = _batch_wf([("w", "width", [8], "None")])
    data["form"] = form_of([("w", "integers")])
    wf = handle_for(data)
    wf.set(0, [10, 20, 30])
    extra = [[{"node_path": "canvas", "field_name": "height", "items": [1, 2]}]]
    p = wf.build_payload(data=extra)
    assert p["batch"]["data"] == [
        [{"node_path": "canvas", "field_name": "width", "items": [10, 20, 30]}],
        extra[0],
    ]
    assert p["batch"]["data"][1] is not extra[0]


def test_image_batch_feeding_two_targets() -> None:
    nodes = [
        inv_node(
            "ib", "image_batch", {"images": [{"image_name": "a.png"}, {"image_name": "b.png"}]}
        ),
        inv_node("blur", "img_blur", {"image": unset(), "radius": 1.0}),
        inv_node("save", "save_image", {"image": unset()}),
    ]
    edges = [edge("ib", "image", "blur", "image"), edge("ib", "image", "save", "image")]
    p = build_enqueue_payload(WorkflowDefinition.from_dict(workflow(nodes, edges)))
    (group,) = p["batch"]["data"]
    assert [(d["node_path"], d["field_name"]) for d in group] == [
        ("blur", "image"),
        ("save", "image"),
    ]
    assert group[0]["items"] == [{"image_name": "a.png"}, {"image_name": "b.png"}]
    assert p["batch"]["graph"]["edges"] == []


def test_generator_feeding_a_batch_node() -> None:
    gen = {"type": "integer_generator_arithmetic_sequence", "start": 8, "step": 4, "count": 3}
    nodes = [
        inv_node("gen", "integer_generator", {"generator": gen}),
        inv_node("b", "integer_batch", {"integers": unset()}),
        inv_node("canvas", "blank_image", {"width": 8, "height": 8}),
    ]
    edges = [edge("gen", "integers", "b", "integers"), edge("b", "integers", "canvas", "width")]
    p = build_enqueue_payload(WorkflowDefinition.from_dict(workflow(nodes, edges)))
    assert p["batch"]["data"] == [
        [{"node_path": "canvas", "field_name": "width", "items": [8, 12, 16]}]
    ]
    assert set(p["batch"]["graph"]["nodes"]) == {"canvas"}


@pytest.mark.parametrize(
    ("node_type", "value", "expected"),
    [
        (
            "float_generator",
            {"type": "float_generator_linear_distribution", "start": 0, "end": 1, "count": 3},
            [0.0, 0.5, 1.0],
        ),
        (
            "float_generator",
            {"type": "float_generator_parse_string", "input": "1, 2.5", "splitOn": ","},
            [1.0, 2.5],
        ),
        (
            "string_generator",
            {"type": "string_generator_parse_string", "input": "a|b|", "splitOn": "|"},
            ["a", "b"],
        ),
        ("integer_generator", {"type": "integer_generator_random", "values": [3, 1]}, [3, 1]),
        (
            "integer_generator",
            {"type": "integer_generator_linear_distribution", "start": 0, "end": 10, "count": 1},
            [0],
        ),
    ],
)
def test_generator_items(node_type: str, value: dict[str, Any], expected: list[Any]) -> None:
    defn = WorkflowDefinition.from_dict(workflow([inv_node("g", node_type, {"generator": value})]))
    assert generator_items(defn.nodes["g"], value) == expected


def test_generator_errors() -> None:
    defn = WorkflowDefinition.from_dict(workflow([inv_node("g", "float_generator")]))
    node = defn.nodes["g"]
    with pytest.raises(WorkflowDefinitionError, match="cannot compute"):
        generator_items(node, {"type": "float_generator_uniform_random_distribution"})
    with pytest.raises(WorkflowDefinitionError, match="bad settings"):
        generator_items(node, {"type": "float_generator_arithmetic_sequence", "start": 1})
    with pytest.raises(WorkflowDefinitionError, match="no generator settings"):
        generator_items(node, None)


def test_unknown_node_type_names_node_and_fix() -> None:
    data = blur_workflow()
    data["nodes"][1]["data"]["type"] = "canny_image_processor"
    defn = WorkflowDefinition.from_dict(data)
    with pytest.raises(UnknownNodeTypeError) as info:
        build_enqueue_payload(defn, schema=SCHEMA)
    assert (info.value.node_id, info.value.node_type) == ("blur", "canny_image_processor")
    assert "InvokeAI 6.14.2" in str(info.value)
    # without a schema the builder does not judge node types
    assert "blur" in build_enqueue_payload(defn)["batch"]["graph"]["nodes"]


def test_live_openapi_schema_is_parsed_the_same_way() -> None:
    openapi = {
        "info": {"version": "9.9.9"},
        "components": {
            "schemas": {
                "ImageField": {"type": "object"},
                "Thing": {
                    "class": "invocation",
                    "title": "Thing",
                    "version": "1.0.0",
                    "output": {"$ref": "#/components/schemas/ImageOutput"},
                    "properties": {
                        "type": {"const": "thing", "default": "thing"},
                        "id": {"type": "string", "field_kind": "node_attribute"},
                        "size": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 8,
                            "field_kind": "input",
                            "input": "any",
                            "orig_required": True,
                            "title": "Size",
                        },
                        "board": {
                            "anyOf": [
                                {"$ref": "#/components/schemas/BoardField"},
                                {"type": "null"},
                            ],
                            "field_kind": "internal",
                        },
                    },
                },
                "NotANode": {"type": "object"},
            }
        },
    }
    idx = NodeSchemaIndex.from_openapi(openapi)
    assert list(idx) == ["thing"] and idx.version == "9.9.9"
    size = idx["thing"].inputs["size"]
    assert (size.kind, size.ge, size.le, size.required) == ("integer", 1, 8, True)
    assert idx["thing"].has_board and idx.board_node_types() == {"thing"}
    assert idx["thing"].output == "ImageOutput"
    roundtrip = NodeSchemaIndex.from_compact(idx.to_compact())
    assert roundtrip["thing"] == idx["thing"]
    assert len(NodeSchemaIndex.from_openapi({})) == 0


def test_snapshot_covers_the_node_types_the_server_runs() -> None:
    for t in (
        "blank_image",
        "img_blur",
        "save_image",
        "integer",
        "float",
        "string",
        "integer_batch",
        "image_batch",
        "float_generator",
        "denoise_latents",
    ):
        assert t in SCHEMA
    assert SCHEMA["save_image"].has_board and not SCHEMA["integer"].has_board
    assert SCHEMA.version == "6.14.2"


def test_output_nodes() -> None:
    data = blur_workflow()
    data["nodes"].append(
        inv_node("save2", "save_image", {"image": unset(), "board": {"board_id": "b9"}})
    )
    data["edges"].append(edge("blur", "image", "save2", "image"))
    wf = handle_for(data)
    outs = {o.node_id: o for o in wf.output_nodes()}
    # blank_image and img_blur have a board input too: every board-capable node is listed
    assert set(outs) == {"canvas", "blur", "save", "save2"}
    assert (outs["save"].board, outs["save"].input_index, outs["save"].board_id) == (
        "auto",
        2,
        None,
    )
    assert (outs["save2"].board, outs["save2"].input_index, outs["save2"].board_id) == (
        "b9",
        None,
        "b9",
    )
    wf.set("Board", "b1")
    assert {o.node_id: o for o in wf.output_nodes()}["save"].board_id == "b1"
    assert outs["save"].label == "Save Image"


def test_payload_does_not_alias_the_definition() -> None:
    data = blur_workflow()
    defn = WorkflowDefinition.from_dict(data)
    p = build_enqueue_payload(defn)
    p["batch"]["graph"]["nodes"]["canvas"]["color"]["r"] = 200
    p["batch"]["graph"]["edges"][0]["source"]["node_id"] = "x"
    assert defn.to_dict() == data
    assert build_enqueue_payload(defn)["batch"]["graph"]["nodes"]["canvas"]["color"]["r"] == 0


def test_plan_is_cached_per_schema() -> None:
    defn = WorkflowDefinition.from_dict(blur_workflow())
    g1 = build_graph(defn, schema=SCHEMA)
    g2 = build_graph(defn, schema=SCHEMA)
    assert g1 == g2 and g1 is not g2
    assert copy.deepcopy(g1) == build_graph(defn)


@pytest.mark.slow
def test_offline_snapshot_matches_the_installed_invokeai() -> None:
    """The packaged snapshot is what the live parser makes of InvokeAI 6.14.2's openapi."""
    import subprocess
    import sys

    invokeai_models()  # skips when invokeai is not installed
    script = Path(__file__).resolve().parents[1] / "scripts" / "gen_schema_snapshot.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "matches invokeai 6.14.2" in done.stdout
