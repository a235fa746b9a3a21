"""Installed models through the v2 API: :class:`DnnModelRepository`.

Example::

    from invokeai_py_client.dnn_model import BaseDnnModelType, DnnModelType

    repo = client.dnn_model_repo
    sdxl_mains = repo.list_models(base=BaseDnnModelType.StableDiffusionXL, type=DnnModelType.Main)
    job = repo.install_model("/models/my-embedding.safetensors")   # waits for the install
    print(job.model.key if job.model else job.error)
    repo.delete_model(job.model.key)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

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


class DnnModelRepository:
    """Models installed on the server (``/api/v2/models``). Reach it as ``client.dnn_model_repo``.

    Every call asks the server afresh (no cache): keys change between installs, names and
    hashes do not.

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
        params: dict[str, Any] = {}
        if base is not None:
            bases = [base] if isinstance(base, (str, Enum)) else list(base)
            params["base_models"] = [_text(b) for b in bases]
        if type is not None:
            params["model_type"] = _text(type)
        if name is not None:
            params["model_name"] = name
        try:
            data = self._client.http.get_json(f"{MODELS}/", params=params)
        except RequestValidationError as exc:
            raise ModelError(
                f"the server does not know one of the filters {params}: {exc}"
            ) from exc
        models = data.get("models", []) if isinstance(data, dict) else data
        return [IvkDnnModel.model_validate(m) for m in models]

    def get_model_by_key(self, key: str) -> IvkDnnModel | None:
        """The model with this key, or ``None``.

        Example::

            m = repo.get_model_by_key(models[0].key)
        """
        if not key:
            return None
        try:
            data = self._client.http.get_json(f"{MODELS}/i/{quote(key, safe='')}")
        except NotFoundError:
            return None
        return IvkDnnModel.model_validate(data)

    def get_model_by_hash(self, hash: str) -> IvkDnnModel | None:
        """The model with this content hash (e.g. ``"blake3:..."``), or ``None``."""
        if not hash:
            return None
        try:
            data = self._client.http.get_json(f"{MODELS}/get_by_hash", params={"hash": hash})
        except NotFoundError:
            return None
        return IvkDnnModel.model_validate(data)

    def get_model_by_attributes(
        self, name: str, base: BaseDnnModelType | str, type: DnnModelType | str
    ) -> IvkDnnModel | None:
        """The model with this exact name, base and type, or ``None``.

        Example::

            repo.get_model_by_attributes("juggernautXL", BaseDnnModelType.StableDiffusionXL,
                                         DnnModelType.Main)
        """
        params = {"name": name, "base": _text(base), "type": _text(type)}
        try:
            data = self._client.http.get_json(f"{MODELS}/get_by_attrs", params=params)
        except NotFoundError:
            return None
        except RequestValidationError:
            return None  # a base or type this server does not know: nothing can match
        return IvkDnnModel.model_validate(data)

    def require_model(self, key: str) -> IvkDnnModel:
        """The model with this key; raises :class:`ModelNotFoundError` when there is none."""
        model = self.get_model_by_key(key)
        if model is None:
            raise ModelNotFoundError(
                f"no installed model with key {key!r}; keys change between installs, "
                "look the model up by hash or name instead"
            )
        return model

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
        path = Path(source).expanduser()
        if path.exists():
            source_text = str(path.resolve())  # the server resolves paths from its own cwd
        elif isinstance(source, Path) or str(source).startswith(("/", "./", "../", "~")):
            raise ModelInstallError(f"cannot install {str(path)!r}: no such file or folder")
        else:
            source_text = str(source)  # a URL or a HuggingFace repo id
        try:
            resp = self._client.http.request(
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
            raise ModelInstallError(
                f"the server refused to install {source_text!r}: {exc}"
            ) from exc
        job = ModelInstallJob.model_validate(resp.json())
        if not wait:
            return job
        return self.wait_for_install(job.id, timeout=timeout, poll_interval=poll_interval)

    def get_install_job(self, job_id: int) -> ModelInstallJob:
        """The current state of an install job."""
        try:
            return ModelInstallJob.model_validate(
                self._client.http.get_json(f"{MODELS}/install/{int(job_id)}")
            )
        except NotFoundError as exc:
            raise ModelInstallError(f"no model install job with id {job_id}") from exc

    def wait_for_install(
        self, job_id: int, *, timeout: float = 600.0, poll_interval: float = 0.2
    ) -> ModelInstallJob:
        """Poll an install job until it ends; raise :class:`ModelInstallError` unless completed."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_install_job(job_id)
            if job.done:
                break
            if time.monotonic() >= deadline:
                raise ModelInstallError(
                    f"model install job {job_id} still {job.status!r} after {timeout:g} s; "
                    f"call wait_for_install({job_id}) to keep waiting"
                )
            time.sleep(poll_interval)
        if job.status != "completed":
            raise ModelInstallError(
                f"installing {job.source_text()!r} failed ({job.status}): {job.error_text()}"
            )
        return job

    def delete_model(self, key: str) -> bool:
        """Delete a model record (and its files unless installed in place).

        Raises :class:`ModelNotFoundError` when there is no model with that key.
        """
        try:
            self._client.http.request("DELETE", f"{MODELS}/i/{quote(key, safe='')}")
        except NotFoundError as exc:
            raise ModelNotFoundError(f"no installed model with key {key!r} to delete") from exc
        except ServerError:
            # InvokeAI 6.14 deletes the model, then fails to send its empty 204 answer
            # through its gzip middleware (HTTP 500). The record being gone is the answer.
            if self.get_model_by_key(key) is not None:
                raise
        return True
