"""The values of a sweep: local image files, canonical value keys and resolved axes (pure).

:class:`LocalImage` is a local file swept as an image value (uploaded once per content hash
by the run layer); :func:`canonical_value` is the text form that matches a queue item's
``field_values`` to a planned run; :class:`AxisSpec` is one resolved axis of a
:class:`~invokeai_py_client.sweep.SweepPlan`. All are re-exported by
:mod:`invokeai_py_client.sweep`.

Example::

    img = LocalImage.from_path("in/cat.png")
    canonical_value(4) == canonical_value(4.0)      # True
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invokeai_py_client.exceptions import SweepError

__all__ = ["AxisSpec", "LocalImage", "canonical_value", "display_param", "wire"]


@dataclass(frozen=True, slots=True)
class LocalImage:
    """A local image file used as a sweep value; uploaded once per content hash.

    ``sha256`` is the hex digest of the file's bytes: two files with the same content are
    uploaded once.
    """

    path: str
    sha256: str

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> LocalImage:
        """Hash ``path`` (raises :class:`SweepError` when it cannot be read)."""
        p = Path(path)
        digest = hashlib.sha256()
        try:
            with p.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise SweepError(f"cannot read image file {str(p)!r}: {exc.strerror or exc}") from exc
        return cls(path=str(p), sha256=digest.hexdigest())

    def placeholder(self) -> dict[str, str]:
        """The value shown in a dry run before the file is uploaded."""
        return {"image_name": f"<upload:{self.sha256[:12]}:{Path(self.path).name}>"}


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical_value(value: Any) -> str:
    """A canonical text form of a batch value, used to match ``field_values`` to runs.

    Numbers compare by value (``4`` and ``4.0`` are the same), dicts by sorted keys.
    """
    if isinstance(value, str):
        return _ENCODER.encode(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        f = float(value)
        return str(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)
    return _ENCODER.encode(_canon(value))


def _canon(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        f = float(value)
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canon(v) for k, v in value.items()}
    return value


def wire(v: Any) -> Any:
    """The value as sent: a local image not uploaded yet shows as a placeholder name."""
    return v.placeholder() if isinstance(v, LocalImage) else v


def display_param(value: Any, display: Any) -> Any:
    """How a run's value is shown in its params: a local file by its name, an image by its
    image name, anything else as sent."""
    if isinstance(display, LocalImage):
        return Path(display.path).name
    if isinstance(value, Mapping) and "image_name" in value:
        return value["image_name"]
    return value


def _jsonable(v: Any) -> Any:
    if isinstance(v, LocalImage):
        return {"__local_image__": True, "path": v.path, "sha256": v.sha256}
    return v


def _from_jsonable(v: Any) -> Any:
    if isinstance(v, Mapping) and v.get("__local_image__"):
        return LocalImage(path=str(v["path"]), sha256=str(v["sha256"]))
    return v


@dataclass(frozen=True, slots=True)
class AxisSpec:
    """One resolved axis (or GUI batch datum) of a plan.

    ``values`` are the API values sent (``LocalImage`` placeholders until uploaded);
    ``display`` the values as the user gave them (for names and the manifest).
    ``index`` is the input's index in the Form, or None for a GUI batch datum not in the Form.
    ``group`` is the position of its inner list in ``batch.data``; ``source`` is ``"sweep"``
    or ``"workflow"`` (a GUI batch / generator node).
    """

    name: str
    label: str
    index: int | None
    node_id: str
    field_name: str
    values: tuple[Any, ...]
    display: tuple[Any, ...]
    group: int
    source: str = "sweep"
    kind: str = "values"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (used in ``run.json`` and the ledger)."""
        return {
            "name": self.name,
            "label": self.label,
            "index": self.index,
            "node_id": self.node_id,
            "field_name": self.field_name,
            "values": [_jsonable(v) for v in self.values],
            "display": [_jsonable(v) for v in self.display],
            "group": self.group,
            "source": self.source,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AxisSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(d["name"]),
            label=str(d["label"]),
            index=d.get("index"),
            node_id=str(d["node_id"]),
            field_name=str(d["field_name"]),
            values=tuple(_from_jsonable(v) for v in d["values"]),
            display=tuple(_from_jsonable(v) for v in d["display"]),
            group=int(d["group"]),
            source=str(d.get("source", "sweep")),
            kind=str(d.get("kind", "values")),
        )
