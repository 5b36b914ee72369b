"""The Examples menu lists the repository's workflows/ files (GET /api/workflows) and opens one."""
from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_examples_menu_lists_and_opens_repository_workflows(editor):
    page = editor.page
    expected = sorted(p.name for p in (REPO / "workflows").glob("*.json"))
    assert expected, "workflows/ has no examples"
    page.wait_for_function("document.querySelectorAll('#examples-menu [data-example]').length > 0")
    assert page.is_visible("#examples-item")
    names = page.evaluate("[...document.querySelectorAll('#examples-menu [data-example]')].map(b => b.dataset.example)")
    assert names == expected
    page.click("#examples-item > summary")
    page.evaluate("app.graph.clear()")
    assert page.evaluate("app.graph._nodes.length") == 0
    first = expected[0]
    page.click(f"#examples-menu [data-example='{first}']")
    page.wait_for_function("app.graph._nodes.length > 0")
    data = json.loads((REPO / "workflows" / first).read_text())
    wanted = sorted(n["type"] for n in data["nodes"]) if "nodes" in data else \
        sorted(n["class_type"] for n in data.values())
    types = sorted(page.evaluate("app.graph._nodes.map(n => n.comfyClass || n.type)"))
    assert types == wanted
    editor.shot("13-example-opened")
