"""ComfyUI's V3 node API (`comfy_api.latest.io`): Schema, typed inputs/outputs, ComfyNode, NodeOutput.

A V3 node is a class with `define_schema()` and `execute()` classmethods. `ComfyNode` derives the V1
attributes the engine reads (INPUT_TYPES, RETURN_TYPES, FUNCTION, VALIDATE_INPUTS, IS_CHANGED, ...)
from the schema, so a V3 node goes through the same schema, validation, cache and executor as a V1
node, and `/object_info` shows it the way ComfyUI does (inputs as `[type, options]`, None options left out).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

__all__ = ["ComfyNode", "Schema", "NodeOutput", "Hidden", "HiddenHolder", "Input", "Output", "WidgetInput",
           "comfytype", "Custom", "ComfyTypeIO", "NumberDisplay", "ControlAfterGenerate", "FolderType",
           "UploadType", "Int", "Float", "String", "Boolean", "Combo", "AnyType", "Image", "Mask", "Latent",
           "Model", "Clip", "Vae", "Conditioning", "Sampler", "Sigmas", "Noise", "Guider", "ControlNet",
           "ClipVision", "ClipVisionOutput", "StyleModel", "Gligen", "UpscaleModel", "Audio", "Video"]


def _prune(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in d.items() if v is not None}


class FolderType(StrEnum):
    input = "input"
    output = "output"
    temp = "temp"


class UploadType(StrEnum):
    image = "image_upload"
    audio = "audio_upload"
    video = "video_upload"
    model = "file_upload"


class NumberDisplay(StrEnum):
    number = "number"
    slider = "slider"


class ControlAfterGenerate(StrEnum):
    fixed = "fixed"
    increment = "increment"
    decrement = "decrement"
    randomize = "randomize"


class Input:
    """One input of a V3 schema; `as_dict()` is the options dict of its V1 `[type, options]` entry."""

    Parent: Any = None

    def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                 tooltip: str | None = None, lazy: bool | None = None, extra_dict: dict | None = None,
                 raw_link: bool | None = None, advanced: bool | None = None, **_: Any) -> None:
        self.id, self.display_name, self.optional = id, display_name, optional
        self.tooltip, self.lazy, self.raw_link, self.advanced = tooltip, lazy, raw_link, advanced
        self.extra_dict = dict(extra_dict or {})

    @property
    def io_type(self) -> str:
        return self.Parent.io_type

    def get_io_type(self) -> str:
        return self.io_type

    def as_dict(self) -> dict[str, Any]:
        return _prune({"display_name": self.display_name, "tooltip": self.tooltip, "lazy": self.lazy,
                       "rawLink": self.raw_link, "advanced": self.advanced}) | _prune(self.extra_dict)


class WidgetInput(Input):
    def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                 tooltip: str | None = None, lazy: bool | None = None, default: Any = None,
                 socketless: bool | None = None, widget_type: str | None = None,
                 force_input: bool | None = None, extra_dict: dict | None = None,
                 raw_link: bool | None = None, advanced: bool | None = None, **kw: Any) -> None:
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
        self.default, self.socketless, self.widget_type, self.force_input = default, socketless, widget_type, force_input

    def get_io_type(self) -> str:
        return self.widget_type or self.io_type

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | _prune({"default": self.default, "socketless": self.socketless,
                                           "widgetType": self.widget_type, "forceInput": self.force_input})


class Output:
    Parent: Any = None

    def __init__(self, id: str | None = None, display_name: str | None = None, tooltip: str | None = None,
                 is_output_list: bool = False, **_: Any) -> None:
        self.id, self.display_name, self.tooltip, self.is_output_list = id, display_name or id, tooltip, is_output_list

    @property
    def io_type(self) -> str:
        return self.Parent.io_type


class ComfyTypeIO:
    """A V3 type: a class with `io_type` and nested `Input` / `Output` classes bound to it."""

    io_type: str = "*"
    Type: Any = Any

    class Input(Input):
        pass

    class Output(Output):
        pass


def comfytype(io_type: str, **_: Any):
    """Decorator: bind `io_type` to a type class and give it its own Input/Output subclasses."""
    def decorate(cls: type) -> type:
        if not issubclass(cls, ComfyTypeIO):
            cls = type(cls.__name__, (cls, ComfyTypeIO), {"__module__": cls.__module__, "__doc__": cls.__doc__})
        cls.io_type = io_type
        for slot in ("Input", "Output"):
            base = getattr(cls, slot, None)
            if base is not None:
                setattr(cls, slot, type(base.__name__, (base,), {"Parent": cls, "__qualname__": base.__qualname__}))
        return cls
    return decorate


def Custom(io_type: str) -> type[ComfyTypeIO]:  # noqa: N802 - ComfyUI's name
    """A type for a custom io_type string (`io.Custom("MY_TYPE")`)."""
    return comfytype(io_type)(type(f"Custom_{io_type}", (ComfyTypeIO,), {}))


def _simple(io_type: str, name: str) -> type[ComfyTypeIO]:
    return comfytype(io_type)(type(name, (ComfyTypeIO,), {"__module__": __name__}))


@comfytype("BOOLEAN")
class Boolean(ComfyTypeIO):
    Type = bool

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: bool | None = None,
                     label_on: str | None = None, label_off: str | None = None, **kw: Any) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, **kw)
            self.label_on, self.label_off = label_on, label_off

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | _prune({"label_on": self.label_on, "label_off": self.label_off})


@comfytype("INT")
class Int(ComfyTypeIO):
    Type = int

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: int | None = None,
                     min: int | None = None, max: int | None = None, step: int | None = None,
                     control_after_generate: bool | ControlAfterGenerate | None = None,
                     display_mode: NumberDisplay | None = None, **kw: Any) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, **kw)
            self.min, self.max, self.step = min, max, step
            self.control_after_generate, self.display_mode = control_after_generate, display_mode

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | _prune({"min": self.min, "max": self.max, "step": self.step,
                                               "control_after_generate": self.control_after_generate,
                                               "display": self.display_mode})


@comfytype("FLOAT")
class Float(ComfyTypeIO):
    Type = float

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, default: float | None = None,
                     min: float | None = None, max: float | None = None, step: float | None = None,
                     round: float | None = None, display_mode: NumberDisplay | None = None, **kw: Any) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, **kw)
            self.min, self.max, self.step, self.round, self.display_mode = min, max, step, round, display_mode

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | _prune({"min": self.min, "max": self.max, "step": self.step,
                                               "round": self.round, "display": self.display_mode})


@comfytype("STRING")
class String(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                     tooltip: str | None = None, lazy: bool | None = None, multiline: bool | None = False,
                     placeholder: str | None = None, default: str | None = None,
                     dynamic_prompts: bool | None = None, **kw: Any) -> None:
            super().__init__(id, display_name, optional, tooltip, lazy, default, **kw)
            self.multiline, self.placeholder, self.dynamic_prompts = multiline, placeholder, dynamic_prompts

        def as_dict(self) -> dict[str, Any]:
            return super().as_dict() | _prune({"multiline": self.multiline, "placeholder": self.placeholder,
                                               "dynamicPrompts": self.dynamic_prompts})


@comfytype("COMBO")
class Combo(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        def __init__(self, id: str, options: list[Any] | type[Enum] | None = None, display_name: str | None = None,
                     optional: bool = False, tooltip: str | None = None, lazy: bool | None = None,
                     default: Any = None, control_after_generate: bool | None = None,
                     upload: UploadType | None = None, image_folder: FolderType | None = None, **kw: Any) -> None:
            if isinstance(options, type) and issubclass(options, Enum):
                options = [m.value for m in options]
            if isinstance(default, Enum):
                default = default.value
            super().__init__(id, display_name, optional, tooltip, lazy, default, **kw)
            self.options = list(options or [])
            self.control_after_generate, self.upload, self.image_folder = control_after_generate, upload, image_folder

        def as_dict(self) -> dict[str, Any]:
            extra = {"options": self.options, "control_after_generate": self.control_after_generate,
                     "image_folder": self.image_folder}
            if self.upload is not None:
                extra[UploadType(self.upload).value] = True
            return super().as_dict() | _prune(extra)


@comfytype("*")
class AnyType(ComfyTypeIO):
    Type = Any


Image = _simple("IMAGE", "Image")
Mask = _simple("MASK", "Mask")
Latent = _simple("LATENT", "Latent")
Model = _simple("MODEL", "Model")
Clip = _simple("CLIP", "Clip")
Vae = _simple("VAE", "Vae")
Conditioning = _simple("CONDITIONING", "Conditioning")
Sampler = _simple("SAMPLER", "Sampler")
Sigmas = _simple("SIGMAS", "Sigmas")
Noise = _simple("NOISE", "Noise")
Guider = _simple("GUIDER", "Guider")
ControlNet = _simple("CONTROL_NET", "ControlNet")
ClipVision = _simple("CLIP_VISION", "ClipVision")
ClipVisionOutput = _simple("CLIP_VISION_OUTPUT", "ClipVisionOutput")
StyleModel = _simple("STYLE_MODEL", "StyleModel")
Gligen = _simple("GLIGEN", "Gligen")
UpscaleModel = _simple("UPSCALE_MODEL", "UpscaleModel")
Audio = _simple("AUDIO", "Audio")
Video = _simple("VIDEO", "Video")


class Hidden(StrEnum):
    """Hidden inputs a V3 node may ask for; read them in execute() as `cls.hidden.<name>`."""

    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"
    auth_token_comfy_org = "AUTH_TOKEN_COMFY_ORG"
    api_key_comfy_org = "API_KEY_COMFY_ORG"


@dataclass
class HiddenHolder:
    unique_id: str | None = None
    prompt: Any = None
    extra_pnginfo: Any = None
    dynprompt: Any = None
    auth_token_comfy_org: str | None = None
    api_key_comfy_org: str | None = None


@dataclass
class Schema:
    """What a V3 node declares. Field names are ComfyUI's."""

    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list[Input] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    hidden: list[Hidden] = field(default_factory=list)
    description: str = ""
    search_aliases: list[str] = field(default_factory=list)
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_dev_only: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False

    def finalize(self) -> Schema:
        """Hidden inputs output nodes need (prompt, extra_pnginfo); default ids for outputs."""
        self.inputs, self.outputs, self.hidden = list(self.inputs or []), list(self.outputs or []), list(self.hidden or [])
        if self.is_output_node:
            for h in (Hidden.prompt, Hidden.extra_pnginfo):
                if h not in self.hidden:
                    self.hidden.append(h)
        for i, out in enumerate(self.outputs):
            if out.id is None:
                out.id = f"_{i}_{out.io_type}_"
        return self

    def input_types(self) -> dict[str, dict[str, Any]]:
        """The V1 INPUT_TYPES dict: `{section: {id: (type, options)}}`."""
        out: dict[str, dict[str, Any]] = {"required": {}}
        for item in self.inputs:
            out.setdefault("optional" if item.optional else "required", {})[item.id] = (item.get_io_type(), item.as_dict())
        if self.hidden:
            out["hidden"] = {h.name: (h.value,) for h in self.hidden}
        return out


