"""Installed models through the v2 API: :class:`DnnModelRepository`.

Example::

    from invokeai_py_client.dnn_model import BaseDnnModelType, DnnModelType

    repo = client.dnn_model_repo
    sdxl_mains = repo.list_models(base=BaseDnnModelType.StableDiffusionXL, type=DnnModelType.Main)
    job = repo.install_model("/models/my-embedding.safetensors")   # waits for the install
    print(job.model.key if job.model else job.error)
    repo.delete_model(job.model.key)

Every method has an asyncio twin named with an ``a`` in front (``await repo.alist_models()``,
``await repo.ainstall_model(path)``): same arguments, results and errors, one body of steps
shared by both (:mod:`.._steps`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from .._steps import StepRunner, Steps, get_json, pause, request
from ..exceptions import (
    APIError,
    ConflictError,
    ModelError,
    ModelInstallError,
    ModelNotFoundError,
    NotFoundError,
    RequestValidationError,
    ServerError,
)
from .models import BaseDnnModelType, DnnModelType, IvkDnnModel

if TYPE_CHECKING:
    from ..client import InvokeAIClient

__all__ = ["DnnModelRepository", "ModelInstallJob"]

MODELS = "/api/v2/models"
_FINAL_INSTALL_STATES = frozenset({"completed", "error", "cancelled"})


def _text(value: Any) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


class ModelInstallJob(BaseModel):
    """A model install job as the server reports it.

    ``status`` is ``waiting | downloading | downloads_done | running | paused | completed |
    error | cancelled``; ``model`` is the installed record once completed.
    """

    model_config = ConfigDict(extra="allow")

    id: int
    status: str
    source: Any = None
    error: str | None = None
    error_reason: str | None = None
    error_traceback: str | None = None
    config_out: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        """True once the job stopped (completed, error or cancelled)."""
        return self.status in _FINAL_INSTALL_STATES

    @property
    def model(self) -> IvkDnnModel | None:
        """The installed model's record (``None`` until the job completed)."""
        if self.status != "completed" or not self.config_out:
            return None
        return IvkDnnModel.model_validate(self.config_out)

    def source_text(self) -> str:
        """The install source as text (a local path, URL or repo id)."""
        if isinstance(self.source, dict):
            for k in ("path", "url", "repo_id"):
                if self.source.get(k):
                    return str(self.source[k])
        return str(self.source)

    def error_text(self) -> str:
        """The server's reason for a failed job, in one line."""
        parts = [p for p in (self.error_reason, self.error) if p]
        return ": ".join(parts) if parts else f"install job ended with status {self.status!r}"


