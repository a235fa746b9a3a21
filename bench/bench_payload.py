"""CPU time to build one ``enqueue_batch`` payload for a 40-node workflow.

    .venv/bin/python bench/bench_payload.py [N]

Builds a 40-node workflow (image chain, primitives, a batch node, a Form of 12 inputs) and
calls ``WorkflowHandle.build_payload()`` N times (default 5000), changing two inputs before
each build, as a sweep would. Prints the CPU time per build; the target is well under 1 ms.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from invokeai_py_client.workflow import WorkflowDefinition, WorkflowRepository


def _input(name: str, value: Any = None, *, has_value: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "label": "", "description": ""}
    if has_value:
        out["value"] = value
    return out


def _node(node_id: str, node_type: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "invocation",
        "position": {"x": 0, "y": 0},
        "data": {
            "id": node_id,
            "type": node_type,
            "version": "1.0.0",
            "nodePack": "invokeai",
            "label": "",
            "notes": "",
            "isOpen": True,
            "isIntermediate": True,
            "useCache": True,
            "inputs": {k: _input(k, v, has_value=v is not None) for k, v in inputs.items()},
        },
    }


def forty_node_workflow() -> dict[str, Any]:
    """blank_image -> 18 x (img_blur) -> save_image, plus 19 primitives and a batch node."""
    nodes = [
        _node(
            "canvas",
            "blank_image",
            {"width": 64, "height": 64, "mode": "RGB", "color": {"r": 1, "g": 2, "b": 3, "a": 255}},
        )
    ]
    edges = []
    prev = "canvas"
    for i in range(18):
        nid = f"blur{i}"
        nodes.append(
            _node(nid, "img_blur", {"image": None, "radius": 1.0 + i, "blur_type": "gaussian"})
        )
        edges.append(_edge(prev, "image", nid, "image"))
        prev = nid
    nodes.append(_node("save", "save_image", {"image": None, "board": "auto"}))
    edges.append(_edge(prev, "image", "save", "image"))
    for i in range(19):
        nodes.append(_node(f"int{i}", "integer", {"value": i}))
    nodes.append(
        _node("widths", "integer_batch", {"integers": [32, 48, 64], "batch_group_id": "None"})
    )
    edges.append(_edge("widths", "integers", "canvas", "width"))
    fields = [("canvas", "height"), ("save", "board")]
    fields += [(f"blur{i}", "radius") for i in range(0, 18, 3)]
    fields += [(f"int{i}", "value") for i in range(4)]
    elements: dict[str, Any] = {
        "root": {"id": "root", "type": "container", "data": {"layout": "column", "children": []}}
    }
    for i, (nid, fname) in enumerate(fields):
        elements["root"]["data"]["children"].append(f"f{i}")
        elements[f"f{i}"] = {
            "id": f"f{i}",
            "type": "node-field",
            "parentId": "root",
            "data": {"fieldIdentifier": {"nodeId": nid, "fieldName": fname}},
        }
    return {
        "name": "bench-40",
        "author": "",
        "description": "",
        "version": "",
        "contact": "",
        "tags": "",
        "notes": "",
        "exposedFields": [],
        "meta": {"category": "user", "version": "3.0.0"},
        "nodes": nodes,
        "edges": edges,
        "form": {"elements": elements, "rootElementId": "root"},
    }


def _edge(src: str, sh: str, dst: str, th: str) -> dict[str, Any]:
    return {
        "id": f"{src}-{dst}",
        "type": "default",
        "source": src,
        "sourceHandle": sh,
        "target": dst,
        "targetHandle": th,
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    data = forty_node_workflow()
    assert len(data["nodes"]) == 40
    wf = WorkflowRepository().create_workflow(WorkflowDefinition.from_dict(data))
    height, radius = wf.input(("canvas", "height")).field, wf.input(("blur0", "radius")).field

    t0 = time.process_time()
    first = wf.build_payload()  # includes compiling the graph plan once
    t_first = time.process_time() - t0
    assert len(first["batch"]["graph"]["nodes"]) == 39  # the batch node becomes data

    t0 = time.process_time()
    for i in range(n):
        height.set_value(64 + (i % 8))
        radius.set_value(float(i % 5))
        wf.build_payload()
    per_build = (time.process_time() - t0) / n
    size = len(json.dumps(first))
    print(f"40-node workflow, {len(wf.list_inputs())} form inputs, payload {size} bytes")
    print(f"first build (compiles the plan): {t_first * 1e3:.3f} ms CPU")
    print(
        f"build_payload: {per_build * 1e6:.1f} us CPU per build over {n} builds (target < 1000 us)"
    )


if __name__ == "__main__":
    main()
