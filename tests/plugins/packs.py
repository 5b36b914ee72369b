"""Fixture node packs for the plugin tests, written into temporary custom_nodes folders.

Kept as strings, not files in the repository: a pack with a syntax error must not trip the
linters or the architecture test that parses every module.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

V1_NODE = '''
class {cls}:
    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"x": ("INT", {{"default": 1, "min": 0, "max": 100}})}}}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "test"
    def run(self, x):
        return (x + {add},)
'''


def v1_node(cls: str, add: int = 1) -> str:
    return V1_NODE.format(cls=cls, add=add)


GOOD = {
    "__init__.py": """
        from .impl import AddOne, Double
        from .helpers import LABEL
        NODE_CLASS_MAPPINGS = {"GoodAddOne": AddOne}
        NODE_DISPLAY_NAME_MAPPINGS = {"GoodAddOne": "Good: add one"}
    """,
    "impl.py": v1_node("AddOne") + """
from engine import INT, Input, Output, node

@node("GoodDouble", category="test", display_name="Good: double")
class Double:
    inputs = (Input("x", INT, default=1, min=0, max=100),)
    outputs = (Output(INT),)
    def run(self, x):
        return (2 * x,)
""",
    "helpers.py": "LABEL = 'relative imports work'\n",
}

RAISES = {"__init__.py": "raise RuntimeError('pack exploded at import')\n"}
SYNTAX = "def broken(:\n    pass\n"
MISSING_DEP = {"__init__.py": "import diffgraph_test_no_such_module\nNODE_CLASS_MAPPINGS = {}\n"}
NO_NODES = {"__init__.py": "VERSION = '1.0'\n"}
WEB = {"__init__.py": v1_node("WebNode") + "NODE_CLASS_MAPPINGS = {'WebNode': WebNode}\nWEB_DIRECTORY = './js'\n",
       "js/ext.js": "app.registerExtension({name: 'web_pack.ext'});\n",
       "js/sub/more.js": "// nested\n"}
WEB_ONLY_PYPROJECT = {"__init__.py": "NODE_CLASS_MAPPINGS = {}\n",
                      "pyproject.toml": "[tool.comfy]\nweb = \"web\"\n",
                      "web/ui.js": "// ui only\n"}
WEB_ESCAPE = {"__init__.py": v1_node("EscapeNode") + "NODE_CLASS_MAPPINGS = {'EscapeNode': EscapeNode}\n"
                             "WEB_DIRECTORY = '../'\n"}
# Named like real modules: must not shadow `utils` or the built-in `nodes` package.
UTILS = {"__init__.py": "from .inner import Util\nNODE_CLASS_MAPPINGS = {'UtilsPackNode': Util}\n",
         "inner.py": v1_node("Util")}
NODES_NAMED = {"__init__.py": "import nodes as real_nodes\n" + v1_node("Shadow") +
               "NODE_CLASS_MAPPINGS = {'NodesPackNode': Shadow}\nMAX = real_nodes.MAX_RESOLUTION\n"}


def clash_pack(node_name: str, extra_display: dict[str, str] | None = None) -> dict[str, str]:
    display = {node_name: f"{node_name} (clashing)", **(extra_display or {})}
    return {"__init__.py": v1_node("Clash", add=100) +
            f"NODE_CLASS_MAPPINGS = {{{node_name!r}: Clash}}\nNODE_DISPLAY_NAME_MAPPINGS = {display!r}\n"}


def write_pack(root: Path, name: str, files: dict[str, str] | str) -> Path:
    """A package (files: relative path -> source) or, for a string, a single-file pack `name`."""
    root.mkdir(parents=True, exist_ok=True)
    if isinstance(files, str):
        path = root / name
        path.write_text(files, encoding="utf-8")
        return path
    for rel, text in files.items():
        target = root / name / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text), encoding="utf-8")
    return root / name
