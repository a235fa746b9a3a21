"""Contact sheets: one PNG that shows every image of a finished run with its parameters.

Pure Pillow, no server: a sheet is made from a run directory's ``manifest.jsonl`` (one row per
produced image, with the swept values in ``params``) and ``run.json`` (the sweep axes).

- Two axes swept: an **XY grid**, one axis's values as column labels, the other's as row
  labels, each cell the image made with that pair of values.
- Otherwise: a **labelled grid**, each image with its swept values written under it.
- Large runs are **paged** into several sheets (``sheet-001.png``, ``sheet-002.png``, ...);
  images that differ in anything but the two grid axes (a third axis, repeated runs, several
  output nodes) go to separate pages, so no cell ever hides an image.

Example::

    from invokeai_py_client.sheet import make_contact_sheets

    for page in make_contact_sheets("out/run-1"):
        print(page.path, page.rows, "x", page.cols)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from ._sheet_data import (
    Axis,
    dimensions,
    format_value,
    load_axes,
    load_manifest,
    pick_axis,
    row_value,
)
from .exceptions import RunError

__all__ = [
    "Axis",
    "SheetPage",
    "format_value",
    "load_axes",
    "load_manifest",
    "make_contact_sheets",
]

BACKGROUND = (255, 255, 255)
CELL_BACKGROUND = (236, 236, 236)
MISSING = (200, 200, 200)
TEXT = (20, 20, 20)
MUTED = (110, 110, 110)
FAILED_TEXT = (170, 30, 30)
GAP = 8
MARGIN = 12
FONT_SIZE = 14
TITLE_SIZE = 16
MAX_LABEL_WIDTH = 260


@dataclass
class SheetPage:
    """One written sheet and its geometry (pixels), so callers and tests can check it.

    The cell in row ``r``, column ``c`` has its top-left corner at
    ``(origin[0] + c * pitch[0], origin[1] + r * pitch[1])`` and is ``cell[0] x cell[1]``.
    """

    path: Path
    kind: str  # "xy" or "grid"
    rows: int
    cols: int
    cell: tuple[int, int]
    origin: tuple[int, int]
    pitch: tuple[int, int]
    size: tuple[int, int]
    x_axis: str | None = None
    y_axis: str | None = None
    x_labels: list[str] = field(default_factory=list)
    y_labels: list[str] = field(default_factory=list)
    images: int = 0
    page: int = 1
    pages: int = 1
    subtitle: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description of the page (used by ``ivk sheet --json``)."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "rows": self.rows,
            "cols": self.cols,
            "cell": list(self.cell),
            "origin": list(self.origin),
            "pitch": list(self.pitch),
            "size": list(self.size),
            "x_axis": self.x_axis,
            "y_axis": self.y_axis,
            "x_labels": self.x_labels,
            "y_labels": self.y_labels,
            "images": self.images,
            "page": self.page,
            "pages": self.pages,
        }


# --------------------------------------------------------------------------- drawing


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError):  # Pillow without FreeType: bitmap font
        return ImageFont.load_default()


def _text_w(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> int:
    box = font.getbbox(text)
    return math.ceil(box[2] - box[0])


def _line_h(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    box = font.getbbox("Hgy")
    return math.ceil(box[3] - box[1]) + 4


def _fit(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str, width: int) -> str:
    if _text_w(font, text) <= width:
        return text
    while text and _text_w(font, text + "…") > width:
        text = text[:-1]
    return text + "…"


@dataclass
class _Cell:
    row: Mapping[str, Any] | None
    caption: list[str] = field(default_factory=list)


def _load_image(run_dir: Path, row: Mapping[str, Any] | None) -> Image.Image | None:
    if row is None or not row.get("path"):
        return None
    path = run_dir / str(row["path"])
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGBA") if img.mode not in ("RGB", "RGBA") else img.copy()
    except (OSError, ValueError):
        return None


def _paste_cell(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    run_dir: Path,
    cell: _Cell,
    box: tuple[int, int, int, int],
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    scale: float,
) -> bool:
    """Draw one cell (the image scaled by ``scale``, kept inside the cell); True if pasted."""
    x0, y0, x1, y1 = box
    img = _load_image(run_dir, cell.row)
    if img is None:
        draw.rectangle(box, fill=MISSING)
        status = str((cell.row or {}).get("status") or "missing")
        draw.text((x0 + 4, y0 + 4), _fit(font, status, x1 - x0 - 8), fill=FAILED_TEXT, font=font)
        return False
    draw.rectangle(box, fill=CELL_BACKGROUND)
    w, h = x1 - x0, y1 - y0
    # one scale for the whole sheet keeps the images' relative sizes (a swept width shows)
    f = min(scale, w / img.width, h / img.height)
    if f != 1:
        size = (max(1, round(img.width * f)), max(1, round(img.height * f)))
        method = Image.Resampling.NEAREST if f > 1 else Image.Resampling.LANCZOS
        img = img.resize(size, method)
    pos = (x0 + (w - img.width) // 2, y0 + (h - img.height) // 2)
    if img.mode == "RGBA":
        sheet.paste(img, pos, img)
    else:
        sheet.paste(img, pos)
    return True


def _cell_size(
    run_dir: Path, rows: Sequence[Mapping[str, Any]], cell: int | None
) -> tuple[int, float]:
    """The cell size, and the one scale that fits the largest image (of the first 50)."""
    biggest = 0
    for row in rows[:50]:
        img = _load_image(run_dir, row)
        if img is not None:
            biggest = max(biggest, img.width, img.height)
    size = max(32, int(cell)) if cell else min(256, max(128, biggest))
    return size, (size / biggest if biggest else 1.0)


def _sheet_paths(out: Path, pages: int) -> list[Path]:
    if pages == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i:03d}{out.suffix}") for i in range(1, pages + 1)]


def _group_key(
    row: Mapping[str, Any], grid_axes: Sequence[Axis], axes: Sequence[Axis], by_node: bool
) -> str:
    shown = {id(a) for g in grid_axes for a in (g, *g.parts)}
    others = [a for a in axes if id(a) not in shown]
    parts = [f"{a.label}={format_value(row_value(row, a))}" for a in others]
    if by_node:
        parts.append(f"node={row.get('node_label') or row.get('node_id')}")
    return ", ".join(parts)


def _xy_pages(
    run_dir: Path,
    rows: Sequence[Mapping[str, Any]],
    axes: Sequence[Axis],
    x: Axis,
    y: Axis,
    max_cols: int,
    max_rows: int,
) -> list[tuple[str, list[str], list[str], list[list[_Cell]]]]:
    """Split the run into pages of at most max_rows x max_cols cells."""
    xs = [format_value(v) for v in x.values]
    ys = [format_value(v) for v in y.values]
    groups: dict[str, list[dict[tuple[str, str], Mapping[str, Any]]]] = {}
    by_node = len({r.get("node_id") for r in rows}) > 1
    for row in rows:
        key = (format_value(row_value(row, x)), format_value(row_value(row, y)))
        layers = groups.setdefault(_group_key(row, (x, y), axes, by_node), [])
        for layer in layers:  # repeated runs / extra nodes go to the next free layer
            if key not in layer:
                layer[key] = row
                break
        else:
            layers.append({key: row})
    pages = []
    for gname, layers in groups.items():
        for li, layer in enumerate(layers):
            sub = gname if len(layers) == 1 else f"{gname + ', ' if gname else ''}copy {li + 1}"
            for r0 in range(0, len(ys), max_rows):
                for c0 in range(0, len(xs), max_cols):
                    cx, cy = xs[c0 : c0 + max_cols], ys[r0 : r0 + max_rows]
                    cells = [[_Cell(layer.get((xv, yv))) for xv in cx] for yv in cy]
                    pages.append((sub, cx, cy, cells))
    return pages


def _draw_xy(
    run_dir: Path,
    path: Path,
    title: str,
    subtitle: str,
    x: Axis,
    y: Axis,
    xs: list[str],
    ys: list[str],
    cells: list[list[_Cell]],
    cell: int,
    scale: float,
) -> SheetPage:
    font, tfont = _font(FONT_SIZE), _font(TITLE_SIZE)
    lh = _line_h(font)
    y_head = _fit(font, y.label, MAX_LABEL_WIDTH - 50)
    label_w = (
        min(MAX_LABEL_WIDTH, max([_text_w(font, s) for s in [*ys, f"rows: {y_head}"]] + [20]))
        + 2 * GAP
    )
    title_h = _line_h(tfont) + (lh if subtitle else 0) + GAP
    col_head_h = 2 * lh + GAP  # the x axis name, then its values
    origin = (MARGIN + label_w, MARGIN + title_h + col_head_h)
    pitch = (cell + GAP, cell + GAP)
    width = origin[0] + len(xs) * pitch[0] - GAP + MARGIN
    width = max(width, MARGIN * 2 + _text_w(tfont, title))
    height = origin[1] + len(ys) * pitch[1] - GAP + MARGIN
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((MARGIN, MARGIN), title, fill=TEXT, font=tfont)
    if subtitle:
        draw.text((MARGIN, MARGIN + _line_h(tfont)), subtitle, fill=MUTED, font=font)
    top = MARGIN + title_h
    draw.text(
        (origin[0], top),
        _fit(font, f"columns: {x.label}", width - origin[0]),
        fill=MUTED,
        font=font,
    )
    draw.text((MARGIN, top + lh), f"rows: {y_head}", fill=MUTED, font=font)
    pasted = 0
    for c, xv in enumerate(xs):
        cx = origin[0] + c * pitch[0]
        text = _fit(font, xv, cell)
        draw.text((cx + (cell - _text_w(font, text)) // 2, top + lh), text, fill=TEXT, font=font)
    for r, yv in enumerate(ys):
        cy = origin[1] + r * pitch[1]
        text = _fit(font, yv, label_w - 2 * GAP)
        draw.text((MARGIN, cy + (cell - lh) // 2), text, fill=TEXT, font=font)
        for c in range(len(xs)):
            cx = origin[0] + c * pitch[0]
            box = (cx, cy, cx + cell, cy + cell)
            pasted += _paste_cell(sheet, draw, run_dir, cells[r][c], box, font, scale)
    sheet.save(path)
    return SheetPage(
        path=path,
        kind="xy",
        rows=len(ys),
        cols=len(xs),
        cell=(cell, cell),
        origin=origin,
        pitch=pitch,
        size=(width, height),
        x_axis=x.label,
        y_axis=y.label,
        x_labels=list(xs),
        y_labels=list(ys),
        images=pasted,
        subtitle=subtitle,
    )


def _caption(row: Mapping[str, Any], axes: Sequence[Axis]) -> list[str]:
    lines = [f"{a.label}={format_value(row_value(row, a))}" for a in axes]
    if not lines:
        lines = [f"{k}={format_value(v)}" for k, v in (row.get("params") or {}).items()]
    head = f"#{row.get('run_index', '?')}"
    if row.get("node_label"):
        head += f" {row['node_label']}"
    return [head, *lines[:4]]


def _draw_grid(
    run_dir: Path,
    path: Path,
    title: str,
    rows: Sequence[Mapping[str, Any]],
    axes: Sequence[Axis],
    cols: int,
    cell: int,
    scale: float,
) -> SheetPage:
    font, tfont = _font(FONT_SIZE), _font(TITLE_SIZE)
    lh = _line_h(font)
    captions = [_caption(r, axes) for r in rows]
    cap_lines = max((len(c) for c in captions), default=1)
    cols = max(1, min(cols, len(rows)))
    nrows = max(1, math.ceil(len(rows) / cols))
    title_h = _line_h(tfont) + GAP
    origin = (MARGIN, MARGIN + title_h)
    pitch = (cell + GAP, cell + cap_lines * lh + 2 * GAP)
    width = max(origin[0] + cols * pitch[0] - GAP + MARGIN, MARGIN * 2 + _text_w(tfont, title))
    height = origin[1] + nrows * pitch[1] - GAP + MARGIN
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((MARGIN, MARGIN), title, fill=TEXT, font=tfont)
    pasted = 0
    for i, row in enumerate(rows):
        r, c = divmod(i, cols)
        cx, cy = origin[0] + c * pitch[0], origin[1] + r * pitch[1]
        pasted += _paste_cell(
            sheet, draw, run_dir, _Cell(row), (cx, cy, cx + cell, cy + cell), font, scale
        )
        for j, line in enumerate(captions[i]):
            color = TEXT if j else MUTED
            draw.text((cx, cy + cell + 2 + j * lh), _fit(font, line, cell), fill=color, font=font)
    sheet.save(path)
    return SheetPage(
        path=path,
        kind="grid",
        rows=nrows,
        cols=cols,
        cell=(cell, cell),
        origin=origin,
        pitch=pitch,
        size=(width, height),
        images=pasted,
    )


# --------------------------------------------------------------------------- entry point


def make_contact_sheets(
    run_dir: str | Path,
    *,
    x: str | None = None,
    y: str | None = None,
    out: str | Path | None = None,
    cell: int | None = None,
    max_cols: int = 12,
    max_rows: int = 12,
    include_failed: bool = True,
) -> list[SheetPage]:
    """Write the contact sheet(s) of a run and return one :class:`SheetPage` per file.

    Args:
        run_dir: the run's output directory (``manifest.jsonl``, ``run.json``, images).
        x, y: the axes for the columns and rows (label, Form index or ``node_id.field``).
            By default, when exactly two axes were swept, the first is the rows (``y``) and
            the second the columns (``x``); with one or three or more axes, or none, a
            labelled grid is drawn unless both ``x`` and ``y`` are given.
        out: the PNG to write (default ``<run_dir>/sheet.png``); several pages are written
            beside it as ``sheet-001.png``, ``sheet-002.png``, ...
        cell: the cell size in pixels (default: the images' size, between 128 and 256).
        max_cols, max_rows: cells per page before paging.
        include_failed: draw failed / missing items as grey cells.

    Raises:
        RunError: no manifest, no images, or ``x`` / ``y`` name no swept input.

    Example::

        pages = make_contact_sheets("out/run-1", x="Blur Radius", y="Colour")
    """
    run_dir = Path(run_dir)
    rows = load_manifest(run_dir)
    if not include_failed:
        rows = [r for r in rows if r.get("path")]
    if not rows:
        raise RunError(f"the manifest in {run_dir} has no rows yet: nothing to put on a sheet")
    axes = load_axes(run_dir, rows)
    out_path = Path(out) if out is not None else run_dir / "sheet.png"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    size, scale = _cell_size(run_dir, rows, cell)
    title = f"{run_dir.resolve().name}: {len(rows)} images"

    x_axis = pick_axis(axes, x) if x is not None else None
    y_axis = pick_axis(axes, y) if y is not None else None
    dims = dimensions(axes)
    if x_axis is None and y_axis is None and len(dims) == 2:
        y_axis, x_axis = dims
    elif (x_axis is None) != (y_axis is None) and len(axes) >= 2:
        chosen = x_axis or y_axis
        other = next(a for a in axes if a is not chosen)
        x_axis, y_axis = (x_axis, other) if x_axis is not None else (other, y_axis)
    if x_axis is not None and y_axis is not None and x_axis is y_axis:
        raise RunError(f"--x and --y both name {x_axis.label!r}; pick two different inputs")

    if x_axis is not None and y_axis is not None:
        pages = _xy_pages(run_dir, rows, axes, x_axis, y_axis, max_cols, max_rows)
        paths = _sheet_paths(out_path, len(pages))
        result = [
            _draw_xy(run_dir, p, title, sub, x_axis, y_axis, xs, ys, cells, size, scale)
            for p, (sub, xs, ys, cells) in zip(paths, pages, strict=True)
        ]
    else:
        per_page = max_cols * max_rows
        cols = min(max_cols, max(1, math.ceil(math.sqrt(min(len(rows), per_page)))))
        chunks = [rows[i : i + per_page] for i in range(0, len(rows), per_page)]
        paths = _sheet_paths(out_path, len(chunks))
        result = [
            _draw_grid(run_dir, p, title, chunk, axes, cols, size, scale)
            for p, chunk in zip(paths, chunks, strict=True)
        ]
    for i, page in enumerate(result, start=1):
        page.page, page.pages = i, len(result)
    return result
