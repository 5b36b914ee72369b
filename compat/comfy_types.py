"""ComfyUI's `comfy.comfy_types` names (IO, ComfyNodeABC, InputTypeDict, CheckLazyMixin, FileLocator).

Packs import these for type hints and for the `IO` type-name enum. They are plain Python: the
engine reads the V1 attributes a class defines (INPUT_TYPES, RETURN_TYPES...), never these bases.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import Any, Literal, TypedDict

__all__ = ["IO", "ComfyNodeABC", "CheckLazyMixin", "InputTypeDict", "InputTypeOptions", "FileLocator",
           "UnetParams", "HiddenInputTypeDict"]


class IO(StrEnum):
    """Node input/output type names. ANY ("*") matches every type, as in ComfyUI's validation."""

    STRING = "STRING"
    IMAGE = "IMAGE"
    MASK = "MASK"
    LATENT = "LATENT"
    BOOLEAN = "BOOLEAN"
    INT = "INT"
    FLOAT = "FLOAT"
    COMBO = "COMBO"
    CONDITIONING = "CONDITIONING"
    SAMPLER = "SAMPLER"
    SIGMAS = "SIGMAS"
    GUIDER = "GUIDER"
    NOISE = "NOISE"
    CLIP = "CLIP"
    CONTROL_NET = "CONTROL_NET"
    VAE = "VAE"
    MODEL = "MODEL"
    LORA_MODEL = "LORA_MODEL"
    LOSS_MAP = "LOSS_MAP"
    CLIP_VISION = "CLIP_VISION"
    CLIP_VISION_OUTPUT = "CLIP_VISION_OUTPUT"
    STYLE_MODEL = "STYLE_MODEL"
    GLIGEN = "GLIGEN"
    UPSCALE_MODEL = "UPSCALE_MODEL"
    AUDIO = "AUDIO"
    WEBCAM = "WEBCAM"
    POINT = "POINT"
    FACE_ANALYSIS = "FACE_ANALYSIS"
    BBOX = "BBOX"
    SEGS = "SEGS"
    VIDEO = "VIDEO"
    ANY = "*"
    NUMBER = "FLOAT,INT"
    PRIMITIVE = "STRING,FLOAT,INT,BOOLEAN"

    def __ne__(self, value: object) -> bool:
        # ComfyUI's IO compares like its type string, with "*" equal to everything.
        if self.value == "*" or value == "*":
            return False
        if not isinstance(value, str):
            return True
        mine, theirs = set(self.value.split(",")), set(str(value).split(","))
        return not (theirs <= mine)

    def __eq__(self, value: object) -> bool:
        return not self.__ne__(value)

    __hash__ = str.__hash__


class InputTypeOptions(TypedDict, total=False):
    """Options of one input in INPUT_TYPES (default, min, max, step, tooltip, lazy, ...)."""

    default: Any
    defaultInput: bool
    forceInput: bool
    lazy: bool
    rawLink: bool
    tooltip: str
    min: float
    max: float
    step: float
    round: float
    display: Literal["number", "slider", "color"]
    label_on: str
    label_off: str
    multiline: bool
    placeholder: str
    dynamicPrompts: bool
    image_upload: bool
    image_folder: Literal["input", "output", "temp"]
    control_after_generate: bool
    options: list[Any]
    remote: dict[str, Any]


class HiddenInputTypeDict(TypedDict, total=False):
    node_id: Literal["UNIQUE_ID"]
    unique_id: Literal["UNIQUE_ID"]
    prompt: Literal["PROMPT"]
    extra_pnginfo: Literal["EXTRA_PNGINFO"]
    dynprompt: Literal["DYNPROMPT"]


class InputTypeDict(TypedDict, total=False):
    required: dict[str, tuple]
    optional: dict[str, tuple]
    hidden: HiddenInputTypeDict


class ComfyNodeABC(ABC):
    """Optional base of a V1 node class: documents the attributes the engine reads."""

    DESCRIPTION: str
    CATEGORY: str
    EXPERIMENTAL: bool = False
    DEPRECATED: bool = False
    RETURN_TYPES: tuple = ()
    RETURN_NAMES: tuple | None = None
    OUTPUT_TOOLTIPS: tuple | None = None
    FUNCTION: str
    OUTPUT_NODE: bool = False
    INPUT_IS_LIST: bool = False
    OUTPUT_IS_LIST: tuple | None = None

    @classmethod
    @abstractmethod
    def INPUT_TYPES(cls) -> InputTypeDict:  # noqa: N802 - ComfyUI's name
        """The node's inputs."""


class CheckLazyMixin:
    """A default `check_lazy_status`: every lazy input that has not been evaluated yet is wanted."""

    def check_lazy_status(self, **kwargs: Any) -> list[str]:
        return [name for name, value in kwargs.items() if value is None]


class FileLocator(TypedDict):
    """Where a file lives: name, subfolder and folder type (input/output/temp)."""

    filename: str
    subfolder: str
    type: Literal["input", "output", "temp"]


class UnetParams(TypedDict):
    input: Any
    timestep: Any
    c: dict
    cond_or_uncond: list
