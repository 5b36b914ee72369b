"""Discover and load node packs: the built-in `nodes` package and every pack in custom_nodes folders.

Each pack is imported under a private namespace (`diffgraph_packs.<name>`), so a pack called `utils`
or `nodes` never shadows a real module. A pack that fails (raises, bad syntax, missing dependency, no
nodes) is recorded in the LoadReport with its traceback and logged; it never stops start-up.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import importlib.util
import inspect
import logging
import re
import runpy
import sys
import time
import tomllib
import traceback as tb
import types
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import NodeDefinitionError, PluginLoadError
from .registry import NodeRegistry

log = logging.getLogger(__name__)

NAMESPACE = "diffgraph_packs"
DISABLED_SUFFIX = ".disabled"
BUILTIN_PACK = "builtin"
RESTART_MARKER = ".diffgraph-restart-required"  # written by `diffgraph nodes` in a custom_nodes folder
LOADED, FAILED, DISABLED = "loaded", "failed", "disabled"


@dataclass
class PackReport:
    """What happened to one pack. `state` is "loaded" | "failed" | "disabled"."""

    name: str
    path: str
    state: str
    nodes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    import_seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None
    web_directory: str | None = None
    module_name: str | None = None
    prestartup_error: str | None = None  # prestartup_script.py raised (the pack is still imported)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadReport:
    """Every pack found, in load order, whatever its state."""

    packs: list[PackReport] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)

    def get(self, name: str) -> PackReport | None:
        return next((p for p in self.packs if p.name == name), None)

    def by_state(self, state: str) -> list[PackReport]:
        return [p for p in self.packs if p.state == state]

    @property
    def loaded(self) -> list[PackReport]:
        return self.by_state(LOADED)

    @property
    def failed(self) -> list[PackReport]:
        return self.by_state(FAILED)

    @property
    def disabled(self) -> list[PackReport]:
        return self.by_state(DISABLED)

    def web_directories(self) -> dict[str, Path]:
        """{pack name: web folder} for loaded packs with a WEB_DIRECTORY (served at /extensions/<name>/)."""
        return {p.name: Path(p.web_directory) for p in self.packs if p.state == LOADED and p.web_directory}

    def to_dict(self) -> dict[str, Any]:
        return {"packs": [p.to_dict() for p in self.packs]}

    def restart_reasons(self, dirs: Iterable[str | Path]) -> list[str]:
        """Why the packs on disk no longer match what this process loaded ([] when they do)."""
        dirs = list(dirs)
        now = {str(e) for folder in dirs for e in discover(folder)}
        before = {p.path for p in self.packs if p.name != BUILTIN_PACK}  # every entry seen has a report
        reasons = [f"added: {p}" for p in sorted(now - before)] + [f"gone: {p}" for p in sorted(before - now)]
        for folder in dirs:
            marker = Path(folder) / RESTART_MARKER
            try:
                if marker.stat().st_mtime >= self.started_at:
                    reasons.extend(line for line in marker.read_text(encoding="utf-8").splitlines() if line)
            except OSError:
                continue
        return list(dict.fromkeys(reasons))

    def api_payload(self, dirs: Iterable[str | Path]) -> dict[str, Any]:
        """The body of `GET /api/custom_nodes`: every pack with its state, and whether to restart."""
        reasons = self.restart_reasons(dirs)
        return {"packs": [p.to_dict() for p in self.packs], "restart_required": bool(reasons),
                "restart_reasons": reasons}

    def summary_lines(self) -> list[str]:
        """ComfyUI-style import-time lines, slowest first."""
        lines = []
        for p in sorted(self.packs, key=lambda r: r.import_seconds, reverse=True):
            flag = {FAILED: " (IMPORT FAILED)", DISABLED: " (DISABLED)"}.get(p.state, "")
            lines.append(f"{p.import_seconds:6.1f} seconds{flag}: {p.path}")
        return lines


def load_builtin(registry: NodeRegistry, module_name: str = "nodes") -> PackReport:
    """Import the built-in node package by name and register it as pack "builtin".

    A failure is reported (state "failed", with traceback), never raised: the server still starts.
    """
    started = time.perf_counter()
    report = PackReport(BUILTIN_PACK, module_name, LOADED, module_name=module_name)
    try:
        module = importlib.import_module(module_name)
        report.path = str(getattr(module, "__file__", None) or module_name)
        report.nodes, report.refused = registry.register_module(module, pack=BUILTIN_PACK,
                                                                python_module=module_name)
    except Exception as exc:  # an import error in a built-in must not stop start-up either
        _record_failure(report, exc)
    report.import_seconds = time.perf_counter() - started
    return report


def load_packs(dirs: Iterable[str | Path], registry: NodeRegistry, disable_all: bool = False,
               whitelist: Iterable[str] = ()) -> LoadReport:
    """Load every package and single `.py` in each custom_nodes folder, in sorted order.

    `*.disabled` entries are listed as disabled; with `disable_all`, so is every pack not in
    `whitelist`. A node name already registered (built-in or earlier pack) is refused and reported.
    """
    allowed = set(whitelist)
    report = LoadReport()
    taken = {BUILTIN_PACK: "the built-in nodes"}  # pack name -> path: a second pack of one name is refused
    dirs = list(dirs)
    prestartup = run_prestartup_scripts(dirs, disable_all, allowed)
    for folder in dirs:
        for entry in discover(folder):
            name = pack_name(entry)
            if entry.name.endswith(DISABLED_SUFFIX) or (disable_all and name not in allowed):
                report.packs.append(PackReport(name, str(entry), DISABLED))
                continue
            if name in taken:
                msg = f"a pack named {name!r} was already loaded from {taken[name]}"
                report.packs.append(PackReport(name, str(entry), FAILED, error=msg))
                log.error("custom node pack %s not loaded: %s", entry, msg)
                continue
            taken[name] = str(entry)
            report.packs.append(load_pack(entry, registry, name))
            report.packs[-1].prestartup_error = prestartup.get(str(entry))
    for line in report.summary_lines():
        log.info("custom nodes import time %s", line)
    return report


def run_prestartup_scripts(dirs: Iterable[str | Path], disable_all: bool = False,
                           allowed: Iterable[str] = ()) -> dict[str, str]:
    """Run each enabled pack's `prestartup_script.py` before any pack is imported, as ComfyUI does.

    Returns {pack path: error} for the scripts that raised; a failure is logged and never stops start-up.
    """
    allowed = set(allowed)
    errors: dict[str, str] = {}
    for folder in dirs:
        for entry in discover(folder):
            script = entry / "prestartup_script.py"
            if (entry.name.endswith(DISABLED_SUFFIX) or (disable_all and pack_name(entry) not in allowed)
                    or not script.is_file()):
                continue
            try:
                runpy.run_path(str(script), run_name=module_name_for(pack_name(entry)) + ".prestartup_script")
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a pack's script may raise anything, sys.exit included
                errors[str(entry)] = _describe(exc)
                log.error("prestartup script of %s failed: %s\n%s", entry, errors[str(entry)],
                          "".join(tb.format_exception(exc)))
    return errors


def discover(folder: str | Path) -> list[Path]:
    """The pack entries in one custom_nodes folder, sorted by name: packages and `.py` files."""
    root = Path(folder).absolute()
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        bare = entry.name.removesuffix(DISABLED_SUFFIX)
        if bare.startswith((".", "_")):
            continue  # __pycache__, .git, editor files, private helpers
        if entry.is_dir() or (entry.is_file() and bare.endswith(".py")):
            found.append(entry)
    return found


def pack_name(entry: Path) -> str:
    """The pack's public name: the folder name, or the file name without `.py` (and `.disabled`)."""
    name = entry.name.removesuffix(DISABLED_SUFFIX)
    return name.removesuffix(".py") if entry.is_file() else name