class NodeOutput:
    """What execute() returns: one value per output, plus optional `ui` and `expand`."""

    def __init__(self, *args: Any, ui: Any = None, expand: dict | None = None, block_execution: str | None = None) -> None:
        self.args, self.ui, self.expand, self.block_execution = args, ui, expand, block_execution

    @property
    def result(self) -> tuple | None:
        return self.args if self.args else None

    def __getitem__(self, index: int) -> Any:
        return self.args[index]


class _NodeMeta(type):
    """Derives the V1 class attributes from the schema on first use (define_schema may refer to
    names defined later in the pack's module, so nothing is read when the class is created)."""

    def _v3(cls) -> Schema:
        cached = cls.__dict__.get("_diffgraph_schema")
        if cached is None:
            cached = cls.define_schema().finalize()
            type.__setattr__(cls, "_diffgraph_schema", cached)
        return cached

    RETURN_TYPES = property(lambda c: tuple(o.io_type for o in c._v3().outputs))
    RETURN_NAMES = property(lambda c: tuple(o.display_name or o.io_type for o in c._v3().outputs))
    OUTPUT_IS_LIST = property(lambda c: tuple(bool(o.is_output_list) for o in c._v3().outputs))
    OUTPUT_TOOLTIPS = property(lambda c: tuple(o.tooltip for o in c._v3().outputs))
    CATEGORY = property(lambda c: c._v3().category)
    DESCRIPTION = property(lambda c: c._v3().description)
    DISPLAY_NAME = property(lambda c: c._v3().display_name)
    OUTPUT_NODE = property(lambda c: c._v3().is_output_node)
    INPUT_IS_LIST = property(lambda c: c._v3().is_input_list)
    NOT_IDEMPOTENT = property(lambda c: c._v3().not_idempotent)
    DEPRECATED = property(lambda c: c._v3().is_deprecated)
    EXPERIMENTAL = property(lambda c: c._v3().is_experimental)
    API_NODE = property(lambda c: c._v3().is_api_node)
    OBJECT_INFO_EXTRA = property(lambda c: _object_info_extra(c._v3()))
    FUNCTION = property(lambda c: "EXECUTE_NORMALIZED_ASYNC" if inspect.iscoroutinefunction(c.execute)
                        else "EXECUTE_NORMALIZED")

    def __getattr__(cls, name: str) -> Any:
        # VALIDATE_INPUTS / IS_CHANGED exist only when the node overrides the V3 hook, as in ComfyUI.
        hook = {"VALIDATE_INPUTS": "validate_inputs", "IS_CHANGED": "fingerprint_inputs"}.get(name)
        if hook and _overrides(cls, hook):
            return getattr(cls, hook)
        raise AttributeError(name)


