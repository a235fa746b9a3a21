"""Sweeps expand into InvokeAI's own batch.data (pure: no server).

The expansion is checked against InvokeAI's own code: ``Batch`` validates the payload,
``calc_session_count`` gives the same count, and ``create_session_nfv_tuples`` (what the server
runs to make the queue items) yields, item by item, the values our plan says each run has.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invokeai_py_client.exceptions import SweepError
from invokeai_py_client.sweep import LocalImage, Sweep, SweepPlan, params_from_field_values
from invokeai_py_client.workflow import WorkflowDefinition, WorkflowHandle

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"


def handle(name: str = "blur.json") -> WorkflowHandle:
    return WorkflowHandle(WorkflowDefinition.from_file(EXAMPLES / name))


@pytest.fixture(scope="module")
def blur() -> WorkflowHandle:
    return handle()


def server_expansion(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The field_values InvokeAI would record for each item, in creation order."""
    from _workflow_helpers import invokeai_models

    invokeai_models()  # skips without invokeai; declares the torchvision ops it imports
    from invokeai.app.services.session_queue.session_queue_common import (
        Batch,
        calc_session_count,
        create_session_nfv_tuples,
    )

    batch = Batch.model_validate(body["batch"])
    out = [json.loads(fv) for _, _, fv in create_session_nfv_tuples(batch, 10**9)]
    assert calc_session_count(batch) == len(out)
    return out


def test_3x4_is_one_payload_with_two_multiplying_groups(blur: WorkflowHandle) -> None:
    plan = Sweep().axis("Width", [32, 48, 64]).axis("Blur Radius", [1, 2, 3, 4]).plan(blur)
    assert plan.count == 12
    body = plan.payload(batch_id="b1", destination="d1")
    data = body["batch"]["data"]
    assert [[d["field_name"] for d in group] for group in data] == [["width"], ["radius"]]
    assert data[0][0]["items"] == [32, 48, 64]
    assert data[1][0]["items"] == [1.0, 2.0, 3.0, 4.0]  # coerced by the float field
    assert body["batch"]["batch_id"] == "b1" and body["batch"]["destination"] == "d1"
    assert body["batch"]["runs"] == 1
    assert set(body) == {"prepend", "batch"}
    expanded = server_expansion(body)
    assert [plan.key_of(fv) for fv in expanded] == [plan.run_key(r) for r in range(12)]
    assert plan.run_params(7) == ({"Width": 48, "Blur Radius": 4.0}, {"0": 48, "3": 4.0})


def test_zip_moves_together_and_runs_repeat(blur: WorkflowHandle) -> None:
    sweep = Sweep(runs=2).zip({"Width": [32, 64], "Height": [16, 24]}).axis(3, [1, 2, 3])
    plan = sweep.plan(blur)
    assert plan.count == 2 * 2 * 3
    body = plan.payload()
    assert len(body["batch"]["data"][0]) == 2  # zipped: one inner list
    expanded = server_expansion(body)
    for r, fv in enumerate(expanded):
        assert plan.key_of(fv) == plan.run_key(r)
        by_label, _ = plan.params_for(fv)
        assert (by_label["Width"], by_label["Height"]) in {(32, 16), (64, 24)}


def test_zip_lengths_must_match() -> None:
    with pytest.raises(SweepError, match="same number of values"):
        Sweep().zip({"Width": [32, 64], "Height": [16]})


@pytest.mark.parametrize(
    ("key", "values", "match"),
    [
        ("Nope", [1], "Nope"),
        ("Width", ["wide"], "Width"),
        ("Blur Radius", [-1], "Blur Radius"),
        ("Colour", [{"r": 1, "g": 2, "b": 3, "a": 255}], "cannot be swept"),
        (99, [1], "99"),
    ],
)
def test_bad_axis_is_a_sweep_error_naming_the_input(
    blur: WorkflowHandle, key: Any, values: list[Any], match: str
) -> None:
    with pytest.raises(SweepError, match=match):
        Sweep().axis(key, values).plan(blur)


def test_empty_and_duplicate_axes_are_refused(blur: WorkflowHandle) -> None:
    with pytest.raises(SweepError, match="no values"):
        Sweep().axis("Width", [])
    with pytest.raises(SweepError, match="swept twice"):
        Sweep().axis("Width", [1]).axis(0, [2]).plan(blur)
    with pytest.raises(SweepError, match="runs"):
        Sweep(runs=0)


def test_node_field_keys(blur: WorkflowHandle) -> None:
    width = blur.input("Width")
    p1 = Sweep().axis(f"{width.node_id}.width", [8, 16]).plan(blur)
    p2 = Sweep().axis((width.node_id, "width"), [8, 16]).plan(blur)
    assert p1.payload() == p2.payload()


