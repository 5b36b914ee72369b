"""engine.plugins: discovery order, private namespaces, isolated failures, clashes, web folders, restarts."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from engine import NodeRegistry
from engine.plugins import RESTART_MARKER, LoadReport, load_builtin, load_pack, load_packs, mark_restart_required
from tests.plugins import packs

ROOT = Path(__file__).resolve().parents[2]


class BuiltinThing:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    def run(self):
        return (0,)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    main, extra = base / "custom_nodes", base / "extra_nodes"
    w = packs.write_pack
    w(main, "a_clash_first", packs.clash_pack("SharedNode"))
    w(main, "b_clash_second", packs.clash_pack("SharedNode", {"BuiltinThing": "Renamed builtin"}))
    w(main, "builtin_clash", packs.clash_pack("BuiltinThing"))
    w(main, "empty_pack", packs.NO_NODES)
    w(main, "good_pack", packs.GOOD)
    w(main, "missing_dep", packs.MISSING_DEP)
    w(main, "nodes", packs.NODES_NAMED)
    w(main, "no_init_dir", {"readme.txt": "not a pack"})
    w(main, "off_pack.disabled", {"__init__.py": "raise SystemExit('a disabled pack was imported')\n"})
    w(main, "raises_pack", packs.RAISES)
    w(main, "single_file.py", packs.v1_node("Single") + "NODE_CLASS_MAPPINGS = {'SingleFileNode': Single}\n")
    w(main, "syntax_pack.py", packs.SYNTAX)
    w(main, "utils", packs.UTILS)
    w(main, "web_escape", packs.WEB_ESCAPE)
    w(main, "web_only", packs.WEB_ONLY_PYPROJECT)
    w(main, "web_pack", packs.WEB)
    w(main, "__pycache__", {"junk.pyc": ""})
    w(main, ".hidden", packs.GOOD)
    (main / "README.md").write_text("# not a pack\n")
    w(extra, "good_pack", packs.GOOD)  # same name in a second folder
    w(extra, "zz_extra.py", packs.v1_node("Extra") + "NODE_CLASS_MAPPINGS = {'ExtraNode': Extra}\n")
    registry = NodeRegistry()
    registry.register(BuiltinThing, "BuiltinThing", "Builtin thing", pack="builtin")
    report = load_packs([main, extra], registry)
    return registry, report, main, extra


def state(report: LoadReport) -> dict[str, str]:
    return {p.name: p.state for p in report.packs}


def test_every_entry_is_reported_in_sorted_order_with_its_state(tree):
    _, report, main, extra = tree
    assert [(p.name, p.state) for p in report.packs] == [
        ("a_clash_first", "loaded"), ("b_clash_second", "failed"), ("builtin_clash", "failed"),
        ("empty_pack", "failed"), ("good_pack", "loaded"), ("missing_dep", "failed"), ("no_init_dir", "failed"),
        ("nodes", "loaded"), ("off_pack", "disabled"), ("raises_pack", "failed"),
        ("single_file", "loaded"), ("syntax_pack", "failed"), ("utils", "loaded"), ("web_escape", "loaded"),
        ("web_only", "loaded"), ("web_pack", "loaded"), ("good_pack", "failed"), ("zz_extra", "loaded")]
    assert report.packs[0].path == str(main / "a_clash_first")
    assert report.packs[-1].path == str(extra / "zz_extra.py")
    assert all(p.import_seconds >= 0 for p in report.packs)


def test_good_pack_registers_v1_and_typed_nodes_under_its_pack_name(tree):
    registry, report, _, _ = tree
    good = report.get("good_pack")
    assert good.nodes == ["GoodAddOne", "GoodDouble"] and good.refused == [] and good.error is None
    assert good.module_name == "diffgraph_packs.good_pack"
    assert registry.pack_of("GoodAddOne") == registry.pack_of("GoodDouble") == "good_pack"
    info = registry.object_info()
    assert info["GoodAddOne"]["display_name"] == "Good: add one"
    assert info["GoodDouble"]["display_name"] == "Good: double"
    assert info["GoodAddOne"]["python_module"] == "custom_nodes.good_pack"
    module = sys.modules["diffgraph_packs.good_pack"]
    assert module.LABEL == "relative imports work"  # `from .helpers import LABEL` inside the pack
    assert registry.get_class("GoodAddOne")().run(4) == (5,)
    assert report.get("single_file").nodes == ["SingleFileNode"]


def test_failures_are_reported_with_a_useful_error_and_the_traceback(tree):
    _, report, main, _ = tree
    raises = report.get("raises_pack")
    assert raises.error == "RuntimeError: pack exploded at import"
    assert str(main / "raises_pack" / "__init__.py") in raises.traceback
    syntax = report.get("syntax_pack")
    assert syntax.error.startswith(f"syntax error in {main / 'syntax_pack.py'} line 1")
    assert "SyntaxError" in syntax.traceback
    missing = report.get("missing_dep")
    assert "missing dependency 'diffgraph_test_no_such_module'" in missing.error
    assert "pip install -r requirements.txt" in missing.error
    assert "defines no nodes" in report.get("empty_pack").error
    assert "without __init__.py" in report.get("no_init_dir").error
    assert all(p.nodes == [] for p in report.failed)


def test_a_failed_pack_leaves_no_module_behind(tree):
    for name in ("raises_pack", "syntax_pack", "missing_dep", "empty_pack"):
        assert not [m for m in sys.modules if m.startswith(f"diffgraph_packs.{name}")]


def test_a_failure_is_logged_with_its_traceback_and_later_packs_still_load(tmp_path, caplog):
    packs.write_pack(tmp_path, "a_raises", packs.RAISES)
    packs.write_pack(tmp_path, "b_fine.py", packs.v1_node("Fine") + "NODE_CLASS_MAPPINGS = {'LogFine': Fine}\n")
    with caplog.at_level(logging.INFO, logger="engine.plugins"):
        report = load_packs([tmp_path], NodeRegistry())
    assert state(report) == {"a_raises": "failed", "b_fine": "loaded"}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "a_raises" in errors[0].getMessage()
    assert "Traceback (most recent call last)" in errors[0].getMessage()
    assert any("(IMPORT FAILED)" in r.getMessage() for r in caplog.records)


def test_a_node_clashing_with_a_builtin_is_refused_and_the_builtin_kept(tree):
    registry, report, _, _ = tree
    clash = report.get("builtin_clash")
    assert clash.nodes == []
    assert any("'BuiltinThing'" in r and "already registered by builtin" in r for r in clash.refused)
    assert "every node of builtin_clash was refused" in clash.error
    assert registry.pack_of("BuiltinThing") == "builtin"
    assert registry.get_class("BuiltinThing") is BuiltinThing
    assert registry.object_info()["BuiltinThing"]["display_name"] == "Builtin thing"


def test_between_two_packs_the_first_in_sorted_order_wins_display_names_included(tree):
    registry, report, _, _ = tree
    assert report.get("a_clash_first").nodes == ["SharedNode"]
    second = report.get("b_clash_second")
    assert any("'SharedNode'" in r and "already registered by a_clash_first" in r for r in second.refused)
    # b may not rename SharedNode (a's) nor the built-in BuiltinThing
    assert any("display name for 'BuiltinThing' refused" in r for r in second.refused)
    info = registry.object_info()
    assert info["SharedNode"]["display_name"] == "SharedNode (clashing)"
    assert registry.pack_of("SharedNode") == "a_clash_first"
    assert info["BuiltinThing"]["display_name"] == "Builtin thing"


def test_packs_named_like_real_modules_do_not_shadow_them(tree):
    registry, report, _, _ = tree
    import nodes as real_nodes

    assert Path(real_nodes.__file__).resolve() == ROOT / "nodes" / "__init__.py"
    assert sys.modules["nodes"] is real_nodes
    shadow = sys.modules["diffgraph_packs.nodes"]
    assert shadow is not real_nodes and shadow.MAX == real_nodes.MAX_RESOLUTION
    assert report.get("nodes").nodes == ["NodesPackNode"]
    assert report.get("utils").module_name == "diffgraph_packs.utils"
    assert "utils" not in sys.modules or not hasattr(sys.modules["utils"], "NODE_CLASS_MAPPINGS")
    assert registry.pack_of("UtilsPackNode") == "utils"


def test_disabled_entries_are_listed_but_never_imported(tree):
    registry, report, main, _ = tree
    off = report.get("off_pack")
    assert off.state == "disabled" and off.path == str(main / "off_pack.disabled")
    assert not [m for m in sys.modules if m.startswith("diffgraph_packs.off_pack")]


def test_disable_all_loads_only_the_whitelist(tree):
    _, _, main, _ = tree
    report = load_packs([main], NodeRegistry(), disable_all=True, whitelist=["good_pack", "single_file"])
    assert {p.name for p in report.loaded} == {"good_pack", "single_file"}
    assert {p.state for p in report.packs if p.name not in ("good_pack", "single_file")} == {"disabled"}


def test_web_directories_stay_inside_their_pack(tree):
    _, report, main, _ = tree
    assert report.get("web_pack").web_directory == str((main / "web_pack" / "js").resolve())
    web_only = report.get("web_only")  # no nodes, but a web folder from pyproject [tool.comfy]: loaded
    assert web_only.state == "loaded" and web_only.nodes == []
    assert web_only.web_directory == str((main / "web_only" / "web").resolve())
    escape = report.get("web_escape")
    assert escape.state == "loaded" and escape.web_directory is None
    assert any("WEB_DIRECTORY '../' refused" in r for r in escape.refused)
    assert set(report.web_directories()) == {"web_pack", "web_only"}


def test_a_second_pack_with_a_taken_name_is_refused(tree):
    _, report, main, extra = tree
    second = [p for p in report.packs if p.name == "good_pack"][1]
    assert second.state == "failed" and second.path == str(extra / "good_pack")
    assert second.error == f"a pack named 'good_pack' was already loaded from {main / 'good_pack'}"


def test_loading_a_pack_again_into_another_registry_reuses_its_module(tmp_path):
    pack = packs.write_pack(tmp_path, "counted", {"__init__.py": "import builtins\n"
                            "builtins.diffgraph_test_imports = getattr(builtins, 'diffgraph_test_imports', 0) + 1\n"
                            + packs.v1_node("Counted") + "NODE_CLASS_MAPPINGS = {'Counted': Counted}\n"})
    import builtins
    first, second = NodeRegistry(), NodeRegistry()
    assert load_pack(pack, first).nodes == ["Counted"]
    assert load_pack(pack, second).nodes == ["Counted"]
    assert builtins.diffgraph_test_imports == 1
    assert first.get_class("Counted") is second.get_class("Counted")
    del builtins.diffgraph_test_imports


def test_load_builtin_registers_the_nodes_package_and_reports_a_broken_one():
    registry = NodeRegistry()
    report = load_builtin(registry)
    import nodes

    assert report.state == "loaded" and report.name == "builtin"
    assert sorted(report.nodes) == sorted(nodes.NODE_CLASS_MAPPINGS)
    assert all(registry.pack_of(n) == "builtin" for n in report.nodes)
    broken = load_builtin(NodeRegistry(), module_name="diffgraph_test_no_such_builtin")
    assert broken.state == "failed" and "diffgraph_test_no_such_builtin" in broken.error


def test_changes_on_disk_and_cli_markers_make_a_restart_required(tmp_path):
    packs.write_pack(tmp_path, "first.py", packs.v1_node("R1") + "NODE_CLASS_MAPPINGS = {'RestartOne': R1}\n")
    report = load_packs([tmp_path], NodeRegistry())
    assert report.api_payload([tmp_path])["restart_required"] is False
    (tmp_path / "first.py").rename(tmp_path / "first.py.disabled")
    packs.write_pack(tmp_path, "second.py", packs.v1_node("R2") + "NODE_CLASS_MAPPINGS = {'RestartTwo': R2}\n")
    mark_restart_required(tmp_path, "updated: third abc -> def")
    payload = report.api_payload([tmp_path])
    assert payload["restart_required"] is True
    assert payload["restart_reasons"] == [f"added: {tmp_path / 'first.py.disabled'}",
                                          f"added: {tmp_path / 'second.py'}", f"gone: {tmp_path / 'first.py'}",
                                          "updated: third abc -> def"]
    assert (tmp_path / RESTART_MARKER).is_file()
    assert json.loads(json.dumps(payload))["packs"][0]["nodes"] == ["RestartOne"]
    # a marker older than the load is history, not a reason
    later = load_packs([tmp_path], NodeRegistry())
    assert later.restart_reasons([tmp_path]) == []


def test_broken_declarations_are_refused_node_by_node_or_fail_the_pack(tmp_path):
    packs.write_pack(tmp_path, "half_bad", {"__init__.py": packs.v1_node("Fine") + packs.v1_node("Bad") +
                     "Bad.INPUT_TYPES = classmethod(lambda cls: 1 / 0)\n"
                     "NODE_CLASS_MAPPINGS = {'HalfFine': Fine, 'HalfBad': Bad}\n"})
    packs.write_pack(tmp_path, "not_a_mapping.py", "NODE_CLASS_MAPPINGS = ['oops']\n")
    packs.write_pack(tmp_path, "bad_typed.py", "from engine import INT, Input, Output, node\n"
                     "@node('BadTyped')\nclass BadTyped:\n    inputs = (Input('x', INT, default=5, max=1),)\n"
                     "    outputs = (Output(INT),)\n    def run(self, x):\n        return (x,)\n")
    registry = NodeRegistry()
    report = load_packs([tmp_path], registry)
    half = report.get("half_bad")
    assert half.state == "loaded" and half.nodes == ["HalfFine"]
    assert half.refused == ["HalfBad: INPUT_TYPES() raised ZeroDivisionError: division by zero"]
    assert report.get("not_a_mapping").state == "failed"
    bad_typed = report.get("bad_typed")
    assert bad_typed.state == "failed"
    assert bad_typed.error == "NodeDefinitionError: node 'BadTyped': input 'x': default 5 is above the maximum 1"
    assert registry.names() == ["HalfFine"]


def test_pack_names_that_are_not_identifiers_get_distinct_module_names(tmp_path):
    packs.write_pack(tmp_path, "ComfyUI-My.Pack", {"__init__.py": packs.v1_node("A") + "NODE_CLASS_MAPPINGS = {'DashA': A}\n"})
    packs.write_pack(tmp_path, "ComfyUI_My_Pack", {"__init__.py": packs.v1_node("B") + "NODE_CLASS_MAPPINGS = {'DashB': B}\n"})
    report = load_packs([tmp_path], NodeRegistry())
    assert [(p.name, p.state, p.module_name) for p in report.packs] == [
        ("ComfyUI-My.Pack", "loaded", "diffgraph_packs.ComfyUI_x2d_My_x2e_Pack"),
        ("ComfyUI_My_Pack", "loaded", "diffgraph_packs.ComfyUI_My_Pack")]
    assert sys.modules["diffgraph_packs.ComfyUI_x2d_My_x2e_Pack"].NODE_CLASS_MAPPINGS.keys() == {"DashA"}
