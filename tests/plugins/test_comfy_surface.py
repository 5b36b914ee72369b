"""ComfyUI's module surface for packs: subclassing core nodes, ComfyUI method names, missing-name errors."""
from __future__ import annotations

import pytest

from engine import NodeRegistry
from engine.plugins import load_pack
from engine.schema import NodeSchema
from tests.plugins import packs

# A UI-helper pack's loader: ComfyUI's CheckpointLoaderSimple plus a fourth output (the file name).
SUBCLASS_PACK = {"__init__.py": '''
    import nodes


    class CheckpointLoaderWithName(nodes.CheckpointLoaderSimple):
        RETURN_TYPES = ("MODEL", "CLIP", "VAE", "STRING")
        RETURN_NAMES = ("MODEL", "CLIP", "VAE", "ckpt_name")
        FUNCTION = "load_with_name"

        def load_with_name(self, ckpt_name):
            return (*self.load_checkpoint(ckpt_name), ckpt_name)


    class TwoOutputLoader(nodes.CheckpointLoaderSimple):
        RETURN_TYPES = ("MODEL", "CLIP")

        def load_checkpoint(self, ckpt_name):
            return super().load_checkpoint(ckpt_name)[:2]


    NODE_CLASS_MAPPINGS = {"CheckpointLoaderWithName": CheckpointLoaderWithName,
                           "TwoOutputLoader": TwoOutputLoader}
'''}


def test_a_subclass_of_a_core_loader_may_add_an_output_and_override_function(tmp_path):
    pack = packs.write_pack(tmp_path / "custom_nodes", "loader_pack", SUBCLASS_PACK)
    registry = NodeRegistry()
    report = load_pack(pack, registry)
    assert report.error is None and report.nodes == ["CheckpointLoaderWithName", "TwoOutputLoader"]
    four = registry.schema("CheckpointLoaderWithName")
    assert four.output_types == ("MODEL", "CLIP", "VAE", "STRING")
    assert four.output_is_list == (False,) * 4 and len(four.output_tooltips) == 4
    assert four.function == "load_with_name"
    two = registry.schema("TwoOutputLoader")
    assert two.output_types == ("MODEL", "CLIP") and two.output_is_list == (False, False)
    assert two.function == "load_checkpoint"


def test_lists_declared_on_the_same_class_must_still_match_return_types():
    class Bad:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}
        RETURN_TYPES = ("INT", "INT")
        OUTPUT_IS_LIST = (False,)
        FUNCTION = "run"

        def run(self):
            return (1, 2)

    with pytest.raises(Exception, match="OUTPUT_IS_LIST"):
        NodeSchema.from_class(Bad, "Bad")


COMFY_METHODS = [("CheckpointLoaderSimple", "load_checkpoint"), ("CLIPTextEncode", "encode"),
                 ("EmptyLatentImage", "generate"), ("KSampler", "sample"), ("KSamplerAdvanced", "sample"),
                 ("VAEDecode", "decode"), ("VAEEncode", "encode"), ("SaveImage", "save_images"),
                 ("PreviewImage", "save_images"), ("LoraLoader", "load_lora"),
                 ("LoraLoaderModelOnly", "load_lora_model_only"), ("ImageScale", "upscale"),
                 ("ImageScaleBy", "upscale"), ("VAELoader", "load_vae"), ("CLIPSetLastLayer", "set_last_layer"),
                 ("LatentUpscale", "upscale"), ("LatentUpscaleBy", "upscale"), ("LatentComposite", "composite"),
                 ("ConditioningCombine", "combine"), ("ConditioningSetArea", "append"),
                 ("ConditioningZeroOut", "zero_out"), ("LoadImage", "load_image"),
                 ("VAEDecodeTiled", "decode"), ("VAEEncodeTiled", "encode"), ("VAEEncodeForInpaint", "encode"),
                 ("ImagePadForOutpaint", "expand_image")]


@pytest.mark.parametrize(("class_name", "method"), COMFY_METHODS)
def test_core_classes_carry_comfyui_method_names(class_name, method):
    import nodes

    cls = getattr(nodes, class_name)
    assert callable(getattr(cls, method)), f"nodes.{class_name}.{method} is missing"


def test_module_level_names_packs_use():
    import nodes

    assert nodes.MAX_RESOLUTION == 16384
    assert nodes.NODE_CLASS_MAPPINGS["KSampler"] is nodes.KSampler
    assert nodes.NODE_DISPLAY_NAME_MAPPINGS["KSampler"] == "KSampler"
    assert callable(nodes.common_ksampler)
    assert "bicubic" in nodes.ImageScale.upscale_methods and "nearest-exact" in nodes.ImageScale.upscale_methods
    assert (nodes.PreviewImage().type, nodes.PreviewImage().compress_level) == ("temp", 1)
    assert nodes.PreviewImage().prefix_append.startswith("_temp_")
    assert nodes.SaveImage().type == "output"


@pytest.mark.parametrize(("source", "missing"), [
    ("import comfy.no_such_module\n", "comfy.no_such_module"),
    ("from nodes import NoSuchCoreNode\n", "NoSuchCoreNode"),
    ("import nodes\nX = nodes.NoSuchCoreNode\n", "NoSuchCoreNode"),
    ("from comfy_extras.nodes_no_such import Thing\n", "comfy_extras"),
])
def test_a_missing_comfyui_name_is_reported_as_a_compatibility_gap(tmp_path, source, missing):
    pack = packs.write_pack(tmp_path / "custom_nodes", "gap_pack", {"__init__.py": source})
    report = load_pack(pack, NodeRegistry())
    assert report.state == "failed"
    assert missing in report.error and "Diffgraph compatibility gap" in report.error
    assert "pip install" not in report.error


def test_prestartup_scripts_run_before_any_pack_and_failures_are_reported(tmp_path):
    root = tmp_path / "custom_nodes"
    marker = tmp_path / "order.txt"
    # "a_reader" sorts first, yet "z_writer"'s prestartup script has already run when it is imported.
    packs.write_pack(root, "a_reader", {"__init__.py": f'''
        import pathlib
        SEEN = pathlib.Path({str(marker)!r}).read_text()

        class Seen:
            @classmethod
            def INPUT_TYPES(cls):
                return {{"required": {{}}}}
            RETURN_TYPES = ("STRING",)
            FUNCTION = "run"

            def run(self):
                return (SEEN,)

        NODE_CLASS_MAPPINGS = {{"Seen": Seen}}
    '''})
    packs.write_pack(root, "z_writer", {
        "prestartup_script.py": f"import pathlib\npathlib.Path({str(marker)!r}).write_text('prestartup ran')\n",
        "__init__.py": packs.GOOD if isinstance(packs.GOOD, str) else "NODE_CLASS_MAPPINGS = {}\n"})
    packs.write_pack(root, "broken_pre", {"prestartup_script.py": "raise RuntimeError('pre boom')\n",
                                          "__init__.py": "NODE_CLASS_MAPPINGS = {}\n"})
    packs.write_pack(root, "off_pre.disabled", {"prestartup_script.py": "raise RuntimeError('never')\n",
                                                "__init__.py": "NODE_CLASS_MAPPINGS = {}\n"})
    from engine.plugins import load_packs

    registry = NodeRegistry()
    report = load_packs([root], registry)
    assert report.get("a_reader").state == "loaded"
    assert registry.get_class("Seen")().run() == ("prestartup ran",)
    assert report.get("broken_pre").prestartup_error == "RuntimeError: pre boom"
    assert report.get("off_pre").prestartup_error is None and report.get("a_reader").prestartup_error is None
