"""Node schemas: the typed `@node` declaration, and one NodeSchema read from any ComfyUI V1 class.

`@node` turns a small typed class into a valid ComfyUI V1 class (INPUT_TYPES, RETURN_TYPES, ...),
checking the declaration when the class is defined. `NodeSchema.from_class` reads any V1 class into
the one shape the validator, executor and `/object_info` use.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .errors import NodeDefinitionError

# Type names are plain strings, as in ComfyUI. Custom types are any other string.
INT, FLOAT, STRING, BOOLEAN, COMBO = "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"
IMAGE, MASK, LATENT, MODEL, CLIP, VAE = "IMAGE", "MASK", "LATENT", "MODEL", "CLIP", "VAE"
CONDITIONING, SAMPLER, SIGMAS, NOISE, GUIDER = "CONDITIONING", "SAMPLER", "SIGMAS", "NOISE", "GUIDER"
WIDGET_TYPES = frozenset({INT, FLOAT, STRING, BOOLEAN})
HIDDEN_KINDS = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID",
                "dynprompt": "DYNPROMPT"}


class AnyType(str):
    """The `"*"` type. Like ComfyUI packs' `AnyType` idiom it is never "not equal" to a type;
    the engine itself matches it through `types_match`."""

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__


ANY = AnyType("*")
_MISSING: Any = inspect.Parameter.empty


def types_match(produced: str, expected: str) -> bool:
    """True when an output of type `produced` may feed an input of type `expected`.

    Equal types match; `"*"` on either side matches anything; comma unions (``"FLOAT,INT"``)
    match when their member sets overlap, as ComfyUI's validator does.
    """
    if produced == expected or str(produced) == "*" or str(expected) == "*":
        return True
    if isinstance(produced, str) and isinstance(expected, str):
        return bool(set(produced.split(",")) & set(expected.split(",")))
    return False


@dataclass(frozen=True)
class Input:
    """One input of a typed node. Widgets (INT/FLOAT/STRING/BOOLEAN/COMBO) take constants;
    other types take links. `options` is a sequence or a zero-argument callable (e.g. a file list)."""

    name: str
    type: str
    default: Any = _MISSING
    min: float | None = None
    max: float | None = None
    step: float | None = None
    options: Sequence[Any] | Callable[[], Sequence[Any]] | None = None
    optional: bool = False
    lazy: bool = False
    multiline: bool = False
    force_input: bool = False
    control_after_generate: bool = False
    tooltip: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def choices(self) -> list[Any] | None:
        if self.options is None:
            return None
        return list(self.options() if callable(self.options) else self.options)

    def to_v1(self) -> tuple[Any, dict[str, Any]]:
        """This input as ComfyUI's `(type, options)` pair; combos use the classic list form."""
        opts: dict[str, Any] = {}
        if self.default is not _MISSING:
            opts["default"] = self.default
        for key in ("min", "max", "step"):
            if getattr(self, key) is not None:
                opts[key] = getattr(self, key)
        flags = {"lazy": self.lazy, "multiline": self.multiline, "forceInput": self.force_input,
                 "control_after_generate": self.control_after_generate}
        opts.update({k: True for k, v in flags.items() if v})
        if self.tooltip:
            opts["tooltip"] = self.tooltip
        opts.update(self.extra)
        if str(self.type) == COMBO:
            return (self.choices() or [], opts)
        return (self.type, opts)


@dataclass(frozen=True)
class Output:
    """One output of a typed node."""

    type: str
    name: str | None = None
    tooltip: str | None = None
    is_list: bool = False


@dataclass(frozen=True)
class InputSpec:
    """One input as the engine sees it, whichever way the node was declared."""

    name: str
    type: Any  # a type string, or a list of choices for a classic combo
    options: dict[str, Any]
    section: str  # "required" | "optional" | "hidden"

    @cached_property
    def choices(self) -> list[Any] | None:
        if isinstance(self.type, (list, tuple)):
            return list(self.type)
        if str(self.type) == COMBO and isinstance(self.options.get("options"), (list, tuple)):
            return list(self.options["options"])
        return None

    @cached_property
    def type_name(self) -> str:
        return COMBO if self.choices is not None else str(self.type)

    @cached_property
    def is_widget(self) -> bool:
        return self.choices is not None or self.type in WIDGET_TYPES

    @cached_property
    def lazy(self) -> bool:
        return bool(self.options.get("lazy"))