def _object_info_extra(schema: Schema) -> dict[str, Any]:
    """The /object_info keys ComfyUI shows for a V3 node beyond a V1 node's (its NodeInfoV1 fields),
    with its nulls: no display_name or tooltip given is shown as null, not filled in."""
    return {"display_name": schema.display_name, "is_input_list": schema.is_input_list,
            "output_tooltips": [o.tooltip for o in schema.outputs], "output_matchtypes": None,
            "has_intermediate_output": False, "deprecated": schema.is_deprecated,
            "experimental": schema.is_experimental, "dev_only": schema.is_dev_only,
            "api_node": schema.is_api_node, "price_badge": None,
            "search_aliases": list(schema.search_aliases) or None, "essentials_category": None}


def _overrides(cls: type, name: str) -> bool:
    return any(name in vars(k) for k in cls.__mro__ if k is not ComfyNode and issubclass(k, ComfyNode))


class ComfyNode(metaclass=_NodeMeta):
    """Base of a V3 node: override `define_schema()` and `execute()` (both classmethods)."""

    hidden: HiddenHolder = HiddenHolder()

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError(f"{cls.__name__} defines no define_schema()")

    @classmethod
    def execute(cls, **kwargs: Any) -> NodeOutput:
        raise NotImplementedError(f"{cls.__name__} defines no execute()")

    @classmethod
    def validate_inputs(cls, **kwargs: Any) -> bool | str:
        return True

    @classmethod
    def fingerprint_inputs(cls, **kwargs: Any) -> Any:
        return None

    @classmethod
    def check_lazy_status(cls, **kwargs: Any) -> list[str]:
        return [name for name, value in kwargs.items() if value is None]

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:  # noqa: N802 - V1 protocol
        return cls._v3().input_types()

    @classmethod
    def GET_SCHEMA(cls) -> Schema:  # noqa: N802 - ComfyUI's name
        return cls._v3()

    @classmethod
    def EXECUTE_NORMALIZED(cls, **kwargs: Any) -> dict[str, Any]:  # noqa: N802
        bound = _with_hidden(cls, kwargs)
        return _to_v1(cls, bound.execute(**kwargs))

    @classmethod
    async def EXECUTE_NORMALIZED_ASYNC(cls, **kwargs: Any) -> dict[str, Any]:  # noqa: N802
        bound = _with_hidden(cls, kwargs)
        return _to_v1(cls, await bound.execute(**kwargs))