class DnnModelRepository(StepRunner):
    """Models installed on the server (``/api/v2/models``). Reach it as ``client.dnn_model_repo``.

    Every call asks the server afresh (no cache): keys change between installs, names and
    hashes do not. Each method has an asyncio twin with an ``a`` in front (``alist_models``,
    ``aget_model_by_key``...): same arguments, results and errors.

    Example::

        models = client.dnn_model_repo.list_models()
        flux = [m for m in models if m.is_compatible_with_base(BaseDnnModelType.Flux)]
    """

    def __init__(self, client: InvokeAIClient) -> None:
        self._client = client

    # ------------------------------------------------------------------ lookups

    def list_models(
        self,
        base: BaseDnnModelType | str | Iterable[BaseDnnModelType | str] | None = None,
        type: DnnModelType | str | None = None,
        *,
        name: str | None = None,
    ) -> list[IvkDnnModel]:
        """Installed models, optionally filtered by base(s), type and exact name (one request).

        Example::

            repo.list_models()                                          # everything
            repo.list_models(base="sdxl", type=DnnModelType.Main)      # SDXL main models
            repo.list_models(base=["sd-1", "sdxl"], type="embedding")
        """
        return self._run(_list_models(base, type, name))

    async def alist_models(
        self,
        base: BaseDnnModelType | str | Iterable[BaseDnnModelType | str] | None = None,
        type: DnnModelType | str | None = None,
        *,
        name: str | None = None,
    ) -> list[IvkDnnModel]:
        """Asyncio twin of :meth:`list_models` (:class:`ModelError` for an unknown filter).

        Example::

            sdxl_mains = await repo.alist_models(base="sdxl", type=DnnModelType.Main)
        """
        return await self._arun(_list_models(base, type, name))

    def get_model_by_key(self, key: str) -> IvkDnnModel | None:
        """The model with this key, or ``None``.

        Example::

            m = repo.get_model_by_key(models[0].key)
        """
        return self._run(_get_model_by_key(key))

    async def aget_model_by_key(self, key: str) -> IvkDnnModel | None:
        """Asyncio twin of :meth:`get_model_by_key`.

        Example::

            m = await repo.aget_model_by_key(key)
        """
        return await self._arun(_get_model_by_key(key))

    def get_model_by_hash(self, hash: str) -> IvkDnnModel | None:
        """The model with this content hash (e.g. ``"blake3:..."``), or ``None``."""
        return self._run(_get_model_by_hash(hash))

    async def aget_model_by_hash(self, hash: str) -> IvkDnnModel | None:
        """Asyncio twin of :meth:`get_model_by_hash`.

        Example::

            m = await repo.aget_model_by_hash("blake3:...")
        """
        return await self._arun(_get_model_by_hash(hash))

    def get_model_by_attributes(
        self, name: str, base: BaseDnnModelType | str, type: DnnModelType | str
    ) -> IvkDnnModel | None:
        """The model with this exact name, base and type, or ``None``.

        Example::

            repo.get_model_by_attributes("juggernautXL", BaseDnnModelType.StableDiffusionXL,
                                         DnnModelType.Main)
        """
        return self._run(_get_model_by_attributes(name, base, type))

    async def aget_model_by_attributes(
        self, name: str, base: BaseDnnModelType | str, type: DnnModelType | str
    ) -> IvkDnnModel | None:
        """Asyncio twin of :meth:`get_model_by_attributes`.

        Example::

            m = await repo.aget_model_by_attributes("juggernautXL", "sdxl", "main")
        """
        return await self._arun(_get_model_by_attributes(name, base, type))

    def require_model(self, key: str) -> IvkDnnModel:
        """The model with this key; raises :class:`ModelNotFoundError` when there is none."""
        return self._run(_require_model(key))

    async def arequire_model(self, key: str) -> IvkDnnModel:
        """Asyncio twin of :meth:`require_model` (:class:`ModelNotFoundError` when missing).

        Example::

            m = await repo.arequire_model(key)
        """
        return await self._arun(_require_model(key))

    # ------------------------------------------------------------------ install / delete

    def install_model(
        self,
        source: str | Path,
        *,
        inplace: bool = True,
        wait: bool = True,
        timeout: float = 600.0,
        poll_interval: float = 0.2,
        config: dict[str, Any] | None = None,
    ) -> ModelInstallJob:
        """Install a model from a local path (or a URL / HuggingFace repo id).

        With ``wait`` (the default) it polls the install job until it ends and raises
        :class:`ModelInstallError` with the server's reason when it fails. ``config``
        overrides probed values (``{"name": ..., "description": ...}``).

        Example::

            job = repo.install_model("/data/embeddings/my-style.safetensors")
            print(job.model.name, job.model.base, job.model.type)
        """
        steps = _install_model(source, inplace, wait, timeout, poll_interval, config)
        return self._run(steps)

    async def ainstall_model(
        self,
        source: str | Path,
        *,
        inplace: bool = True,
        wait: bool = True,
        timeout: float = 600.0,
        poll_interval: float = 0.2,
        config: dict[str, Any] | None = None,
    ) -> ModelInstallJob:
        """Asyncio twin of :meth:`install_model` (polls with ``asyncio.sleep``).

        Example::

            job = await repo.ainstall_model("/data/embeddings/my-style.safetensors")
        """
        steps = _install_model(source, inplace, wait, timeout, poll_interval, config)
        return await self._arun(steps)

    def get_install_job(self, job_id: int) -> ModelInstallJob:
        """The current state of an install job."""
        return self._run(_get_install_job(job_id))

    async def aget_install_job(self, job_id: int) -> ModelInstallJob:
        """Asyncio twin of :meth:`get_install_job`.

        Example::

            print((await repo.aget_install_job(job.id)).status)
        """
        return await self._arun(_get_install_job(job_id))

    def wait_for_install(
        self, job_id: int, *, timeout: float = 600.0, poll_interval: float = 0.2
    ) -> ModelInstallJob:
        """Poll an install job until it ends; raise :class:`ModelInstallError` unless completed."""
        return self._run(_wait_for_install(job_id, timeout, poll_interval))

    async def await_for_install(
        self, job_id: int, *, timeout: float = 600.0, poll_interval: float = 0.2
    ) -> ModelInstallJob:
        """Asyncio twin of :meth:`wait_for_install` (the ``a`` prefix makes it ``await_...``).

        Example::

            job = await repo.ainstall_model(path, wait=False)
            done = await repo.await_for_install(job.id, timeout=120)
        """
        return await self._arun(_wait_for_install(job_id, timeout, poll_interval))

    def delete_model(self, key: str) -> bool:
        """Delete a model record (and its files unless installed in place).

        Raises :class:`ModelNotFoundError` when there is no model with that key.
        """
        return self._run(_delete_model(key))

    async def adelete_model(self, key: str) -> bool:
        """Asyncio twin of :meth:`delete_model` (:class:`ModelNotFoundError` when missing).

        Example::

            await repo.adelete_model(job.model.key)
        """
        return await self._arun(_delete_model(key))


# ---------------------------------------------------------------------------- operations
# Each is written once as steps (see _steps.py); DnnModelRepository runs it blocking or async.


