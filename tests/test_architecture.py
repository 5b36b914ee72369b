"""The package boundaries of DESIGN.md, checked on the source with `ast`.

engine imports only the standard library; server never imports nodes, torch or model libraries;
nodes never import server or aiohttp. Every import statement counts, including ones inside
functions. The test refuses to pass on a tree where a package is missing or empty.
"""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_LIBS = {"torch", "diffusers", "transformers", "safetensors", "accelerate", "torchsde", "nodes", "numpy",
              "scipy"}
RULES = {
    "engine": ("only the standard library", lambda top: top in sys.stdlib_module_names or top == "engine"),
    "server": ("no nodes, torch or model libraries", lambda top: top not in MODEL_LIBS),
    "nodes": ("no server or aiohttp", lambda top: top not in {"server", "aiohttp"}),
}
REQUIRED_MODULES = {"engine": {"__init__.py", "schema.py", "registry.py", "workflow.py", "graph.py", "cache.py",
                               "executor.py", "events.py", "errors.py"}}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args \
                and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def violations(package: str) -> list[str]:
    why, allowed = RULES[package]
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        for lineno, module in imported_modules(path):
            if not allowed(module.split(".")[0]):
                bad.append(f"{path.relative_to(ROOT)}:{lineno} imports {module} ({package}: {why})")
    return bad


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_respects_its_import_boundary(package):
    files = list((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python modules: the boundary check would pass vacuously"
    assert violations(package) == []


def test_engine_has_its_core_modules():
    present = {p.name for p in (ROOT / "engine").glob("*.py")}
    assert REQUIRED_MODULES["engine"] <= present


def test_checker_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    import torch\n    from aiohttp import web\n")
    mods = [m for _, m in imported_modules(bad)]
    assert mods == ["torch", "aiohttp"]
    assert not RULES["engine"][1]("torch") and not RULES["nodes"][1]("aiohttp")
    assert not RULES["server"][1]("nodes") and RULES["engine"][1]("graphlib")
