"""The exported workflow JSON is never mutated by anything the library does with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from invokeai_py_client import BatchRun, InvokeAIClient, Sweep, WorkflowDefinition


def _frozen(definition: WorkflowDefinition) -> str:
    return json.dumps(definition.raw, sort_keys=True)


@pytest.mark.server
def test_definition_unchanged_after_submissions_outputs_and_a_sweep(
    client: InvokeAIClient, examples_dir: Path, tmp_path: Path
) -> None:
    source = examples_dir / "blur.json"
    definition = WorkflowDefinition.from_file(source)
    before = _frozen(definition)
    wf = client.workflow_repo.create_workflow(definition)

    wf.set("Width", 40)
    wf.get_input_value(3).value = 2
    wf.submit_sync()
    item = wf.wait_for_completion_sync(timeout=60)
    mappings = wf.map_outputs_to_images(item)
    assert mappings and mappings[0]["image_names"]
    wf.build_payload(runs=3)
    result = BatchRun(client, wf, Sweep().axis("Height", [16, 24]), tmp_path / "run").run()
    assert result.ok

    assert _frozen(definition) == before
    # and the file on disk is what the definition still holds
    assert json.loads(source.read_text()) == json.loads(before)
