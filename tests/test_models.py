"""Model repository, taxonomy and sync_dnn_model, with real model records.

Tiny safetensors files the server's probe accepts are generated here and installed in place:
``emb_params`` [2, 768] is an sd-1 embedding, ``clip_l`` [2, 768] + ``clip_g`` [2, 1280] an
sdxl embedding (DESIGN.md section 6).
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.dnn_model import (
    BaseDnnModelType,
    DnnModelFormat,
    DnnModelRepository,
    DnnModelType,
    IvkDnnModel,
    resolve_model,
    sync_dnn_model,
)
from invokeai_py_client.exceptions import (
    ModelError,
    ModelInstallError,
    ModelNotFoundError,
    ModelSyncError,
)
from invokeai_py_client.ivk_fields import IvkModelIdentifierField
from invokeai_py_client.ivk_fields.model_conversion import to_ivk_model_field
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.workflow import WorkflowDefinition, WorkflowHandle

DATA = Path(__file__).parent / "data"
SD1_NAME = "ivk-test-sd1-embedding"
SDXL_NAME = "ivk-test-sdxl-embedding"


def write_embedding(path: Path, kind: str) -> Path:
    """A tiny, unique (random) embedding file of the given kind: ``sd1`` or ``sdxl``."""
    rng = np.random.default_rng()
    if kind == "sd1":
        tensors = {"emb_params": rng.standard_normal((2, 768)).astype(np.float32)}
    elif kind == "sdxl":
        tensors = {
            "clip_l": rng.standard_normal((2, 768)).astype(np.float32),
            "clip_g": rng.standard_normal((2, 1280)).astype(np.float32),
        }
    else:
        tensors = {"something_else": rng.standard_normal((3, 5)).astype(np.float32)}
    save_file(tensors, str(path))
    return path


class Installed:
    def __init__(self, client: InvokeAIClient, sd1: IvkDnnModel, sdxl: IvkDnnModel) -> None:
        self.client = client
        self.sd1 = sd1
        self.sdxl = sdxl


@pytest.fixture(scope="module")
def installed(server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    folder = tmp_path_factory.mktemp("models")
    with InvokeAIClient.from_url(server.url) as client:
        repo = client.dnn_model_repo
        job1 = repo.install_model(
            write_embedding(folder / "sd1.safetensors", "sd1"),
            config={"name": SD1_NAME},
            timeout=120,
        )
        job2 = repo.install_model(
            write_embedding(folder / "sdxl.safetensors", "sdxl"),
            config={"name": SDXL_NAME},
            timeout=120,
        )
        assert job1.model is not None and job2.model is not None
        yield Installed(client, job1.model, job2.model)
        for m in (job1.model, job2.model):
            if repo.get_model_by_key(m.key) is not None:
                repo.delete_model(m.key)


def load_model_workflow() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "model_identifier.json").read_text())
    return data


def model_handle(client: InvokeAIClient, data: dict[str, Any] | None = None) -> WorkflowHandle:
    definition = WorkflowDefinition.from_dict(data or load_model_workflow())
    return client.workflow_repo.create_workflow(definition)


def set_saved_model(data: dict[str, Any], index: int, **values: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["nodes"][index]["data"]["inputs"]["model"]["value"].update(values)
    return data


# ---------------------------------------------------------------------------- pure


def test_unknown_base_and_type_stay_strings() -> None:
    m = IvkDnnModel.model_validate(
        {
            "key": "k",
            "hash": "h",
            "name": "n",
            "base": "hologram-9",
            "type": "mind_reader",
            "format": "quantum",
            "variant": "x",
            "brand_new_field": [1],
        }
    )
    assert m.base == "hologram-9" and isinstance(m.base, str)
    assert m.type == "mind_reader" and m.format == "quantum"
    assert m.model_extra == {"variant": "x", "brand_new_field": [1]}
    known = IvkDnnModel.model_validate({"key": "k", "base": "sdxl", "type": "main"})
    assert known.base is BaseDnnModelType.StableDiffusionXL and known.type is DnnModelType.Main
    assert known.base == "sdxl" and known.is_main_model()
    assert known.is_compatible_with_base(BaseDnnModelType.StableDiffusionXL)
    assert known.is_compatible_with_base("sdxl")
    assert not known.is_compatible_with_base(BaseDnnModelType.Flux)
    anybase = IvkDnnModel.model_validate({"key": "k", "base": "any", "type": "vae"})
    assert anybase.is_compatible_with_base(BaseDnnModelType.Flux)
    assert DnnModelType.T5Encoder == "t5_encoder" and DnnModelType.CLIPEmbed == "clip_embed"
    assert BaseDnnModelType.Flux == "flux" and DnnModelType.VAE == "vae"


def test_to_ivk_model_field() -> None:
    m = IvkDnnModel.model_validate(
        {"key": "k1", "hash": "blake3:x", "name": "n", "base": "sdxl", "type": "main"}
    )
    f = to_ivk_model_field(m)
    assert isinstance(f, IvkModelIdentifierField)
    assert f.to_api_value() == {
        "key": "k1",
        "hash": "blake3:x",
        "name": "n",
        "base": "sdxl",
        "type": "main",
    }
    assert to_ivk_model_field(m.to_identifier()).to_api_value() == f.to_api_value()
    assert to_ivk_model_field(f) is not f
    with pytest.raises(ValueError, match="key"):
        to_ivk_model_field({"name": "no key"})


def test_resolve_model_order() -> None:
    models = [
        IvkDnnModel(key="a", hash="h1", name="alpha", base="sdxl", type="main"),
        IvkDnnModel(key="b", hash="h2", name="beta", base="sdxl", type="main"),
        IvkDnnModel(key="c", hash="h3", name="beta", base="sd-1", type="main"),
    ]
    f = IvkModelIdentifierField(key="zz", hash="h2", name="alpha", base="sd-1", type="main")
    assert resolve_model(f, models)[0].key == "b"  # type: ignore[union-attr]
    f = IvkModelIdentifierField(key="zz", hash="nope", name="beta", base="sd-1", type="main")
    assert resolve_model(f, models) == (models[2], "name")
    f = IvkModelIdentifierField(key="zz", hash="nope", name="gone", base="sdxl", type="main")
    assert resolve_model(f, models) == (models[0], "base")
    model, why = resolve_model(f, models, by_base=False)
    assert model is None and "name 'gone'" in why
    f = IvkModelIdentifierField(key="zz", hash="nope", name="gone", base="flux", type="main")
    assert resolve_model(f, models)[0] is None


# ---------------------------------------------------------------------------- server


@pytest.mark.server
def test_install_probes_tiny_embeddings(installed: Installed) -> None:
    sd1, sdxl = installed.sd1, installed.sdxl
    assert (sd1.name, sd1.base, sd1.type) == (
        SD1_NAME,
        BaseDnnModelType.StableDiffusion1,
        DnnModelType.TextualInversion,
    )
    assert sd1.format == DnnModelFormat.EmbeddingFile
    assert (sdxl.name, sdxl.base, sdxl.type) == (
        SDXL_NAME,
        BaseDnnModelType.StableDiffusionXL,
        DnnModelType.Embedding,
    )
    assert sd1.key and sd1.hash and sd1.key != sdxl.key


@pytest.mark.server
def test_list_and_filters(installed: Installed) -> None:
    repo: DnnModelRepository = installed.client.dnn_model_repo
    keys = {m.key for m in repo.list_models()}
    assert {installed.sd1.key, installed.sdxl.key} <= keys
    sd1_only = repo.list_models(base=BaseDnnModelType.StableDiffusion1)
    assert installed.sd1.key in {m.key for m in sd1_only}
    assert all(m.base == "sd-1" for m in sd1_only)
    both = repo.list_models(base=["sd-1", "sdxl"], type=DnnModelType.Embedding)
    assert {installed.sd1.key, installed.sdxl.key} <= {m.key for m in both}
    assert repo.list_models(type=DnnModelType.Main) == []
    assert [m.key for m in repo.list_models(name=SDXL_NAME)] == [installed.sdxl.key]
    flux = [m for m in repo.list_models() if m.is_compatible_with_base(BaseDnnModelType.Flux)]
    assert flux == []
    with pytest.raises(ModelError, match="filters"):
        repo.list_models(base="no-such-base")


@pytest.mark.server
def test_get_by_key_hash_attributes(installed: Installed) -> None:
    repo = installed.client.dnn_model_repo
    sd1 = installed.sd1
    assert repo.get_model_by_key(sd1.key) == sd1
    assert repo.get_model_by_hash(sd1.hash).key == sd1.key  # type: ignore[union-attr]
    got = repo.get_model_by_attributes(SD1_NAME, BaseDnnModelType.StableDiffusion1, "embedding")
    assert got is not None and got.key == sd1.key
    assert repo.get_model_by_key("no-such-key") is None
    assert repo.get_model_by_hash("blake3:nope") is None
    assert repo.get_model_by_attributes(SD1_NAME, "sdxl", "embedding") is None
    assert repo.get_model_by_attributes(SD1_NAME, "future-base", "embedding") is None
    with pytest.raises(ModelNotFoundError):
        repo.require_model("no-such-key")


@pytest.mark.server
def test_install_errors_and_delete(
    client: InvokeAIClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = client.dnn_model_repo
    monkeypatch.chdir(tmp_path)
    write_embedding(tmp_path / "relative.safetensors", "sd1")
    rel = repo.install_model("relative.safetensors", timeout=120).model
    assert rel is not None and rel.name == "relative"
    repo.delete_model(rel.key)
    with pytest.raises(ModelInstallError, match="no such file"):
        repo.install_model(tmp_path / "missing.safetensors")
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    with pytest.raises(ModelInstallError, match="No model files") as err:
        repo.install_model(empty, timeout=120)
    assert str(empty) in str(err.value)

    job = repo.install_model(
        write_embedding(tmp_path / f"{uuid.uuid4().hex}.safetensors", "sd1"), wait=False
    )
    assert job.id >= 0
    done = repo.wait_for_install(job.id, timeout=120)
    assert done.status == "completed" and done.model is not None
    key = done.model.key
    assert repo.delete_model(key) is True
    assert repo.get_model_by_key(key) is None
    with pytest.raises(ModelNotFoundError):
        repo.delete_model(key)


@pytest.mark.server
def test_duplicate_install_and_unknown_kinds_list(client: InvokeAIClient, tmp_path: Path) -> None:
    """A file the probe cannot classify installs as base/type "unknown"; listing copes."""
    repo = client.dnn_model_repo
    path = write_embedding(tmp_path / "mystery.safetensors", "unknown")
    model = repo.install_model(path, timeout=120).model
    assert model is not None
    try:
        with pytest.raises(ModelInstallError, match="already installed"):
            repo.install_model(path, timeout=120)
        listed = {m.key: m for m in repo.list_models()}
        assert listed[model.key].base == "unknown" and listed[model.key].type == "unknown"
        assert listed[model.key].name == "mystery"
    finally:
        repo.delete_model(model.key)


# ---------------------------------------------------------------------------- sync


@pytest.mark.server
def test_sync_by_hash_name_and_base(installed: Installed) -> None:
    client = installed.client
    base_data = load_model_workflow()
    # input 0: right hash, stale key and name -> by hash
    data = set_saved_model(base_data, 0, hash=installed.sd1.hash, name="renamed-elsewhere")
    # input 1: wrong hash, right name -> by name and type
    wf = model_handle(client, data)
    before = copy.deepcopy(wf.definition.to_dict())
    changed = wf.sync_dnn_model(by_name=True, by_base=True)
    assert len(changed) == 2
    (orig0, new0), (orig1, new1) = changed
    assert orig0.name == "renamed-elsewhere" and new0.name == SD1_NAME  # type: ignore[attr-defined]
    assert new0.key == installed.sd1.key and new1.key == installed.sdxl.key  # type: ignore[attr-defined]
    assert orig1.key == "7d3e9a11-stale-key-from-another-install"  # type: ignore[attr-defined]
    assert wf.get_input_value(0).to_api_value()["key"] == installed.sd1.key
    assert wf.get_input_value(1).to_api_value()["hash"] == installed.sdxl.hash
    assert wf.definition.to_dict() == before  # the definition is never changed

    # already in sync: nothing changes
    assert wf.sync_dnn_model() == []

    # the payload carries the resolved identifiers and the server runs it
    body = wf.build_payload()
    nodes = body["batch"]["graph"]["nodes"]
    assert {n["model"]["key"] for n in nodes.values()} == {installed.sd1.key, installed.sdxl.key}
    resp = client.http.request("POST", "/api/v1/queue/default/enqueue_batch", json=body).json()
    item_id = resp["item_ids"][0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        item = client.http.get_json(f"/api/v1/queue/default/i/{item_id}")
        if item["status"] in ("completed", "failed", "canceled"):
            break
        time.sleep(0.1)
    assert item["status"] == "completed", item.get("error_message")


@pytest.mark.server
def test_sync_by_base_only_when_allowed(installed: Installed) -> None:
    data = set_saved_model(load_model_workflow(), 1, name="not-installed-anywhere")
    wf = model_handle(installed.client, data)
    with pytest.raises(ModelSyncError) as err:
        wf.sync_dnn_model(by_name=True, by_base=False)
    assert [(i, label) for i, label, _ in err.value.unresolved] == [(1, "SDXL Embedding")]
    assert "[1] 'SDXL Embedding'" in str(err.value)
    # nothing changed, not even the resolvable input 0
    assert wf.get_input_value(0).key == "0b5f0c3e-stale-key-from-another-install"  # type: ignore[attr-defined]

    changed = sync_dnn_model(wf, by_name=True, by_base=True)
    assert {new.key for _, new in changed} == {installed.sd1.key, installed.sdxl.key}


@pytest.mark.server
def test_sync_all_or_nothing_lists_every_unresolved(installed: Installed) -> None:
    data = set_saved_model(load_model_workflow(), 0, name="nope-a", base="flux")
    data = set_saved_model(data, 1, name="nope-b", base="sd-3")
    wf = model_handle(installed.client, data)
    before = [wf.get_input_value(i).to_api_value() for i in (0, 1)]
    with pytest.raises(ModelSyncError) as err:
        wf.sync_dnn_model()
    assert [(i, label) for i, label, _ in err.value.unresolved] == [
        (0, "SD1 Embedding"),
        (1, "SDXL Embedding"),
    ]
    assert "nothing was changed" in str(err.value)
    assert [wf.get_input_value(i).to_api_value() for i in (0, 1)] == before

    # one resolvable (by name), one not: still nothing changes
    data = set_saved_model(load_model_workflow(), 1, name="nope-b", base="sd-3")
    wf = model_handle(installed.client, data)
    with pytest.raises(ModelSyncError) as err:
        wf.sync_dnn_model()
    assert [i for i, _, _ in err.value.unresolved] == [1]
    assert wf.get_input_value(0).key == "0b5f0c3e-stale-key-from-another-install"  # type: ignore[attr-defined]


@pytest.mark.server
def test_seed_style_binding(installed: Installed) -> None:
    """The guides' pattern: pick from list_models, bind with to_ivk_model_field."""
    client = installed.client
    wf = model_handle(client)
    models = client.dnn_model_repo.list_models()

    def pick(pred: Any) -> IvkDnnModel | None:
        return next((m for m in models if pred(m)), None)

    sdxl_emb = pick(
        lambda m: (
            m.type == DnnModelType.TextualInversion and m.base == BaseDnnModelType.StableDiffusionXL
        )
    )
    assert sdxl_emb is not None
    lookup = {(inp.node_id, inp.field_name): inp.input_index for inp in wf.list_inputs()}
    idx = lookup[("9b1c7d42-2e8a-4c61-b0d3-7a6e4f2c9b02", "model")]
    wf.set_input_value(idx, to_ivk_model_field(sdxl_emb))
    assert wf.get_input_value(idx).to_api_value()["key"] == sdxl_emb.key


