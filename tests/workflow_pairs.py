"""The UI/API workflow pairs the converters are checked against.

Ours (tests/fixtures/ui_workflows, written for this project) are always there; ComfyUI's real exports
(../shared/workflows-comfyui beside the clone, as in CI) are optional: their tests skip with a reason when
the folder is absent, so a plain clone passes and still tests every conversion trap on our own pairs.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OWN = REPO / "tests" / "fixtures" / "ui_workflows"
SHARED = REPO.parent / "shared" / "workflows-comfyui"
SHARED_REASON = "../shared/workflows-comfyui (ComfyUI's example exports) is not beside this clone; CI provides it"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=SHARED_REASON)
# The frontend serialised LoadImage's upload button into old API exports; no backend input has that name.
UI_ONLY_INPUTS = {"choose file to upload"}
# Exports older than VAEEncodeForInpaint.grow_mask_by: their UI twins convert with the default.
DRIFT = {("inpaint", "26"): {"grow_mask_by": 6}, ("own_stale_inpaint", "26"): {"grow_mask_by": 6}}


def names(folder: Path) -> list[str]:
    return sorted(p.name.removesuffix(".ui.json") for p in folder.glob("*.ui.json")) if folder.is_dir() else []


def pair_params() -> list:
    """pytest params (folder, name) over our pairs and, when present, the shared ones (one skipped param if not)."""
    own = [pytest.param(OWN, n, id=n) for n in names(OWN)]
    shared = [pytest.param(SHARED, n, id=n) for n in names(SHARED)]
    return own + (shared or [pytest.param(SHARED, None, id="shared", marks=needs_shared)])


def load_pair(folder: Path, name: str) -> tuple[dict, dict]:
    return (json.loads((folder / f"{name}.ui.json").read_text()),
            json.loads((folder / f"{name}.api.json").read_text()))


def expected_inputs(name: str, api: dict) -> dict:
    """{node id: {"class_type", "inputs"}} of an API twin, as a converter must produce it from the UI file."""
    return {nid: {"class_type": n["class_type"],
                  "inputs": {**{k: v for k, v in n["inputs"].items() if k not in UI_ONLY_INPUTS},
                             **DRIFT.get((name, nid), {})}} for nid, n in api.items()}
