"""Pure helpers of the run layer: file names, and the images a queue item produced.

File names are stable (a function of the plan only), readable and collision-free::

    0007_width-48_blur-radius-4.png            one output node
    0007_width-48_blur-radius-4_output.png     several output nodes: the node's label
    0007_width-48_blur-radius-4_output_2.png   a node that made several images (iterate)

The zero-padded run index comes first, so names sort in run order and never collide.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

__all__ = ["file_name", "images_from_item", "slug"]

_SLUG_RE = re.compile(r"[^a-z0-9.]+")
MAX_STEM = 120


def slug(text: Any, limit: int = 32) -> str:
    """A lower-case, file-name-safe form of ``text`` (``"Blur Radius"`` -> ``blur-radius``)."""
    if isinstance(text, float):
        text = f"{text:g}"
    s = _SLUG_RE.sub("-", str(text).lower()).strip("-.")
    return (s[:limit].rstrip("-.") or "x") if s else "x"


def _value_slug(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return slug(f"{value:g}")
    if isinstance(value, str):
        return slug(PurePosixPath(value).stem if "." in value[-6:] else value, 24)
    if isinstance(value, Mapping) and "image_name" in value:
        return slug(PurePosixPath(str(value["image_name"])).stem, 24)
    return slug(value, 24)


def file_name(
    run_index: int,
    width: int,
    params: Sequence[tuple[str, Any]],
    *,
    node_label: str | None = None,
    ordinal: int = 0,
    suffix: str = ".png",
) -> str:
    """The file name of one image: ``{run:0width}_{label-value}..[_{node}][_{k}]{suffix}``.

    Example::

        file_name(7, 4, [("Width", 48), ("Blur Radius", 4.0)])
        # '0007_width-48_blur-radius-4.png'
    """
    parts = [f"{run_index:0{width}d}"]
    parts += [f"{slug(label, 20)}-{_value_slug(value)}" for label, value in params]
    stem = "_".join(parts)
    if len(stem) > MAX_STEM:
        stem = stem[:MAX_STEM].rstrip("-_.")
    if node_label:
        stem += "_" + slug(node_label, 24)
    if ordinal:
        stem += f"_{ordinal + 1}"
    return stem + (suffix if suffix.startswith(".") else "." + suffix)


def images_from_item(
    item: Mapping[str, Any], output_node_ids: Sequence[str]
) -> list[dict[str, str]]:
    """``[{"node_id", "image_name"}, ...]`` produced by the output nodes of a queue item.

    Reads ``session.results`` through ``session.source_prepared_mapping`` (workflow node id ->
    prepared node ids); nodes in ``output_node_ids`` order, then prepared order.
    """
    session = item.get("session") or {}
    results: Mapping[str, Any] = session.get("results") or {}
    mapping: Mapping[str, Sequence[str]] = session.get("source_prepared_mapping") or {}
    out: list[dict[str, str]] = []
    for nid in output_node_ids:
        for pid in mapping.get(nid) or ():
            res = results.get(pid)
            if not isinstance(res, Mapping):
                continue
            image = res.get("image")
            if isinstance(image, Mapping) and isinstance(image.get("image_name"), str):
                out.append({"node_id": nid, "image_name": image["image_name"]})
    return out