def test_gui_batch_node_combines_with_sweep() -> None:
    wf = handle("batch_width.json")
    plan = Sweep().axis("Height", [16, 32]).plan(wf)
    assert plan.count == 3 * 2
    body = plan.payload()
    assert len(body["batch"]["data"]) == 2
    expanded = server_expansion(body)
    assert sorted((fv[0]["value"], fv[1]["value"]) for fv in expanded) == sorted(
        (w, h) for w in (32, 48, 64) for h in (16, 32)
    )
    assert [plan.key_of(fv) for fv in expanded] == [plan.run_key(r) for r in range(6)]
    # the GUI batch axis is named by the batch node's Form input
    assert [(a.name, a.index, a.source) for a in plan.axes] == [
        ("Integers", 0, "workflow"),
        ("Height", 1, "sweep"),
    ]
    # the batch node's own input cannot be swept: it is not a graph node
    with pytest.raises(SweepError, match="not on a node the server runs"):
        Sweep().axis(0, [1]).plan(wf)


def test_prompts_file_seeds_and_images(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n\n  a dog  \nа птица\n", encoding="utf-8")
    s = Sweep().prompts("Prompt", prompts)
    assert s.groups[0][0][1] == ["a cat", "a dog", "а птица"]
    assert Sweep().seeds("Seed", start=3, stop=6).groups[0][0][1] == [3, 4, 5]
    seeds = Sweep().seeds("Seed", n=5, rng_seed=1).groups[0][0][1]
    assert len(seeds) == 5 and all(0 <= v < 2**32 for v in seeds)
    with pytest.raises(SweepError):
        Sweep().seeds("Seed", n=2, stop=3)
    with pytest.raises(SweepError, match="does not exist"):
        Sweep().prompts("Prompt", str(tmp_path / "missing.txt"))
    a = tmp_path / "a.png"
    b = tmp_path / "b.png"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    imgs = Sweep().images("Source Image", [a, b])
    assert len(imgs.local_images()) == 1  # deduplicated by content hash


def test_image_axis_placeholders_then_uploads(tmp_path: Path) -> None:
    wf = handle("img2img.json")
    a = tmp_path / "a.png"
    b = tmp_path / "b.png"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    plan = Sweep().images("Source Image", [a, b]).plan(wf)
    assert len(plan.pending_images()) == 2
    items = plan.payload()["batch"]["data"][0][0]["items"]
    assert all(i["image_name"].startswith("<upload:") for i in items)
    names = {img.sha256: f"server-{i}.png" for i, img in enumerate(plan.pending_images())}
    final = plan.with_uploads(names)
    assert not final.pending_images()
    items = final.payload()["batch"]["data"][0][0]["items"]
    assert items == [{"image_name": "server-0.png"}, {"image_name": "server-1.png"}]
    fv = [{"node_path": final.axes[0].node_id, "field_name": "image", "value": items[1]}]
    assert final.params_for(fv)[0] == {"Source Image": "b.png"}


def test_plan_round_trips_through_json(blur: WorkflowHandle, tmp_path: Path) -> None:
    f = tmp_path / "x.png"
    f.write_bytes(b"x")
    plan = Sweep(runs=2).axis("Width", [8, 16]).axis("Blur Radius", [0.5]).plan(blur)
    again = SweepPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.payload(batch_id="x") == plan.payload(batch_id="x")
    assert [again.run_key(r) for r in range(again.count)] == [
        plan.run_key(r) for r in range(plan.count)
    ]
    assert LocalImage.from_path(f).sha256 == LocalImage.from_path(f).sha256


def test_params_from_field_values_ignores_other_fields(blur: WorkflowHandle) -> None:
    plan = Sweep().axis("Blur Radius", [4]).plan(blur)
    fv = [
        {"node_path": plan.axes[0].node_id, "field_name": "radius", "value": 4.0},
        {"node_path": "other", "field_name": "x", "value": 1},
    ]
    assert params_from_field_values(fv, plan.axes) == ({"Blur Radius": 4.0}, {"3": 4.0})


axis_sizes = st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=2), max_size=3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups=axis_sizes, runs=st.integers(1, 3), data=st.data())
def test_count_is_the_product_and_chunks_cover_the_plan(
    groups: list[list[int]], runs: int, data: st.DataObject
) -> None:
    wf = handle()
    keys = iter(["Width", "Height", "Blur Radius"])
    sweep = Sweep(runs=runs)
    for group in groups:
        size = group[0]
        pairs = []
        for _ in group:
            key = next(keys, None)
            if key is None:
                break
            pairs.append((key, [i + 1 for i in range(size)]))
        if pairs:
            sweep.zip(None, *pairs)
    plan = sweep.plan(wf)
    sizes = [len(g[0][1]) for g in sweep.groups]
    assert plan.count == runs * math.prod(sizes) == sweep.count
    expanded = server_expansion(plan.payload())
    assert len(expanded) == plan.count
    assert [plan.key_of(fv) for fv in expanded] == [plan.run_key(r) for r in range(plan.count)]
    lo = data.draw(st.integers(0, plan.count - 1))
    hi = data.draw(st.integers(lo + 1, plan.count))
    chunk = server_expansion(plan.chunk_payload(lo, hi))
    assert [plan.key_of(fv) for fv in chunk] == [plan.run_key(r) for r in range(lo, hi)]