def test_sync_offline_needs_models_or_client() -> None:
    wf = WorkflowHandle(WorkflowDefinition.from_dict(load_model_workflow()))
    with pytest.raises(ModelError, match="bound to a client"):
        sync_dnn_model(wf)
    models = [
        IvkDnnModel(key="k-sd1", hash="h1", name=SD1_NAME, base="sd-1", type="embedding"),
        IvkDnnModel(key="k-sdxl", hash="h2", name="other", base="sdxl", type="embedding"),
    ]
    changed = sync_dnn_model(wf, models=models)
    assert [new.key for _, new in changed] == ["k-sd1", "k-sdxl"]  # by name, then by base
    with pytest.raises(ModelSyncError):
        sync_dnn_model(wf, by_base=False, models=models[:1])


@pytest.mark.server
def test_seed_model_snippets_run_as_written(installed: Installed) -> None:
    client = installed.client
    models = client.dnn_model_repo.list_models()
    flux_models = [m for m in models if m.is_compatible_with_base(BaseDnnModelType.Flux)]
    print("Flux-compatible models:", [m.name for m in flux_models])

    # Single model lookup (None if missing)
    one = client.dnn_model_repo.get_model_by_key(models[0].key)
    print("Example model:", one)
    assert one == models[0]

    def pick(pred: Any) -> IvkDnnModel | None:
        return next((m for m in models if pred(m)), None)

    sdxl_main = pick(
        lambda m: m.type == DnnModelType.Main and m.base == BaseDnnModelType.StableDiffusionXL
    )
    t5_encoder = pick(lambda m: m.type == DnnModelType.T5Encoder)
    clip_embed = pick(lambda m: m.type == DnnModelType.CLIPEmbed)
    flux_vae = pick(lambda m: m.type == DnnModelType.VAE and m.base == BaseDnnModelType.Flux)
    assert (sdxl_main, t5_encoder, clip_embed, flux_vae) == (None, None, None, None)

    wf = model_handle(client)
    changed = wf.sync_dnn_model(by_name=True, by_base=True)
    for original, resolved in changed:
        print(f"Updated model: {original.name} -> {resolved.name}")  # type: ignore[attr-defined]
    wf.sync_dnn_model(by_name=True, by_base=False)
    field_model = wf.get_input_value(0)
    if hasattr(field_model, "name"):
        field_model.name = SD1_NAME
    assert wf.get_input_value(0).to_api_value()["key"] == installed.sd1.key
