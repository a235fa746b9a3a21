"""Model taxonomy (base, type, format enums) and the model record :class:`IvkDnnModel`.

"DNN model" means a neural-network model installed on the server, as opposed to a pydantic
data model. InvokeAI adds base and type values with every release: a value this library does
not know stays a plain string instead of breaking a listing.

Example::

    from invokeai_py_client.dnn_model import BaseDnnModelType, DnnModelType

    m = client.dnn_model_repo.list_models()[0]
    sdxl = BaseDnnModelType.StableDiffusionXL
    if m.type == DnnModelType.Main and m.is_compatible_with_base(sdxl):
        print("SDXL main model:", m.name)
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "BaseDnnModelType",
    "DnnModel",
    "DnnModelFormat",
    "DnnModelType",
    "IvkDnnModel",
    "SubModelType",
]


class DnnModelType(StrEnum):
    """A model's type (InvokeAI's ``ModelType``); compares equal to its string value."""

    ONNX = "onnx"
    Main = "main"
    VAE = "vae"
    LoRA = "lora"
    ControlLoRa = "control_lora"
    ControlNet = "controlnet"
    TextualInversion = "embedding"
    Embedding = "embedding"  # alias of TextualInversion
    IPAdapter = "ip_adapter"
    CLIPVision = "clip_vision"
    CLIPEmbed = "clip_embed"
    T2IAdapter = "t2i_adapter"
    T5Encoder = "t5_encoder"
    Qwen3Encoder = "qwen3_encoder"
    QwenVLEncoder = "qwen_vl_encoder"
    Qwen3VLEncoder = "qwen3_vl_encoder"
    MistralEncoder = "mistral_encoder"
    WanT5Encoder = "wan_t5_encoder"
    Gemma2Encoder = "gemma2_encoder"
    SpandrelImageToImage = "spandrel_image_to_image"
    SigLIP = "siglip"
    FluxRedux = "flux_redux"
    LlavaOnevision = "llava_onevision"
    PromptEnhancer = "prompt_enhancer"
    TextLLM = "text_llm"
    ExternalImageGenerator = "external_image_generator"
    PiDDecoder = "pid_decoder"
    Unknown = "unknown"


class BaseDnnModelType(StrEnum):
    """A model's base architecture (InvokeAI's ``BaseModelType``)."""

    Any = "any"
    StableDiffusion1 = "sd-1"
    StableDiffusion2 = "sd-2"
    StableDiffusion3 = "sd-3"
    StableDiffusionXL = "sdxl"
    StableDiffusionXLRefiner = "sdxl-refiner"
    Flux = "flux"
    Flux2 = "flux2"
    FluxKontext = "flux-kontext"
    CogView4 = "cogview4"
    ZImage = "z-image"
    ErnieImage = "ernie-image"
    QwenImage = "qwen-image"
    Anima = "anima"
    Krea2 = "krea-2"
    Imagen3 = "imagen3"
    Imagen4 = "imagen4"
    ChatGPT4o = "chatgpt-4o"
    Ideogram4 = "ideogram-4"
    External = "external"
    Unknown = "unknown"


class DnnModelFormat(StrEnum):
    """How a model is stored (InvokeAI's ``ModelFormat``)."""

    OMI = "omi"
    Diffusers = "diffusers"
    Checkpoint = "checkpoint"
    LyCORIS = "lycoris"
    ONNX = "onnx"
    Olive = "olive"
    EmbeddingFile = "embedding_file"
    EmbeddingFolder = "embedding_folder"
    InvokeAI = "invokeai"
    T5Encoder = "t5_encoder"
    Qwen3Encoder = "qwen3_encoder"
    QwenVLEncoder = "qwen_vl_encoder"
    Qwen3VLEncoder = "qwen3_vl_encoder"
    MistralEncoder = "mistral_encoder"
    WanT5Encoder = "wan_t5_encoder"
    Gemma2Encoder = "gemma2_encoder"
    BnbQuantizedLlmInt8b = "bnb_quantized_int8b"
    BnbQuantizednf4b = "bnb_quantized_nf4b"
    GGUFQuantized = "gguf_quantized"
    SDNQQuantized = "sdnq_quantized"
    ExternalApi = "external_api"
    Api = "api"
    Unknown = "unknown"


class SubModelType(StrEnum):
    """A part of a multi-part model (``unet``, ``vae``, ``text_encoder``...)."""

    UNet = "unet"
    Transformer = "transformer"
    Transformer2 = "transformer_2"
    TextEncoder = "text_encoder"
    TextEncoder2 = "text_encoder_2"
    TextEncoder3 = "text_encoder_3"
    Tokenizer = "tokenizer"
    Tokenizer2 = "tokenizer_2"
    Tokenizer3 = "tokenizer_3"
    VAE = "vae"
    VAEDecoder = "vae_decoder"
    VAEEncoder = "vae_encoder"
    Scheduler = "scheduler"
    SafetyChecker = "safety_checker"


E = TypeVar("E", bound=Enum)


def enum_or_str(enum_cls: type[E], value: Any) -> E | str:
    """``value`` as a member of ``enum_cls`` when it is one, else as a plain string."""
    if isinstance(value, enum_cls):
        return value
    raw = value.value if isinstance(value, Enum) else value
    try:
        return enum_cls(raw)
    except ValueError:
        return str(raw)


def _as_base(v: Any) -> Any:
    return enum_or_str(BaseDnnModelType, v)


def _as_type(v: Any) -> Any:
    return enum_or_str(DnnModelType, v)


def _as_format(v: Any) -> Any:
    return None if v is None else enum_or_str(DnnModelFormat, v)


def _as_submodel(v: Any) -> Any:
    return None if v is None else enum_or_str(SubModelType, v)


#: a known enum member, or the server's string when this library does not know the value
BaseValue = Annotated[BaseDnnModelType | str, BeforeValidator(_as_base)]
TypeValue = Annotated[DnnModelType | str, BeforeValidator(_as_type)]
FormatValue = Annotated[DnnModelFormat | str | None, BeforeValidator(_as_format)]
SubModelValue = Annotated[SubModelType | str | None, BeforeValidator(_as_submodel)]


def _text(value: Any) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


class IvkDnnModel(BaseModel):
    """An installed model's record (extra server fields are kept, e.g. ``variant``).

    ``base``/``type``/``format`` are enum members when known, plain strings otherwise; both
    compare equal to the server's string (``m.base == "sdxl"``).

    Example::

        m = client.dnn_model_repo.get_model_by_key(key)
        print(m.name, m.base, m.type, m.hash)
    """

    model_config = ConfigDict(extra="allow", use_enum_values=False)

    key: str
    hash: str = ""
    name: str = ""
    base: BaseValue = BaseDnnModelType.Any
    type: TypeValue = DnnModelType.Main
    format: FormatValue = None
    submodel_type: SubModelValue = None
    path: str | None = None
    description: str | None = None
    source: str | None = None
    source_type: str | None = None
    file_size: int | None = Field(default=None)

    @property
    def base_str(self) -> str:
        """The base as the server's string (``"sdxl"``)."""
        return _text(self.base)

    @property
    def type_str(self) -> str:
        """The type as the server's string (``"main"``)."""
        return _text(self.type)

    def is_compatible_with_base(self, base: BaseDnnModelType | str) -> bool:
        """True if this model works with ``base`` (same base, or a base-agnostic model).

        Example::

            flux = [m for m in models if m.is_compatible_with_base(BaseDnnModelType.Flux)]
        """
        wanted = _text(base)
        return self.base_str in (wanted, BaseDnnModelType.Any.value)

    def is_main_model(self) -> bool:
        """True for main (checkpoint / diffusers pipeline) models."""
        return self.type_str == DnnModelType.Main.value

    def to_identifier(self) -> dict[str, Any]:
        """The ``{key, hash, name, base, type[, submodel_type]}`` a graph's model input takes."""
        out: dict[str, Any] = {
            "key": self.key,
            "hash": self.hash,
            "name": self.name,
            "base": self.base_str,
            "type": self.type_str,
        }
        if self.submodel_type is not None:
            out["submodel_type"] = _text(self.submodel_type)
        return out

    def __str__(self) -> str:
        return f"{self.name} ({self.base_str}/{self.type_str}, key={self.key})"


#: the name the original client used for the same record
DnnModel = IvkDnnModel