def _list_models(
    base: BaseDnnModelType | str | Iterable[BaseDnnModelType | str] | None,
    type: DnnModelType | str | None,
    name: str | None,
) -> Steps[list[IvkDnnModel]]:
    params: dict[str, Any] = {}
    if base is not None:
        bases = [base] if isinstance(base, (str, Enum)) else list(base)
        params["base_models"] = [_text(b) for b in bases]
    if type is not None:
        params["model_type"] = _text(type)
    if name is not None:
        params["model_name"] = name
    try:
        data = yield from get_json(f"{MODELS}/", params=params)
    except RequestValidationError as exc:
        raise ModelError(f"the server does not know one of the filters {params}: {exc}") from exc
    models = data.get("models", []) if isinstance(data, dict) else data
    return [IvkDnnModel.model_validate(m) for m in models]


def _get_model_by_key(key: str) -> Steps[IvkDnnModel | None]:
    if not key:
        return None
    try:
        data = yield from get_json(f"{MODELS}/i/{quote(key, safe='')}")
    except NotFoundError:
        return None
    return IvkDnnModel.model_validate(data)


def _get_model_by_hash(hash: str) -> Steps[IvkDnnModel | None]:
    if not hash:
        return None
    try:
        data = yield from get_json(f"{MODELS}/get_by_hash", params={"hash": hash})
    except NotFoundError:
        return None
    return IvkDnnModel.model_validate(data)


def _get_model_by_attributes(
    name: str, base: BaseDnnModelType | str, type: DnnModelType | str
) -> Steps[IvkDnnModel | None]:
    params = {"name": name, "base": _text(base), "type": _text(type)}
    try:
        data = yield from get_json(f"{MODELS}/get_by_attrs", params=params)
    except NotFoundError:
        return None
    except RequestValidationError:
        return None  # a base or type this server does not know: nothing can match
    return IvkDnnModel.model_validate(data)


def _require_model(key: str) -> Steps[IvkDnnModel]:
    model = yield from _get_model_by_key(key)
    if model is None:
        raise ModelNotFoundError(
            f"no installed model with key {key!r}; keys change between installs, "
            "look the model up by hash or name instead"
        )
    return model


def _install_model(
    source: str | Path,
    inplace: bool,
    wait: bool,
    timeout: float,
    poll_interval: float,
    config: dict[str, Any] | None,
) -> Steps[ModelInstallJob]:
    path = Path(source).expanduser()
    if path.exists():
        source_text = str(path.resolve())  # the server resolves paths from its own cwd
    elif isinstance(source, Path) or str(source).startswith(("/", "./", "../", "~")):
        raise ModelInstallError(f"cannot install {str(path)!r}: no such file or folder")
    else:
        source_text = str(source)  # a URL or a HuggingFace repo id
    try:
        resp = yield from request(
            "POST",
            f"{MODELS}/install",
            params={"source": source_text, "inplace": inplace},
            json=dict(config or {}),
            retry=False,
        )
    except ConflictError as exc:
        raise ModelInstallError(
            f"cannot install {source_text!r}: {exc.detail or 'already installed'}"
        ) from exc
    except APIError as exc:
        raise ModelInstallError(f"the server refused to install {source_text!r}: {exc}") from exc
    job = ModelInstallJob.model_validate(resp.json())
    if not wait:
        return job
    return (yield from _wait_for_install(job.id, timeout, poll_interval))


def _get_install_job(job_id: int) -> Steps[ModelInstallJob]:
    try:
        data = yield from get_json(f"{MODELS}/install/{int(job_id)}")
    except NotFoundError as exc:
        raise ModelInstallError(f"no model install job with id {job_id}") from exc
    return ModelInstallJob.model_validate(data)


def _wait_for_install(job_id: int, timeout: float, poll_interval: float) -> Steps[ModelInstallJob]:
    deadline = time.monotonic() + timeout
    while True:
        job = yield from _get_install_job(job_id)
        if job.done:
            break
        if time.monotonic() >= deadline:
            raise ModelInstallError(
                f"model install job {job_id} still {job.status!r} after {timeout:g} s; "
                f"call wait_for_install({job_id}) to keep waiting"
            )
        yield from pause(poll_interval)
    if job.status != "completed":
        raise ModelInstallError(
            f"installing {job.source_text()!r} failed ({job.status}): {job.error_text()}"
        )
    return job


def _delete_model(key: str) -> Steps[bool]:
    try:
        yield from request("DELETE", f"{MODELS}/i/{quote(key, safe='')}")
    except NotFoundError as exc:
        raise ModelNotFoundError(f"no installed model with key {key!r} to delete") from exc
    except ServerError:
        # InvokeAI 6.14 deletes the model, then fails to send its empty 204 answer
        # through its gzip middleware (HTTP 500). The record being gone is the answer.
        if (yield from _get_model_by_key(key)) is not None:
            raise
    return True
