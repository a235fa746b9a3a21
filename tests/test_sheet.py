"""Contact sheets from a run directory (pure Pillow, no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from invokeai_py_client.exceptions import RunError
from invokeai_py_client.sheet import format_value, load_axes, make_contact_sheets

COLOURS = [(200, 30, 30), (30, 60, 220)]
RADII = [0, 2, 6]


def _make_run(
    out: Path,
    axes: list[tuple[str, int, list[Any]]],
    *,
    groups: list[int] | None = None,
    repeat: int = 1,
    failed: set[int] = frozenset(),  # type: ignore[assignment]
) -> list[dict[str, Any]]:
    """A run directory like BatchRun writes: images/, manifest.jsonl, run.json."""
    (out / "images").mkdir(parents=True)
    groups = groups or list(range(len(axes)))
    # cartesian product over groups (zipped axes share a group), first group slowest
    by_group: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    combos: list[dict[int, int]] = [{}]
    for _g, members in sorted(by_group.items()):
        n = len(axes[members[0]][2])
        combos = [{**c, **{m: k for m in members}} for c in combos for k in range(n)]
    rows = []
    run_index = 0
    for _ in range(repeat):
        for combo in combos:
            params = {axes[i][0]: axes[i][2][k] for i, k in combo.items()}
            pidx = {str(axes[i][1]): axes[i][2][k] for i, k in combo.items()}
            colour = COLOURS[run_index % 2]
            path = None
            if run_index not in failed:
                path = f"images/{run_index:04d}.png"
                Image.new("RGB", (64, 48), colour).save(out / path)
            rows.append(
                {
                    "run_index": run_index,
                    "status": "failed" if run_index in failed else "completed",
                    "params": params,
                    "param_indices": pidx,
                    "node_id": "save",
                    "node_label": "Output",
                    "path": path,
                }
            )
            run_index += 1
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_json = {
        "format": 1,
        "axes": [
            {"name": n, "label": n, "index": i, "values": v, "group": g}
            for (n, i, v), g in zip(axes, groups, strict=True)
        ],
    }
    (out / "run.json").write_text(json.dumps(run_json))
    return rows


def _pixel(img: Image.Image, page: Any, r: int, c: int) -> tuple[int, ...]:
    x = page.origin[0] + c * page.pitch[0] + page.cell[0] // 2
    y = page.origin[1] + r * page.pitch[1] + page.cell[1] // 2
    return tuple(img.convert("RGB").getpixel((x, y)))  # type: ignore[arg-type]


def test_two_axes_make_an_xy_grid_with_value_labels(tmp_path: Path) -> None:
    _make_run(tmp_path, [("Width", 0, [32, 48]), ("Blur Radius", 3, [0.0, 2.5, 6.0])])
    [page] = make_contact_sheets(tmp_path)
    assert page.kind == "xy"
    assert (page.rows, page.cols) == (2, 3)  # first axis = rows, second = columns
    assert page.y_axis == "Width" and page.x_axis == "Blur Radius"
    assert page.y_labels == ["32", "48"] and page.x_labels == ["0", "2.5", "6"]
    assert page.images == 6
    img = Image.open(page.path)
    assert img.size == page.size
    right = page.origin[0] + 3 * page.pitch[0]
    bottom = page.origin[1] + 2 * page.pitch[1]
    assert img.size[0] >= right and img.size[1] >= bottom
    # every cell shows its image (run_index colours alternate)
    for r in range(2):
        for c in range(3):
            assert _pixel(img, page, r, c) == COLOURS[(r * 3 + c) % 2]


def test_x_and_y_can_be_chosen_by_label_or_index(tmp_path: Path) -> None:
    _make_run(tmp_path, [("Width", 0, [32, 48]), ("Blur Radius", 3, [0, 2, 6])])
    [page] = make_contact_sheets(tmp_path, x="0", y="blur radius", out=tmp_path / "t.png")
    assert (page.rows, page.cols, page.x_axis) == (3, 2, "Width")
    assert page.path == tmp_path / "t.png"
    with pytest.raises(RunError, match="no swept input 'Height'"):
        make_contact_sheets(tmp_path, x="Height")


def test_one_axis_makes_a_labelled_grid(tmp_path: Path) -> None:
    _make_run(tmp_path, [("Prompt", 1, ["a cat", "a dog", "a fox", "an owl", "a bee"])])
    [page] = make_contact_sheets(tmp_path)
    assert page.kind == "grid"
    assert page.cols * page.rows >= 5 and page.images == 5
    assert Image.open(page.path).size == page.size


def test_large_runs_are_paged(tmp_path: Path) -> None:
    _make_run(tmp_path, [("A", 0, list(range(5))), ("B", 1, list(range(4)))])
    pages = make_contact_sheets(tmp_path, max_rows=2, max_cols=3)
    # rows 5 -> pages of 2, 2, 1; columns 4 -> pages of 3, 1
    assert len(pages) == 6
    assert [p.page for p in pages] == [1, 2, 3, 4, 5, 6]
    assert sum(p.images for p in pages) == 20
    assert all(p.path.name.startswith("sheet-00") for p in pages)


def test_repeated_runs_go_to_separate_pages_and_failed_cells_are_grey(tmp_path: Path) -> None:
    _make_run(tmp_path, [("A", 0, [1, 2]), ("B", 1, [3, 4])], repeat=2, failed={1})
    pages = make_contact_sheets(tmp_path)
    assert len(pages) == 2 and pages[0].images == 3 and pages[1].images == 4
    img = Image.open(pages[0].path)
    assert _pixel(img, pages[0], 0, 1) == (200, 200, 200)


def test_zipped_axes_are_one_dimension(tmp_path: Path) -> None:
    _make_run(
        tmp_path,
        [("W", 0, [32, 64]), ("H", 1, [48, 96]), ("R", 2, [1, 2, 3])],
        groups=[0, 0, 1],
    )
    [page] = make_contact_sheets(tmp_path)
    assert (page.rows, page.cols) == (2, 3)
    assert page.y_labels == ["32 / 48", "64 / 96"]
    assert page.images == 6


def test_axes_are_inferred_without_run_json(tmp_path: Path) -> None:
    rows = _make_run(tmp_path, [("Width", 0, [32, 48]), ("R", 3, [0, 2, 6])])
    (tmp_path / "run.json").unlink()
    axes = load_axes(tmp_path, rows)
    assert [(a.label, a.values) for a in axes] == [("Width", [32, 48]), ("R", [0, 2, 6])]


def test_no_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"no manifest\.jsonl"):
        make_contact_sheets(tmp_path)


def test_format_value() -> None:
    assert format_value({"r": 255, "g": 128, "b": 0, "a": 255}) == "#ff8000"
    assert format_value(2.50) == "2.5"
    assert format_value(True) == "true"
    assert format_value((32, 48)) == "32 / 48"
    assert format_value({"image_name": "x.png"}) == "x.png"
