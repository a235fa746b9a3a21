"""What a contact sheet is made from: a run's manifest rows and swept axes (no Pillow).

Split from :mod:`invokeai_py_client.sheet` so that reading a run (``ivk inputs`` and
``ivk run`` format values with :func:`format_value`) does not import Pillow.

Example::

    from invokeai_py_client._sheet_data import load_axes, load_manifest

    rows = load_manifest("out/run-1")
    print([a.label for a in load_axes("out/run-1", rows)])
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import RunError

__all__ = [
    "Axis",
    "dimensions",
    "format_value",
    "load_axes",
    "load_manifest",
    "pick_axis",
    "row_value",
]


@dataclass(frozen=True)
class Axis:
    """One swept input: its label (as the manifest's ``params`` key), Form index and values."""

    label: str
    index: int | None
    values: list[Any]
    key: str | None = None
    alt: str | None = None
    group: int | None = None
    parts: tuple[Axis, ...] = ()

    def matches(self, key: str) -> bool:
        """True when ``key`` names this axis (label, Form index, or ``node_id.field``)."""
        k = key.strip()
        if k in (self.label, self.key, self.alt):
            return True
        if self.parts:
            return any(p.matches(k) for p in self.parts)
        if self.index is not None and k.lstrip("-").isdigit() and int(k) == self.index:
            return True
        return k.lower() == self.label.lower()


def load_manifest(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``manifest.jsonl`` in ``run_dir`` (blank and torn last lines skipped)."""
    path = Path(run_dir) / "manifest.jsonl"
    if not path.is_file():
        raise RunError(f"no manifest.jsonl in {run_dir}: is this the output directory of a run?")
    rows: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-write; the ledger still has that item
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _axis_dicts(data: Any) -> Iterable[Mapping[str, Any]]:
    """Every axis-like mapping in ``run.json``'s sweep section, flattening zip groups."""
    if isinstance(data, Mapping):
        if "values" in data and isinstance(data["values"], list):
            yield data
            return
        for key in ("axes", "groups", "zip", "sweep"):
            if key in data:
                yield from _axis_dicts(data[key])
    elif isinstance(data, list):
        for item in data:
            yield from _axis_dicts(item)


def load_axes(run_dir: str | Path, rows: Sequence[Mapping[str, Any]] = ()) -> list[Axis]:
    """The swept axes of a run, from ``run.json`` (else inferred from the manifest's params).

    Inferred axes are the ``params`` keys whose value varies between rows.
    """
    axes: list[Axis] = []
    path = Path(run_dir) / "run.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RunError(f"{path} is not valid JSON: {exc}") from None
        section = data.get("sweep", data) if isinstance(data, Mapping) else data
        seen: set[str] = set()
        for a in _axis_dicts(section):
            label = a.get("name") or a.get("label") or a.get("key")
            if label is None or str(label) in seen:
                continue
            seen.add(str(label))
            idx = a.get("index", a.get("input_index"))
            shown = a.get("display")
            values: list[Any] = shown if isinstance(shown, list) else list(a["values"])
            key = a.get("key")
            if key is None and a.get("node_id") and a.get("field_name"):
                key = f"{a['node_id']}.{a['field_name']}"
            group = a.get("group")
            axes.append(
                Axis(
                    label=str(label),
                    index=int(idx) if isinstance(idx, int) else None,
                    values=list(values),
                    key=str(key) if key is not None else None,
                    alt=str(a["label"]) if a.get("label") else None,
                    group=group if isinstance(group, int) else None,
                )
            )
    if axes:
        return axes
    order: dict[str, list[Any]] = {}
    for row in rows:
        for k, v in (row.get("params") or {}).items():
            vals = order.setdefault(str(k), [])
            if v not in vals:
                vals.append(v)
    return [Axis(label=k, index=None, values=v) for k, v in order.items() if len(v) > 1]


def format_value(value: Any) -> str:
    """A short human label for a swept value (colours as ``#rrggbb``, floats trimmed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        if set(value) >= {"r", "g", "b"}:
            text = "#{:02x}{:02x}{:02x}".format(int(value["r"]), int(value["g"]), int(value["b"]))
            a = value.get("a", 255)
            return text if a in (255, None) else f"{text}{int(a):02x}"
        for key in ("image_name", "name", "board_id"):
            if key in value:
                return str(value[key])
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, tuple):
        return " / ".join(format_value(v) for v in value)
    if isinstance(value, Path):
        return value.name
    if hasattr(value, "sha256") and hasattr(value, "path"):  # a sweep's LocalImage
        return Path(str(value.path)).name
    return str(value)


def row_value(row: Mapping[str, Any], axis: Axis) -> Any:
    if axis.parts:
        return tuple(row_value(row, p) for p in axis.parts)
    params = row.get("params") or {}
    if axis.label in params:
        return params[axis.label]
    if axis.index is not None:
        by_index = row.get("param_indices") or {}
        if str(axis.index) in by_index:
            return by_index[str(axis.index)]
    return None


def pick_axis(axes: Sequence[Axis], key: str) -> Axis:
    found = [a for a in axes if a.matches(key)]
    if len(found) == 1:
        return found[0]
    names = (
        ", ".join(f"{a.index}: {a.label}" if a.index is not None else a.label for a in axes)
        or "none"
    )
    if not found:
        raise RunError(f"no swept input {key!r} in this run; swept inputs: {names}")
    raise RunError(f"{key!r} matches several swept inputs ({names}); use the index")


def dimensions(axes: Sequence[Axis]) -> list[Axis]:
    """The independent dimensions of a run: zipped axes (same group) become one axis."""
    by_group: dict[object, list[Axis]] = {}
    for i, a in enumerate(axes):
        by_group.setdefault(a.group if a.group is not None else f"axis{i}", []).append(a)
    dims: list[Axis] = []
    for members in by_group.values():
        if len(members) == 1:
            dims.append(members[0])
            continue
        n = min(len(m.values) for m in members)
        dims.append(
            Axis(
                label=" / ".join(m.label for m in members),
                index=None,
                values=[tuple(m.values[i] for m in members) for i in range(n)],
                parts=tuple(members),
            )
        )
    return dims
