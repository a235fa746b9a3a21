"""Regenerate ``src/invokeai_py_client/workflow/_schema_snapshot.json.gz``.

Builds InvokeAI's own OpenAPI document from the installed ``invokeai`` package (no server is
started) and compacts its invocation schemas with the same parser a connected client uses
for a live ``/openapi.json``::

    INVOKEAI_ROOT=$(mktemp -d) .venv/bin/python scripts/gen_schema_snapshot.py
    .venv/bin/python scripts/gen_schema_snapshot.py --check   # exit 1 if it is stale
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _torchvision_fix() -> None:
    # CPU torch + CUDA torchvision wheels: define the two ops torchvision registers natively.
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    globals()["_keep_lib"] = lib


def main() -> None:
    check = "--check" in sys.argv[1:]
    os.environ.setdefault("INVOKEAI_ROOT", tempfile.mkdtemp(prefix="ivk-schema-"))
    sys.argv = sys.argv[:1]
    _torchvision_fix()
    from importlib.metadata import version

    from invokeai.app.api_app import app

    from invokeai_py_client.workflow.schema import SNAPSHOT_PATH, NodeSchemaIndex

    index = NodeSchemaIndex.from_openapi(app.openapi())
    index.version = version("invokeai")
    data = index.to_compact()
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    if check:
        with gzip.open(SNAPSHOT_PATH, "rb") as fh:
            current = fh.read()
        if current != raw:
            sys.exit(f"{SNAPSHOT_PATH} is stale: run scripts/gen_schema_snapshot.py")
        print(f"{SNAPSHOT_PATH.name} matches invokeai {index.version} ({len(index)} node types)")
        return
    with gzip.GzipFile(SNAPSHOT_PATH, "wb", mtime=0) as fh:
        fh.write(raw)
    print(f"{len(index)} node types, {len(raw)} bytes -> {SNAPSHOT_PATH}")


if __name__ == "__main__":
    main()
