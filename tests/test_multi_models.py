"""A run over several servers sends each server its own model keys.

Two real servers each install the same tiny synthetic LoRA file (tensor names of an SD1
LoRA, zeros; InvokeAI probes it as ``sd-1``/``lora``) through the model-install API: the two
installs get different keys. ``examples/workflows/lora_blank.json`` passes the LoRA through a
``lora_selector`` (which never loads weights) and saves a blank image, so it runs without
model weights. The queue items each server ran are read back from that server to see which
key it was sent.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.dnn_model import per_server
from invokeai_py_client.dnn_model.models import IvkDnnModel
from invokeai_py_client.dnn_model.per_server import model_refs, resolve_refs
from invokeai_py_client.exceptions import ModelSyncError
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run import BatchRun, Ledger, Progress, aresume, read_manifest
from invokeai_py_client.sweep import Sweep, SweepPlan
from invokeai_py_client.workflow import WorkflowDefinition

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "workflows" / "lora_blank.json"
LORA_NODE = "5b0c7a1e-3f0d-4a8e-9c41-2d6e8f1a7b30"


def write_lora(path: Path, alpha: float = 4.0) -> Path:
    """A tiny SD1-style LoRA file (zeros); ``alpha`` changes its content (and hash)."""
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {}
    for block, width in (
        ("lora_unet_down_blocks_0_attentions_0_proj_in", 320),
        ("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 768),
    ):
        tensors[f"{block}.lora_down.weight"] = torch.zeros(4, width)
        tensors[f"{block}.lora_up.weight"] = torch.zeros(width, 4)
        tensors[f"{block}.alpha"] = torch.tensor(alpha)
    save_file(tensors, str(path))
    return path


class Pair:
    """Two started servers with clients, the tiny LoRA on both, a second one only on A."""

    def __init__(self, root: Path) -> None:
        # started one after the other (see test_batch_run: threads made later asyncio
        # connections fail)
        self.servers = [LocalServer(root / f"root{i}", fast=True).start() for i in range(2)]
        self.clients = [InvokeAIClient.from_url(s.url) for s in self.servers]
        shared = write_lora(root / "tiny_lora.safetensors")
        self.lora: list[IvkDnnModel] = []
        for c in self.clients:
            job = c.dnn_model_repo.install_model(shared)
            assert job.model is not None
            self.lora.append(job.model)
        only = write_lora(root / "only_a_lora.safetensors", alpha=8.0)
        job = self.clients[0].dnn_model_repo.install_model(only)
        assert job.model is not None
        self.only_a = job.model

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def workflow(self, identifier: dict[str, Any]) -> Any:
        """The example bound to server A, its LoRA input set to ``identifier``."""
        wf = self.clients[0].workflow_repo.create_workflow(WorkflowDefinition.from_file(EXAMPLE))
        wf.get_input_value("LoRA").set_value(identifier)
        return wf

    def queue_items(self, url: str) -> list[dict[str, Any]]:
        data = httpx.get(f"{url}/api/v1/queue/default/list_all", timeout=30).json()
        items: list[dict[str, Any]] = data if isinstance(data, list) else data["items"]
        return items

    def sent_lora(self, url: str, item_id: int) -> dict[str, Any]:
        item = httpx.get(f"{url}/api/v1/queue/default/i/{item_id}", timeout=30).json()
        lora: dict[str, Any] = item["session"]["graph"]["nodes"][LORA_NODE]["lora"]
        return lora

    def close(self) -> None:
        for c in self.clients:
            c.close()
        for s in self.servers:
            s.stop()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    p = Pair(tmp_path_factory.mktemp("two-servers"))
    try:
        yield p
    finally:
        p.close()


# --------------------------------------------------------------------------- pure


def test_plan_with_models_swaps_graph_workflow_and_values() -> None:
    old = {"key": "k-a", "hash": "blake3:aa", "name": "tiny", "base": "sd-1", "type": "lora"}
    new = {"key": "k-b", "hash": "blake3:aa", "name": "tiny", "base": "sd-1", "type": "lora"}
    main = {
        "key": "m",
        "hash": "h",
        "name": "x",
        "base": "sdxl",
        "type": "main",
        "submodel_type": "vae",
    }
    template = {
        "batch": {
            "graph": {
                "nodes": {
                    "n1": {"id": "n1", "type": "lora_selector", "lora": dict(old), "weight": 1},
                    "n2": {"loras": [{"lora": dict(old), "weight": 0.5}], "vae": dict(main)},
                }
            },
            "workflow": {"nodes": [{"data": {"inputs": {"lora": {"value": dict(old)}}}}]},
        }
    }
    from invokeai_py_client.sweep import AxisSpec

    axis = AxisSpec("W", "W", 1, "n3", "width", (32, 64), (32, 64), 0)
    plan = SweepPlan(template=template, axes=[axis])
    refs = model_refs(plan, {("n1", "lora"): (0, "LoRA")})
    assert [(r.key, r.index, r.label) for r in refs] == [
        ("k-a", 0, "LoRA"),
        ("m", -1, "n2.vae"),
    ]
    swapped = plan.with_models({"k-a": new, "m": {**main, "key": "m2", "submodel_type": None}})
    nodes = swapped.template["batch"]["graph"]["nodes"]
    assert nodes["n1"]["lora"] == new and nodes["n2"]["loras"][0]["lora"] == new
    assert nodes["n2"]["vae"]["key"] == "m2" and nodes["n2"]["vae"]["submodel_type"] == "vae"
    wf_value = swapped.template["batch"]["workflow"]["nodes"][0]["data"]["inputs"]["lora"]
    assert wf_value["value"] == new
    assert plan.template["batch"]["graph"]["nodes"]["n1"]["lora"] == old  # the original kept
    assert swapped.subset([1]).with_models({}).payload()["batch"]["data"][0][0]["items"] == [64]

    # by hash, then by name and type; never by base alone (another model is not the same)
    def model(key: str, name: str, hash_: str, base: str = "sd-1") -> IvkDnnModel:
        return IvkDnnModel(key=key, name=name, hash=hash_, base=base, type="lora")

    mapping, missing = resolve_refs(refs[:1], [model("z", "renamed", "blake3:aa")])
    assert mapping["k-a"]["key"] == "z" and not missing
    mapping, missing = resolve_refs(refs[:1], [model("y", "tiny", "blake3:other")])
    assert mapping["k-a"]["key"] == "y"
    mapping, missing = resolve_refs(refs[:1], [model("w", "another", "blake3:ww")])
    assert not mapping and missing[0][0].key == "k-a"


# --------------------------------------------------------------------------- two servers


@pytest.mark.server
@pytest.mark.slow
def test_example_is_accepted_by_the_workflow_library(pair: Pair) -> None:
    workflow = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    from invokeai.app.services.workflow_records.workflow_records_common import (
        WorkflowWithoutIDValidator,
    )

    assert WorkflowWithoutIDValidator.validate_python(workflow).meta.version == "4.0.0"
    response = httpx.post(
        f"{pair.urls[0]}/api/v1/workflows/", json={"workflow": workflow}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["workflow"]["name"] == workflow["name"]
    assert pair.lora[0].base == "sd-1" and pair.lora[0].type == "lora"
    assert pair.lora[0].key != pair.lora[1].key and pair.lora[0].hash == pair.lora[1].hash


@pytest.mark.server
@pytest.mark.slow
async def test_each_server_is_sent_its_own_model_key_and_resume_reuses_them(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair.lora
    wf = pair.workflow(a.to_identifier())  # the workflow holds server A's key
    sweep = Sweep().axis("Width", list(range(16, 48)))
    out = tmp_path / "out"
    run = BatchRun(pair.clients, wf, sweep, out)

    def stop_early(p: Progress) -> None:
        if p.done >= 6:
            run.cancel()

    run.on_progress = stop_early
    first = await run.arun()
    assert first.cancelled and first.completed < 32

    ledger = Ledger.open(out)
    models = ledger.get_meta("models")
    ledger.close()
    assert models == {
        pair.urls[0]: {
            a.key: {k: a.to_identifier()[k] for k in ("key", "hash", "name", "base", "type")}
        },
        pair.urls[1]: {
            a.key: {k: b.to_identifier()[k] for k in ("key", "hash", "name", "base", "type")}
        },
    }

    listings: list[str] = []
    real = per_server.alist_models

    async def counting(client: InvokeAIClient) -> list[IvkDnnModel]:
        listings.append(client.server_url)
        return await real(client)

    monkeypatch.setattr(per_server, "alist_models", counting)
    done = await aresume(out)
    assert listings == []  # the recorded mappings were used, nothing re-resolved
    assert done.ok and done.images == 32, done

    rows = read_manifest(out)
    assert sorted(r["run_index"] for r in rows) == list(range(32))
    assert {r["server"] for r in rows} == set(pair.urls)
    expected = {pair.urls[0]: a.key, pair.urls[1]: b.key}
    for r in rows:
        sent = pair.sent_lora(r["server"], r["item_id"])
        assert sent["key"] == expected[r["server"]], (r["server"], sent)
        assert sent["hash"] == a.hash
    assert len(list((out / "images").glob("*.png"))) == 32
    for part_dir in sorted((out / "parts").iterdir()):
        part = Ledger.open(part_dir)
        assert part.get_meta("models") == models[part.get_meta("server")]
        part.close()
    run_json = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run_json["models"][pair.urls[1]][a.key]["key"] == b.key
    assert wf.get_input_value("LoRA").key == a.key  # the handle itself is unchanged


@pytest.mark.server
@pytest.mark.slow
async def test_a_model_on_neither_server_fails_before_anything_is_sent(
    pair: Pair, tmp_path: Path
) -> None:
    ghost = {
        "key": str(uuid.uuid4()),
        "hash": "blake3:" + "e" * 64,
        "name": "ghost_lora",
        "base": "sd-1",
        "type": "lora",
    }
    wf = pair.workflow(ghost)
    before = [len(pair.queue_items(u)) for u in pair.urls]
    run = BatchRun(pair.clients, wf, Sweep().axis("Width", [16, 24, 32]), tmp_path / "out")
    with pytest.raises(ModelSyncError) as info:
        await run.arun()
    text = str(info.value)
    assert "[0] 'LoRA'" in text and "ghost_lora" in text
    assert all(u in text for u in pair.urls)
    assert [(i, label) for i, label, _ in info.value.unresolved] == [(0, "LoRA")]
    assert [len(pair.queue_items(u)) for u in pair.urls] == before
    assert not (tmp_path / "out" / "ledger.sqlite").exists()


@pytest.mark.server
@pytest.mark.slow
async def test_a_model_only_one_server_has_runs_there_only(
    pair: Pair, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wf = pair.workflow(pair.only_a.to_identifier())
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="invokeai_py_client"):
        result = await BatchRun(
            pair.clients, wf, Sweep().axis("Width", [16, 24, 32, 40]), out
        ).arun()
    assert result.ok and result.images == 4, result
    assert any(
        pair.urls[1] in rec.getMessage() and "only_a_lora" in rec.getMessage()
        for rec in caplog.records
    )
    rows = read_manifest(out)
    assert {r["server"] for r in rows} == {pair.urls[0]}
    for r in rows:
        assert pair.sent_lora(r["server"], r["item_id"])["key"] == pair.only_a.key
    ledger = Ledger.open(out)
    assert ledger.get_meta("models")[pair.urls[1]] is None
    ledger.close()


# --------------------------------------------------------------------------- deleted models


def install_both(pair: Pair, path: Path) -> list[IvkDnnModel]:
    """Install one more LoRA file on both servers (each test its own: deleting it then does
    not disturb the others)."""
    out = []
    for c in pair.clients:
        job = c.dnn_model_repo.install_model(path)
        assert job.model is not None
        out.append(job.model)
    return out


async def start_and_stop(pair: Pair, wf: Any, out: Path, count: int) -> None:
    """A 2-server run of ``count`` runs cancelled partway (both servers had parts)."""
    run = BatchRun(pair.clients, wf, Sweep().axis("Width", list(range(16, 16 + count))), out)

    def stop_early(p: Progress) -> None:
        if p.done >= 8:
            run.cancel()

    run.on_progress = stop_early
    first = await run.arun()
    assert first.cancelled and first.completed < count, first
    ledger = Ledger.open(out)
    servers = {p["server"] for p in ledger.get_meta("parts")}
    ledger.close()
    assert servers == set(pair.urls), servers


def item_ids(pair: Pair, url: str) -> set[int]:
    return {int(i["item_id"]) for i in pair.queue_items(url)}


@pytest.mark.server
@pytest.mark.slow
async def test_a_model_deleted_on_one_server_moves_its_runs_on_resume(
    pair: Pair, tmp_path: Path
) -> None:
    a, b = install_both(pair, write_lora(tmp_path / "gone_on_b.safetensors", alpha=16.0))
    wf = pair.workflow(a.to_identifier())
    out = tmp_path / "out"
    count = 40
    await start_and_stop(pair, wf, out, count)

    pair.clients[1].dnn_model_repo.delete_model(b.key)  # through the real model API
    assert pair.clients[1].dnn_model_repo.get_model_by_key(b.key) is None
    b_items = item_ids(pair, pair.urls[1])

    done = await aresume(out)
    assert done.ok and done.completed == count and done.images == count, done
    assert item_ids(pair, pair.urls[1]) == b_items  # B got nothing after the deletion

    rows = read_manifest(out)
    assert sorted(r["run_index"] for r in rows) == list(range(count))  # one image per run
    assert all(r["status"] == "completed" and r["path"] for r in rows)
    assert len(list((out / "images").glob("*.png"))) == count
    expected = {pair.urls[0]: a.key, pair.urls[1]: b.key}
    for r in rows:
        sent = pair.sent_lora(r["server"], r["item_id"])
        assert sent["key"] == expected[r["server"]] and sent["hash"] == a.hash, (r, sent)
        if r["server"] == pair.urls[1]:
            assert r["item_id"] in b_items
    ledger = Ledger.open(out)
    models = ledger.get_meta("models")
    states = [(p["server"], p["state"]) for p in ledger.get_meta("parts")]
    ledger.close()
    assert models[pair.urls[1]] is None and models[pair.urls[0]][a.key]["key"] == a.key
    assert not [s for s in states if s[1] == "running"], states


@pytest.mark.server
@pytest.mark.slow
async def test_a_model_deleted_everywhere_fails_before_sending_and_resumes_later(
    pair: Pair, tmp_path: Path
) -> None:
    lora_file = write_lora(tmp_path / "gone_everywhere.safetensors", alpha=32.0)
    a, b = install_both(pair, lora_file)
    wf = pair.workflow(a.to_identifier())
    out = tmp_path / "out"
    count = 40
    await start_and_stop(pair, wf, out, count)
    rows_before = read_manifest(out)
    ledger = Ledger.open(out)
    meta_before = {k: ledger.get_meta(k) for k in ("parts", "models")}
    ledger.close()

    pair.clients[0].dnn_model_repo.delete_model(a.key)
    pair.clients[1].dnn_model_repo.delete_model(b.key)
    items_before = [item_ids(pair, u) for u in pair.urls]

    with pytest.raises(ModelSyncError) as info:
        await aresume(out)
    text = str(info.value)
    assert "'LoRA'" in text and "gone_everywhere" in text, text
    assert all(u in text for u in pair.urls), text
    assert [(i, label) for i, label, _ in info.value.unresolved] == [(0, "LoRA")]
    assert [item_ids(pair, u) for u in pair.urls] == items_before  # nothing sent
    assert read_manifest(out) == rows_before
    ledger = Ledger.open(out)
    assert {k: ledger.get_meta(k) for k in ("parts", "models")} == meta_before
    ledger.close()

    # the model back on A only (a new key there, the same file): the run completes on A
    job = pair.clients[0].dnn_model_repo.install_model(lora_file)
    assert job.model is not None and job.model.key != a.key and job.model.hash == a.hash
    done = await aresume(out)
    assert done.ok and done.completed == count and done.images == count, done
    assert item_ids(pair, pair.urls[1]) == items_before[1]
    rows = read_manifest(out)
    assert sorted(r["run_index"] for r in rows) == list(range(count))
    assert len(list((out / "images").glob("*.png"))) == count
    made_before = {(r["server"], r["item_id"]) for r in rows_before if r["status"] == "completed"}
    for r in rows:
        sent = pair.sent_lora(r["server"], r["item_id"])
        assert sent["hash"] == a.hash, (r, sent)
        if (r["server"], r["item_id"]) in made_before:
            continue
        assert r["server"] == pair.urls[0] and sent["key"] == job.model.key, (r, sent)


def loader_workflow(pair: Pair, identifier: dict[str, Any], tmp_path: Path) -> Any:
    """The example with ``lora_loader`` (no UNet/CLIP) instead of ``lora_selector``: it checks
    that the LoRA is installed, so an item fails on a server that no longer has it."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    node = next(n for n in data["nodes"] if n["id"] == LORA_NODE)["data"]
    node.update(type="lora_loader", version="1.0.4", useCache=False)
    path = tmp_path / "lora_loader_blank.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    wf = pair.clients[0].workflow_repo.create_workflow(WorkflowDefinition.from_file(path))
    wf.get_input_value("LoRA").set_value(identifier)
    return wf


