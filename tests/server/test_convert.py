"""engine.convert: UI-format -> API-format, checked against our own pairs, ComfyUI's exports and synthetic graphs."""
from __future__ import annotations

import json

import pytest

from engine.convert import ConversionError, convert_workflow, mapping_node_info, registry_node_info
from tests.server import comfy_like_nodes
from tests.workflow_pairs import OWN, SHARED, expected_inputs, load_pair, names, needs_shared, pair_params


@pytest.fixture(scope="module")
def info():
    return registry_node_info(comfy_like_nodes.registry())


@needs_shared
def test_every_shared_pair_is_present():
    assert len(names(SHARED)) == 10, names(SHARED)


def test_our_pairs_cover_the_conversion_traps():
    assert names(OWN) == ["own_legacy_seed_control", "own_primitives_and_notes", "own_stale_inpaint"]


@pytest.mark.parametrize(("folder", "name"), pair_params())
def test_ui_workflow_converts_to_its_api_twin(folder, name, info):
    ui, api = load_pair(folder, name)
    got = convert_workflow(ui, info).prompt
    assert sorted(got, key=int) == sorted(api, key=int)
    want = expected_inputs(name, api)
    for nid in api:
        assert {"class_type": got[nid]["class_type"], "inputs": got[nid]["inputs"]} == want[nid], nid
        assert "title" in got[nid]["_meta"]


@pytest.mark.parametrize(("folder", "name", "sampler", "expected"), [
    (OWN, "own_legacy_seed_control", "3", (987654321012, 12, 6.5, "euler_ancestral")),
    pytest.param(SHARED, "txt2img_embedding", "3", (193694018275622, 20, 8, "uni_pc_bh2"), marks=needs_shared)])
def test_boolean_control_marker_is_not_read_as_steps(folder, name, sampler, expected, info):
    # comfy-cli 1.23 turned the 2023 export txt2img_embedding into `steps: true, cfg: 20`.
    ui, _ = load_pair(folder, name)
    ks = convert_workflow(ui, info).prompt[sampler]["inputs"]
    assert (ks["seed"], ks["steps"], ks["cfg"], ks["sampler_name"]) == expected


@pytest.mark.parametrize(("folder", "name", "counts", "first", "second"), [
    (OWN, "own_primitives_and_notes", (12, 8), "10", "11"),
    pytest.param(SHARED, "sdxl_base_refiner", (19, 11), "10", "11", marks=needs_shared)])
def test_primitive_and_note_nodes_are_dropped_and_primitive_values_inlined(folder, name, counts, first, second, info):
    ui, api = load_pair(folder, name)
    got = convert_workflow(ui, info).prompt
    assert (len(ui["nodes"]), len(got)) == counts
    assert {n["class_type"] for n in got.values()}.isdisjoint({"Note", "MarkdownNote", "PrimitiveNode"})
    handover = api[first]["inputs"]["end_at_step"]
    assert got[first]["inputs"]["end_at_step"] == handover and got[second]["inputs"]["start_at_step"] == handover
    assert got[first]["inputs"]["steps"] == got[second]["inputs"]["steps"] == api[first]["inputs"]["steps"]


@pytest.mark.parametrize(("folder", "name"), [(OWN, "own_primitives_and_notes"),
                                               pytest.param(SHARED, "lora_multiple", marks=needs_shared)])
def test_object_info_dump_works_like_a_registry(folder, name):
    reg = comfy_like_nodes.registry()
    dump = json.loads(json.dumps(reg.object_info()))  # what GET /object_info returns
    ui, _ = load_pair(folder, name)
    assert convert_workflow(ui, mapping_node_info(dump)).prompt == \
        convert_workflow(ui, registry_node_info(reg)).prompt


# --- synthetic graphs: the frontend's rules for muted, bypassed, reroute, links v1, subgraphs ---

def node(nid, ntype, widgets=None, inputs=(), outputs=(), mode=0, **extra):
    return {"id": nid, "type": ntype, "mode": mode, "widgets_values": widgets,
            "inputs": [{"name": n, "type": t, "link": link, **({"widget": {"name": n}} if w else {})}
                       for n, t, link, *rest in inputs for w in [rest[0] if rest else False]],
            "outputs": [{"name": t, "type": t, "links": []} for t in outputs], **extra}