def _with_hidden(cls: type, kwargs: dict[str, Any]) -> type:
    """Take the hidden values out of kwargs into a per-call subclass's `hidden` (execute reads cls.hidden)."""
    values = {h.name: kwargs.pop(h.name) for h in cls._v3().hidden if h.name in kwargs}
    return type(cls.__name__, (cls,), {"hidden": HiddenHolder(**values), "__module__": cls.__module__,
                                       "_diffgraph_schema": cls._v3()})


def _to_v1(cls: type, ret: Any) -> dict[str, Any]:
    """A V3 return value as the V1 `{"result": tuple, "ui": dict}` the executor reads."""
    if ret is None:
        ret = NodeOutput()
    elif isinstance(ret, tuple):
        ret = NodeOutput(*ret)
    elif isinstance(ret, dict):
        ret = NodeOutput(*ret.get("result", ()), ui=ret.get("ui"), expand=ret.get("expand"))
    if not isinstance(ret, NodeOutput):
        raise TypeError(f"{cls.__name__}.execute must return io.NodeOutput, got {type(ret).__name__}")
    out: dict[str, Any] = {"result": tuple(ret.args)}
    ui = ret.ui.as_dict() if hasattr(ret.ui, "as_dict") else ret.ui
    if ui is not None:
        out["ui"] = ui
    if ret.expand is not None:
        out["expand"] = ret.expand
    return out