@pytest.mark.server
@pytest.mark.slow
async def test_a_model_deleted_during_the_run_stops_that_server_and_reports_its_failures(
    pair: Pair, tmp_path: Path
) -> None:
    a, b = install_both(pair, write_lora(tmp_path / "gone_midrun.safetensors", alpha=64.0))
    wf = loader_workflow(pair, a.to_identifier(), tmp_path)
    out = tmp_path / "out"
    count = 150
    run = BatchRun(pair.clients, wf, Sweep().axis("Width", list(range(16, 16 + count))), out)
    deleted: list[int] = []

    def delete_on_b(p: Progress) -> None:
        if p.done >= 4 and not deleted:
            deleted.append(max(item_ids(pair, pair.urls[1]), default=0))
            # (while B is busy the route may answer 500 after removing the record)
            httpx.delete(f"{pair.urls[1]}/api/v2/models/i/{b.key}", timeout=30)

    run.on_progress = delete_on_b
    result = await run.arun()
    assert deleted and pair.clients[1].dnn_model_repo.get_model_by_key(b.key) is None
    assert result.completed + result.failed == count and result.images == result.completed
    rows = read_manifest(out)
    assert sorted(r["run_index"] for r in rows) == list(range(count))
    failed = [r for r in rows if r["status"] == "failed"]
    for r in failed:  # reported with the server's error
        assert r["server"] == pair.urls[1] and b.key in (r["error_message"] or ""), r
    for r in rows:
        if r["status"] == "completed":
            sent = pair.sent_lora(r["server"], r["item_id"])
            assert sent["key"] == {pair.urls[0]: a.key, pair.urls[1]: b.key}[r["server"]]
    # B stopped getting parts once its items failed: its last items are in at most the
    # parts it had in flight (one enqueue each), none of them completed
    late = [i for i in pair.queue_items(pair.urls[1]) if int(i["item_id"]) > deleted[0]]
    assert failed and {i["status"] for i in late} <= {"failed", "canceled"}
    assert len({i["batch_id"] for i in late if i["status"] == "failed"}) <= 3, late
    ledger = Ledger.open(out)
    assert ledger.get_meta("models")[pair.urls[1]] is None
    ledger.close()

    # resume: failed runs stay failed (not retried), nothing is sent anywhere
    before = [item_ids(pair, u) for u in pair.urls]
    again = await aresume(out)
    assert (again.completed, again.failed) == (result.completed, result.failed), again
    assert [item_ids(pair, u) for u in pair.urls] == before