@dataclass(frozen=True)
class NodeSchema:
    """Everything the engine needs to know about one node class."""

    name: str
    cls: type
    display_name: str
    category: str
    description: str
    python_module: str
    inputs: tuple[InputSpec, ...]
    output_types: tuple[Any, ...]
    output_names: tuple[str, ...]
    output_is_list: tuple[bool, ...]
    output_tooltips: tuple[str | None, ...]
    output_node: bool
    input_is_list: bool
    not_idempotent: bool
    function: str
    extra_flags: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_class(cls, node_cls: type, name: str, display_name: str | None = None,
                   python_module: str = "nodes") -> NodeSchema:
        """Read a ComfyUI V1 class. Raises NodeDefinitionError naming the node and the field."""
        try:
            spec = node_cls.INPUT_TYPES()
        except Exception as exc:  # a pack's INPUT_TYPES may raise anything
            raise NodeDefinitionError(f"{name}: INPUT_TYPES() raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(spec, dict):
            raise NodeDefinitionError(f"{name}: INPUT_TYPES() must return a dict, got {type(spec).__name__}")
        inputs = tuple(_read_section(name, spec, section) for section in ("required", "optional", "hidden"))
        ret = tuple(getattr(node_cls, "RETURN_TYPES", ()) or ())
        names = tuple(_output_attr(node_cls, "RETURN_NAMES") or [str(t) if not isinstance(t, list)
                                                                  else COMBO for t in ret])
        is_list = tuple(_output_attr(node_cls, "OUTPUT_IS_LIST") or [False] * len(ret))
        tips = tuple(_output_attr(node_cls, "OUTPUT_TOOLTIPS") or [None] * len(ret))
        function = getattr(node_cls, "FUNCTION", None)
        if not isinstance(function, str) or not callable(getattr(node_cls, function, None)):
            raise NodeDefinitionError(f"{name}: FUNCTION={function!r} does not name a method of the class")
        if len(names) != len(ret) or len(is_list) != len(ret):
            raise NodeDefinitionError(f"{name}: RETURN_NAMES/OUTPUT_IS_LIST length differs from RETURN_TYPES")
        flags = {k.lower(): True for k in ("DEPRECATED", "EXPERIMENTAL") if getattr(node_cls, k, False)}
        if hasattr(node_cls, "API_NODE"):
            flags["api_node"] = bool(node_cls.API_NODE)
        extra = getattr(node_cls, "OBJECT_INFO_EXTRA", None)  # V3 nodes (compat/v3_io.py): ComfyUI's extra keys
        if isinstance(extra, dict):
            flags.update(extra)
        return cls(
            name=name, cls=node_cls,
            display_name=display_name or getattr(node_cls, "DISPLAY_NAME", None) or name,
            category=getattr(node_cls, "CATEGORY", "sd"),
            description=getattr(node_cls, "DESCRIPTION", "") or "",
            python_module=getattr(node_cls, "RELATIVE_PYTHON_MODULE", python_module),
            inputs=tuple(i for section in inputs for i in section),
            output_types=ret, output_names=names, output_is_list=is_list, output_tooltips=tips,
            output_node=bool(getattr(node_cls, "OUTPUT_NODE", False)),
            input_is_list=bool(getattr(node_cls, "INPUT_IS_LIST", False)),
            not_idempotent=bool(getattr(node_cls, "NOT_IDEMPOTENT", False)),
            function=function, extra_flags=flags)

    @cached_property
    def _by_name(self) -> dict[str, InputSpec]:
        return {spec.name: spec for spec in self.inputs}

    def input(self, name: str) -> InputSpec | None:
        return self._by_name.get(name)

    @cached_property
    def hidden(self) -> dict[str, str]:
        # V1 nodes write "UNIQUE_ID"; V3 nodes (as ComfyUI's get_v1_info) write ("UNIQUE_ID",)
        return {i.name: str(i.type[0] if isinstance(i.type, (list, tuple)) and i.type else i.type)
                for i in self.inputs if i.section == "hidden"}

    @cached_property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(getattr(self.cls, self.function))

    @cached_property
    def wants_ctx(self) -> bool:
        """True when the node's function takes a `ctx` parameter that is not a declared input."""
        params = inspect.signature(getattr(self.cls, self.function)).parameters
        return "ctx" in params and self.input("ctx") is None

    @cached_property
    def validate_inputs_params(self) -> frozenset[str] | None:
        """Parameters of VALIDATE_INPUTS (None when the class has none; every input for **kwargs)."""
        fn = getattr(self.cls, "VALIDATE_INPUTS", None)
        if fn is None:
            return None
        params = inspect.signature(fn).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return frozenset(i.name for i in self.inputs)
        return frozenset(params)

    def object_info(self) -> dict[str, Any]:
        """ComfyUI's `/object_info` entry for this node."""
        sections: dict[str, dict[str, Any]] = {"required": {}, "optional": {}, "hidden": {}}
        order: dict[str, list[str]] = {"required": [], "optional": [], "hidden": []}
        for spec in self.inputs:
            value = spec.type if spec.section == "hidden" else [spec.type, dict(spec.options)]
            if isinstance(value, list) and isinstance(value[0], tuple):
                value[0] = list(value[0])
            sections[spec.section][spec.name] = value
            order[spec.section].append(spec.name)
        info = {
            "input": {k: v for k, v in sections.items() if v or k == "required"},
            "input_order": {k: v for k, v in order.items() if v or k == "required"},
            "output": [list(t) if isinstance(t, (list, tuple)) else t for t in self.output_types],
            "output_is_list": list(self.output_is_list),
            "output_name": list(self.output_names),
            "output_tooltips": [t or "" for t in self.output_tooltips],
            "name": self.name, "display_name": self.display_name, "description": self.description,
            "python_module": self.python_module, "category": self.category,
            "output_node": self.output_node,
        }
        info.update(self.extra_flags)
        return info


def _read_section(name: str, spec: dict[str, Any], section: str) -> list[InputSpec]:
    raw = spec.get(section) or {}
    if not isinstance(raw, dict):
        raise NodeDefinitionError(f"{name}: INPUT_TYPES()[{section!r}] must be a dict")
    out = []
    for input_name, value in raw.items():
        if section == "hidden":
            out.append(InputSpec(input_name, value, {}, section))
            continue
        if not isinstance(value, (tuple, list)) or not value:
            raise NodeDefinitionError(f"{name}: input {input_name!r} must be (TYPE,) or (TYPE, options)")
        options = value[1] if len(value) > 1 and isinstance(value[1], dict) else {}
        out.append(InputSpec(input_name, value[0], dict(options), section))
    return out


def node(name: str, *, category: str = "diffgraph", display_name: str | None = None,
         output_node: bool = False, not_idempotent: bool = False, input_is_list: bool = False,
         hidden: Sequence[str] = (), description: str | None = None) -> Callable[[type], type]:
    """Declare a typed node; the class becomes a valid ComfyUI V1 class.

    The class needs `inputs` (a tuple of `Input`), `outputs` (a tuple of `Output`) and a `run`
    method whose parameters are the inputs, the hidden inputs named in `hidden`
    (``prompt``, ``extra_pnginfo``, ``unique_id``) and optionally ``ctx`` (a RunContext).
    """
    def decorate(cls: type) -> type:
        inputs = tuple(getattr(cls, "inputs", ()))
        outputs = tuple(getattr(cls, "outputs", ()))
        _check_declaration(name, cls, inputs, outputs, hidden)

        def input_types(_cls: type) -> dict[str, Any]:
            spec: dict[str, Any] = {"required": {}, "optional": {}}
            for item in inputs:
                spec["optional" if item.optional else "required"][item.name] = item.to_v1()
            if hidden:
                spec["hidden"] = {h: HIDDEN_KINDS[h] for h in hidden}
            return spec

        cls.INPUT_TYPES = classmethod(input_types)
        cls.RETURN_TYPES = tuple(o.type for o in outputs)
        cls.RETURN_NAMES = tuple(o.name or o.type for o in outputs)
        cls.OUTPUT_IS_LIST = tuple(o.is_list for o in outputs)
        cls.OUTPUT_TOOLTIPS = tuple(o.tooltip or "" for o in outputs)
        cls.FUNCTION = "run"
        cls.CATEGORY = category
        cls.OUTPUT_NODE = output_node
        cls.NOT_IDEMPOTENT = not_idempotent
        cls.INPUT_IS_LIST = input_is_list
        cls.DESCRIPTION = description if description is not None else inspect.cleandoc(cls.__doc__ or "")
        cls.DISPLAY_NAME = display_name or name
        cls.NODE_NAME = name
        return cls
    return decorate


def _output_attr(node_cls: type, attr: str) -> Any:
    """A per-output list, unless inherited from above the class that redefines RETURN_TYPES.

    A pack's subclass of a core node that adds or drops an output (a 4th output on
    CheckpointLoaderSimple) would otherwise keep our typed base class's 3-entry lists, which
    ComfyUI's own core classes do not declare.
    """
    owner = next((c for c in node_cls.__mro__ if attr in vars(c)), None)
    if owner is None:  # not a class attribute: e.g. a metaclass property (V3 nodes), or absent
        return getattr(node_cls, attr, None)
    ret_owner = next((c for c in node_cls.__mro__ if "RETURN_TYPES" in vars(c)), None)
    if (ret_owner is not None and owner is not ret_owner and issubclass(ret_owner, owner)):
        return None
    return vars(owner)[attr]

def _check_declaration(name: str, cls: type, inputs: tuple, outputs: tuple, hidden: Sequence[str]) -> None:
    def fail(msg: str) -> None:
        raise NodeDefinitionError(f"node {name!r}: {msg}")

    seen: set[str] = set()
    for item in inputs:
        if not isinstance(item, Input):
            fail(f"inputs must be Input(...) items, got {item!r}")
        if item.name in seen:
            fail(f"input {item.name!r} is declared twice")
        seen.add(item.name)
        _check_input_default(fail, item)
    for out in outputs:
        if not isinstance(out, Output):
            fail(f"outputs must be Output(...) items, got {out!r}")
    for h in hidden:
        if h not in HIDDEN_KINDS:
            fail(f"hidden input {h!r} is not one of {sorted(HIDDEN_KINDS)}")
    run = getattr(cls, "run", None)
    if not callable(run):
        fail("has no run() method")
    params = inspect.signature(run).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    names = [p for p in params if p != "self"]
    accepted = seen | set(hidden) | {"ctx"}
    for p in names:
        if p not in accepted:
            fail(f"run() parameter {p!r} is not a declared input (inputs: {sorted(seen)})")
    for item in inputs:
        if item.name not in names:
            fail(f"input {item.name!r} is not a parameter of run()")


def _check_input_default(fail: Callable[[str], None], item: Input) -> None:
    if str(item.type) == COMBO and item.options is None:
        fail(f"input {item.name!r} is a COMBO without options")
    if item.default is _MISSING:
        return
    d = item.default
    if str(item.type) in (INT, FLOAT):
        if isinstance(d, bool) or not isinstance(d, (int, float)) or (isinstance(d, float) and math.isnan(d)):
            fail(f"input {item.name!r}: default {d!r} is not a number")
        if item.min is not None and d < item.min:
            fail(f"input {item.name!r}: default {d!r} is below the minimum {item.min!r}")
        if item.max is not None and d > item.max:
            fail(f"input {item.name!r}: default {d!r} is above the maximum {item.max!r}")
    if str(item.type) == COMBO and not callable(item.options) and d not in list(item.options or ()):
        fail(f"input {item.name!r}: default {d!r} is not one of the options")