def module_name_for(name: str) -> str:
    """`diffgraph_packs.<identifier>`: pack folders are often named like `ComfyUI-Foo.Bar`. Other
    characters are spelled out (`-` -> `_x2d_`), so two pack names never share a module name."""
    ident = re.sub(r"\W", lambda m: f"_x{ord(m.group()):x}_", name)
    if not ident or ident[0].isdigit():
        ident = "_" + ident
    return f"{NAMESPACE}.{ident}"


class PackSideEffects:
    """What a pack may register outside the node registry (a server's routes, on_prompt handlers).

    `checkpoint()` is taken before a pack is imported; if the pack fails, `rollback(token)` drops what
    it added, so a failed pack leaves nothing behind. The server's PromptServer registers one of these
    (the engine cannot import the server)."""

    def checkpoint(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def rollback(self, token: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError


SIDE_EFFECTS: list[PackSideEffects] = []


def register_side_effects(tracker: PackSideEffects) -> None:
    if tracker not in SIDE_EFFECTS:
        SIDE_EFFECTS.append(tracker)


def load_pack(entry: Path, registry: NodeRegistry, name: str | None = None) -> PackReport:
    """Import one pack and register its nodes; every failure is caught and reported.

    Any BaseException but KeyboardInterrupt counts as a failure: a pack that calls sys.exit() at import
    (or raises SystemExit / GeneratorExit) is reported like any broken pack and the next one still loads."""
    name = name or pack_name(entry)
    modname = module_name_for(name)
    report = PackReport(name, str(entry), LOADED, module_name=modname)
    started = time.perf_counter()
    had_nodes = bool(registry.nodes_of_pack(name))
    tokens = [(tracker, tracker.checkpoint()) for tracker in SIDE_EFFECTS]
    try:
        module = _import_pack(entry, modname)
        _register(module, entry, registry, report)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a broken pack is reported, never fatal
        for tracker, token in tokens:
            try:
                tracker.rollback(token)
            except Exception:
                log.exception("could not undo what pack %s registered", name)
        _forget_modules(modname)
        if not had_nodes:  # a pack that fails registers nothing, even if it failed half-way
            registry.unregister_pack(name)
        report.nodes = []
        _record_failure(report, exc)
    report.import_seconds = time.perf_counter() - started
    return report


def _import_pack(entry: Path, modname: str) -> types.ModuleType:
    _ensure_namespace()
    previous = sys.modules.get(modname)
    if previous is not None:
        origin = Path(getattr(previous, "__file__", "") or "")
        if origin in (entry, entry / "__init__.py"):
            return previous  # the same pack loaded again (another registry): reuse, never import twice
        _forget_modules(modname)  # a different pack of that name replaces the old one
    if entry.is_dir():
        init = entry / "__init__.py"
        if not init.is_file():
            raise PluginLoadError(f"{entry} is a folder without __init__.py, so it is not a node pack")
        spec = importlib.util.spec_from_file_location(modname, init, submodule_search_locations=[str(entry)])
    else:
        spec = importlib.util.spec_from_file_location(modname, entry)
    if spec is None or spec.loader is None:
        raise PluginLoadError(f"cannot import {entry}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module  # before exec, so the pack's relative imports find their parent
    spec.loader.exec_module(module)
    return module


def _ensure_namespace() -> None:
    # The parent of every pack module: an empty package that exists only in sys.modules.
    if NAMESPACE not in sys.modules:
        parent = types.ModuleType(NAMESPACE, "Node packs loaded by engine.plugins.")
        parent.__path__ = []
        sys.modules[NAMESPACE] = parent


def _register(module: types.ModuleType, entry: Path, registry: NodeRegistry, report: PackReport) -> None:
    has_mappings = isinstance(getattr(module, "NODE_CLASS_MAPPINGS", None), dict)
    report.web_directory = _web_directory(module, entry, report)
    report.nodes, refused = registry.register_module(module, pack=report.name)
    for name, cls in _entrypoint_nodes(module, report.name).items():  # ComfyUI V3 packs
        try:
            registry.register(cls, name, None, report.name)
            report.nodes.append(name)
        except NodeDefinitionError as exc:
            refused.append(str(exc))
    report.refused.extend(refused)
    for msg in refused:
        log.warning("custom node pack %s: %s", report.name, msg)
    if report.nodes or report.web_directory:
        return
    if refused:
        raise PluginLoadError(f"every node of {report.name} was refused: {'; '.join(refused)}")
    if hasattr(module, "comfy_entrypoint") and not has_mappings:
        raise PluginLoadError(f"{report.name}: comfy_entrypoint() returned an extension with no nodes")
    raise PluginLoadError(f"{report.name} defines no nodes: no NODE_CLASS_MAPPINGS entries and no @node classes")


def _entrypoint_nodes(module: types.ModuleType, pack: str) -> dict[str, type]:
    """A V3 pack's nodes: `comfy_entrypoint()` (sync or async) gives an extension whose (async)
    `on_load()` runs first and whose `get_node_list()` lists classes, each named by its schema's node_id."""
    entry = getattr(module, "comfy_entrypoint", None)
    if not callable(entry):
        return {}
    extension = _resolve(entry())
    if hasattr(extension, "on_load"):
        _resolve(extension.on_load())
    found: dict[str, type] = {}
    for cls in _resolve(extension.get_node_list()) or []:
        schema = cls.GET_SCHEMA() if hasattr(cls, "GET_SCHEMA") else None
        name = getattr(schema, "node_id", None) or cls.__name__
        if name in found:
            raise PluginLoadError(f"{pack}: two V3 nodes share the node_id {name!r}")
        found[name] = cls
    return found


def _resolve(value: Any) -> Any:
    """Await a coroutine from plain code; in a thread of its own when an event loop is running here."""
    if not inspect.isawaitable(value):
        return value
    async def wait() -> Any:
        return await value
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, wait()).result()


def _web_directory(module: types.ModuleType, entry: Path, report: PackReport) -> str | None:
    """The pack's WEB_DIRECTORY (or pyproject [tool.comfy] web), resolved inside the pack folder."""
    pack_dir = entry if entry.is_dir() else entry.parent
    declared = getattr(module, "WEB_DIRECTORY", None) or _pyproject_web(pack_dir if entry.is_dir() else None)
    if not declared:
        return None
    web = (pack_dir / str(declared)).resolve()
    root = pack_dir.resolve()
    if entry.is_file() or (web != root and root not in web.parents):
        # A single-file pack shares its folder with other packs; a web dir must stay inside its own pack.
        report.refused.append(f"WEB_DIRECTORY {declared!r} refused: it must be a folder inside the pack folder")
        return None
    if not web.is_dir():
        report.refused.append(f"WEB_DIRECTORY {declared!r} refused: {web} is not a folder")
        return None
    return str(web)


def _pyproject_web(pack_dir: Path | None) -> str | None:
    if pack_dir is None or not (pack_dir / "pyproject.toml").is_file():
        return None
    try:
        data = tomllib.loads((pack_dir / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    web = data.get("tool", {}).get("comfy", {}).get("web")
    return web if isinstance(web, str) else None


def _record_failure(report: PackReport, exc: BaseException) -> None:
    report.state = FAILED
    report.error = _describe(exc)
    report.traceback = "".join(tb.format_exception(exc))
    log.error("cannot import node pack %s (%s): %s\n%s", report.name, report.path, report.error,
              report.traceback)


# Top-level modules whose names come from ComfyUI: a name missing there is our gap, not the pack's.
COMFY_MODULES = ("comfy", "comfy_extras", "comfy_execution", "comfy_api", "comfy_api_nodes", "nodes", "server",
                 "execution", "node_helpers", "folder_paths", "latent_preview")
_GAP = ("is not provided by Diffgraph yet: a Diffgraph compatibility gap, not a problem with the pack or its "
        "requirements (see custom_nodes/README.md)")


def _comfy_gap(exc: BaseException) -> str | None:
    """The missing ComfyUI name behind an import-time error, if that is what it is."""
    if isinstance(exc, ImportError) and exc.name and exc.name.split(".")[0] in COMFY_MODULES:
        if isinstance(exc, ModuleNotFoundError):
            return exc.name
        text = str(exc)  # "cannot import name 'X' from 'nodes' (...)"
        return f"{exc.name}.{text.split(chr(39))[1]}" if text.startswith("cannot import name '") else None
    if isinstance(exc, AttributeError) and getattr(exc, "name", None) and str(exc).startswith("module '"):
        module = str(exc).split("'")[1]
        return f"{module}.{exc.name}" if module.split(".")[0] in COMFY_MODULES else None
    return None


def _describe(exc: BaseException) -> str:
    gap = _comfy_gap(exc)
    if gap:
        return f"ComfyUI name {gap!r} {_GAP}"
    if isinstance(exc, ModuleNotFoundError) and exc.name and not exc.name.startswith(NAMESPACE):
        return (f"missing dependency {exc.name!r} ({exc}); install the pack's requirements, "
                "e.g. pip install -r requirements.txt")
    if isinstance(exc, SyntaxError):
        return f"syntax error in {exc.filename} line {exc.lineno}: {exc.msg}"
    return f"{type(exc).__name__}: {exc}"


def _forget_modules(modname: str) -> None:
    # A failed pack leaves no half-imported modules behind, so a later load starts clean.
    for key in [k for k in sys.modules if k == modname or k.startswith(modname + ".")]:
        del sys.modules[key]


def mark_restart_required(folder: str | Path, reason: str) -> None:
    """Note in a custom_nodes folder that packs changed; a running server reports it (restart_reasons)."""
    marker = Path(folder) / RESTART_MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    with open(marker, "a", encoding="utf-8") as handle:
        handle.write(" ".join(reason.split()) + "\n")  # one line per reason
