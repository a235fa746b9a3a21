"""Shared helpers for the workflow tests (paths to the corpora, offline graph validation)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
SEED_WORKFLOWS = SHARED / "fixtures" / "seed-workflows"
EXAMPLES = REPO / "examples" / "workflows"


def shipped_dir() -> Path | None:
    """InvokeAI's default workflows inside the installed package, if invokeai is installed."""
    try:
        import invokeai
    except ImportError:
        return None
    for base in invokeai.__path__:  # a namespace package: no __file__
        d = Path(base) / "app/services/workflow_records/default_workflows"
        if d.is_dir():
            return d
    return None


def shipped_files() -> list[Path]:
    d = shipped_dir()
    return sorted(d.glob("*.json")) if d else []


def seed_files() -> list[Path]:
    return sorted(SEED_WORKFLOWS.glob("*.json")) if SEED_WORKFLOWS.is_dir() else []


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json")) if EXAMPLES.is_dir() else []


def all_corpus_files() -> list[Path]:
    return shipped_files() + seed_files() + example_files()


def corpus_params() -> list[Any]:
    files = all_corpus_files()
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no workflow corpus"))]
    return [pytest.param(p, id=p.name) for p in files]


# Node types InvokeAI 6.14.2 no longer has; the shipped workflows using them must fail clearly.
RETIRED_TYPES = frozenset({"canny_image_processor"})


def uses_retired_type(path: Path) -> bool:
    data = json.loads(path.read_text(encoding="utf-8"))
    return any(n.get("data", {}).get("type") in RETIRED_TYPES for n in data["nodes"])


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# ---------------------------------------------------------------------- minimal workflows


def inv_node(
    node_id: str,
    node_type: str,
    inputs: dict[str, Any] | None = None,
    *,
    label: str = "",
    is_intermediate: bool = True,
    use_cache: bool = True,
) -> dict[str, Any]:
    """An invocation node as the GUI exports it; ``inputs`` maps name -> value (or a dict
    with ``value``/``label`` keys when it is a dict holding ``__input__``)."""
    ins: dict[str, Any] = {}
    for name, v in (inputs or {}).items():
        if isinstance(v, dict) and v.get("__input__"):
            spec = {k: x for k, x in v.items() if k != "__input__"}
            ins[name] = {"name": name, "label": spec.pop("label", ""), "description": "", **spec}
        else:
            ins[name] = {"name": name, "label": "", "description": "", "value": v}
    return {
        "id": node_id,
        "type": "invocation",
        "position": {"x": 0, "y": 0},
        "data": {
            "id": node_id,
            "type": node_type,
            "version": "1.0.0",
            "nodePack": "invokeai",
            "label": label,
            "notes": "",
            "isOpen": True,
            "isIntermediate": is_intermediate,
            "useCache": use_cache,
            "inputs": ins,
        },
    }


def unset(label: str = "") -> dict[str, Any]:
    """An input with no value (optionally with a label)."""
    return {"__input__": True, "label": label}


def labelled(value: Any, label: str) -> dict[str, Any]:
    return {"__input__": True, "label": label, "value": value}


def edge(src: str, sh: str, dst: str, th: str, *, kind: str = "default") -> dict[str, Any]:
    return {
        "id": f"{src}.{sh}->{dst}.{th}",
        "type": kind,
        "source": src,
        "sourceHandle": sh,
        "target": dst,
        "targetHandle": th,
    }


def form_of(fields: list[tuple[str, str]], *, root: str = "root") -> dict[str, Any]:
    """A one-column form with these (node_id, field_name) fields."""
    elements: dict[str, Any] = {
        root: {"id": root, "type": "container", "data": {"layout": "column", "children": []}}
    }
    for i, (nid, fname) in enumerate(fields):
        el_id = f"node-field-{i}"
        elements[root]["data"]["children"].append(el_id)
        elements[el_id] = {
            "id": el_id,
            "type": "node-field",
            "parentId": root,
            "data": {"fieldIdentifier": {"nodeId": nid, "fieldName": fname}},
        }
    return {"elements": elements, "rootElementId": root}


def workflow(
    nodes: list[dict[str, Any]],
    edges: list[dict[str, Any]] | None = None,
    form: dict[str, Any] | None = None,
    *,
    version: str = "3.0.0",
    exposed: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "name": "test",
        "author": "",
        "description": "",
        "version": "",
        "contact": "",
        "tags": "",
        "notes": "",
        "exposedFields": [{"nodeId": n, "fieldName": f} for n, f in (exposed or [])],
        "meta": {"category": "user", "version": version},
        "nodes": nodes,
        "edges": edges or [],
        "form": form if form is not None else {"elements": {}, "rootElementId": "root"},
    }


def blur_workflow() -> dict[str, Any]:
    """blank_image -> img_blur -> save_image, with a form of width, radius, board."""
    nodes = [
        inv_node(
            "canvas",
            "blank_image",
            {"width": 64, "height": 64, "color": {"r": 0, "g": 0, "b": 0, "a": 255}},
        ),
        inv_node("blur", "img_blur", {"image": unset(), "radius": 4.0, "blur_type": "gaussian"}),
        inv_node(
            "save",
            "save_image",
            {"image": unset(), "board": "auto"},
            is_intermediate=False,
            use_cache=False,
        ),
    ]
    edges = [edge("canvas", "image", "blur", "image"), edge("blur", "image", "save", "image")]
    form = form_of([("canvas", "width"), ("blur", "radius"), ("save", "board")])
    return workflow(nodes, edges, form)


# ---------------------------------------------------------------------- InvokeAI's models


def _declare_torchvision_ops() -> None:
    # PyPI's torchvision beside CPU torch lacks these op schemas; InvokeAI imports them.
    import torch

    try:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        globals()["_TORCHVISION_LIB"] = lib
    except RuntimeError:
        pass  # already declared by an earlier import


@lru_cache(maxsize=1)
def invokeai_models() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(Graph.model_validate, Batch.model_validate) from the installed invokeai, or skip."""
    try:
        import invokeai  # noqa: F401
    except ImportError:
        pytest.skip("invokeai is not installed")
    _declare_torchvision_ops()
    from invokeai.app.services.session_queue.session_queue_common import Batch
    from invokeai.app.services.shared.graph import Graph

    return Graph.model_validate, Batch.model_validate


def fill_unset_models(graph: dict[str, Any], schema: Any) -> dict[str, Any]:
    """A copy of ``graph`` where every required, unset, unconnected model input gets a
    well-formed identifier (as ``sync_dnn_model`` would give it on a real server)."""
    g = copy.deepcopy(graph)
    connected = {(e["destination"]["node_id"], e["destination"]["field"]) for e in g["edges"]}
    for nid, node in g["nodes"].items():
        ns = schema.get(node["type"])
        if ns is None:
            continue
        for name, s in ns.inputs.items():
            if s.kind != "model" or name in node or (nid, name) in connected or not s.required:
                continue
            node[name] = {
                "key": f"key-{nid}-{name}",
                "hash": "blake3:0",
                "name": "stand-in",
                "base": (s.model_base or ("any",))[0],
                "type": (s.model_type or ("main",))[0],
            }
    return g