def chain(mode_of_middle=0, middle="LatentUpscaleBy"):
    """EmptyLatent(1) -> middle(2) -> KSampler(3).latent_image ; KSampler -> VAEDecode(4) -> Save(5)."""
    return {"nodes": [
        node(1, "EmptyLatentImage", [512, 512, 1], outputs=["LATENT"]),
        node(2, middle, ["bislerp", 1.5], [("samples", "LATENT", 1)], ["LATENT"], mode=mode_of_middle),
        node(3, "KSampler", [7, "fixed", 20, 8, "euler", "normal", 1], [("latent_image", "LATENT", 2)], ["LATENT"]),
        node(5, "SaveImage", ["x"], [("images", "IMAGE", 3)]),
    ], "links": [[1, 1, 0, 2, 0, "LATENT"], [2, 2, 0, 3, 0, "LATENT"], [3, 3, 0, 5, 0, "IMAGE"]]}


def test_bypassed_node_is_rewired_to_its_matching_input(info):
    got = convert_workflow(chain(mode_of_middle=4), info).prompt
    assert "2" not in got and got["3"]["inputs"]["latent_image"] == ["1", 0]


def test_muted_node_is_left_out_with_the_links_into_it(info):
    got = convert_workflow(chain(mode_of_middle=2), info).prompt
    assert "2" not in got and "latent_image" not in got["3"]["inputs"]
    assert got["3"]["inputs"]["seed"] == 7 and got["3"]["inputs"]["steps"] == 20


def test_reroutes_are_followed_and_dropped(info):
    wf = chain(middle="Reroute")
    wf["nodes"][1] = node(2, "Reroute", None, [("", "*", 1)], ["LATENT"])
    got = convert_workflow(wf, info).prompt
    assert "2" not in got and got["3"]["inputs"]["latent_image"] == ["1", 0]


def test_object_links_of_schema_1_and_widgets_by_name(info):
    wf = chain()
    wf["links"] = [{"id": k[0], "origin_id": k[1], "origin_slot": k[2], "target_id": k[3], "target_slot": k[4],
                    "type": k[5]} for k in wf["links"]]
    wf["nodes"][0]["widgets_values"] = {"width": 64, "height": 32, "batch_size": 2}
    got = convert_workflow(wf, info).prompt
    assert got["2"]["inputs"]["samples"] == ["1", 0]
    assert got["1"]["inputs"] == {"width": 64, "height": 32, "batch_size": 2}


def test_seed_without_a_saved_control_value_keeps_positions(info):
    wf = chain()
    wf["nodes"][2]["widgets_values"] = [7, 20, 8, "euler", "normal", 1]
    ks = convert_workflow(wf, info).prompt["3"]["inputs"]
    assert (ks["seed"], ks["steps"], ks["cfg"], ks["denoise"]) == (7, 20, 8, 1)


def test_missing_widget_values_get_defaults_and_a_warning(info):
    wf = chain()
    wf["nodes"][0]["widgets_values"] = [256]
    conv = convert_workflow(wf, info)
    assert conv.prompt["1"]["inputs"] == {"width": 256, "height": 512, "batch_size": 1}
    assert any("height" in w for w in conv.warnings)


def test_list_widget_values_are_wrapped_so_they_do_not_read_as_links(info):
    wf = chain()
    wf["nodes"][3]["widgets_values"] = [["a", 1]]
    assert convert_workflow(wf, info).prompt["5"]["inputs"]["filename_prefix"] == {"__value__": ["a", 1]}


def test_unknown_node_types_are_all_reported(info):
    wf = chain()
    wf["nodes"].append(node(9, "NoSuchNode"))
    wf["nodes"].append(node(10, "AlsoMissing"))
    with pytest.raises(ConversionError) as err:
        convert_workflow(wf, info)
    assert len(err.value.problems) == 2 and "NoSuchNode" in str(err.value)


@pytest.mark.parametrize("bad", [None, [], {"nodes": 3}, "x"])
def test_non_workflows_are_refused(bad, info):
    with pytest.raises(ConversionError):
        convert_workflow(bad, info)


def test_subgraph_instances_are_flattened_with_parent_ids(info):
    sub = {"id": "sg-1", "name": "upscale", "inputs": [{"name": "samples", "type": "LATENT"}],
           "outputs": [{"name": "LATENT", "type": "LATENT"}],
           "nodes": [node(1, "LatentUpscaleBy", ["area", 2.0], [("samples", "LATENT", 10)], ["LATENT"])],
           "links": [{"id": 10, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 0},
                     {"id": 11, "origin_id": 1, "origin_slot": 0, "target_id": -20, "target_slot": 0}]}
    wf = chain()
    wf["nodes"][1] = node(2, "sg-1", None, [("samples", "LATENT", 1)], ["LATENT"])
    wf["definitions"] = {"subgraphs": [sub]}
    got = convert_workflow(wf, info).prompt
    assert got["2:1"]["inputs"] == {"upscale_method": "area", "scale_by": 2.0, "samples": ["1", 0]}
    assert got["3"]["inputs"]["latent_image"] == ["2:1", 0] and "2" not in got
