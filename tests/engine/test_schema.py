"""Node declarations: the typed @node form is checked when defined and is a valid V1 class;
V1 classes are read as ComfyUI reads them; /object_info has ComfyUI's shape."""
import pytest

from engine import COMBO, FLOAT, IMAGE, INT, STRING, Input, NodeDefinitionError, NodeRegistry, Output, RunContext, node
from engine.executor import Executor


@node("Blur", category="image/filters", display_name="Gaussian Blur")
class Blur:
    """Blur an image."""
    inputs = (Input("image", IMAGE, tooltip="the picture"),
              Input("radius", FLOAT, default=2.0, min=0.0, max=50.0, step=0.1),
              Input("mode", COMBO, options=["fast", "exact"], default="fast"),
              Input("seed", INT, default=0, min=0, max=2**64 - 1, control_after_generate=True),
              Input("note", STRING, default="", multiline=True, optional=True))
    outputs = (Output(IMAGE, name="blurred", tooltip="the blurred picture"),)

    def run(self, image, radius, mode, seed, note="", ctx: RunContext = None):
        return (image,)


def test_typed_node_is_a_v1_class():
    spec = Blur.INPUT_TYPES()
    assert spec["required"]["radius"] == ("FLOAT", {"default": 2.0, "min": 0.0, "max": 50.0, "step": 0.1})
    assert spec["required"]["mode"] == (["fast", "exact"], {"default": "fast"})
    assert spec["required"]["seed"][1]["control_after_generate"] is True
    assert spec["optional"]["note"] == ("STRING", {"default": "", "multiline": True})
    assert (Blur.RETURN_TYPES, Blur.RETURN_NAMES, Blur.FUNCTION) == (("IMAGE",), ("blurred",), "run")
    assert Blur.CATEGORY == "image/filters" and Blur.DESCRIPTION == "Blur an image."


def test_object_info_has_comfyui_shape():
    reg = NodeRegistry()
    reg.register(Blur)
    info = reg.object_info()["Blur"]
    assert set(info) == {"input", "input_order", "output", "output_is_list", "output_name", "output_tooltips",
                         "name", "display_name", "description", "python_module", "category", "output_node"}
    assert info["input_order"] == {"required": ["image", "radius", "mode", "seed"], "optional": ["note"]}
    assert info["input"]["required"]["mode"] == [["fast", "exact"], {"default": "fast"}]
    assert info["input"]["required"]["image"] == ["IMAGE", {"tooltip": "the picture"}]
    assert (info["output"], info["output_name"], info["output_is_list"]) == (["IMAGE"], ["blurred"], [False])
    assert info["output_tooltips"] == ["the blurred picture"]
    assert (info["display_name"], info["python_module"], info["output_node"]) == ("Gaussian Blur", "nodes", False)


@pytest.mark.parametrize("inputs,run_src,message", [
    ((Input("x", INT, default=20, min=0, max=10),), "def run(self, x): pass", "default 20 is above the maximum 10"),
    ((Input("x", INT, default=-1, min=0),), "def run(self, x): pass", "default -1 is below the minimum 0"),
    ((Input("x", INT), Input("x", FLOAT)), "def run(self, x): pass", "input 'x' is declared twice"),
    ((Input("x", INT),), "def run(self, y): pass", "run() parameter 'y' is not a declared input"),
    ((Input("x", INT), Input("z", INT)), "def run(self, x): pass", "input 'z' is not a parameter of run()"),
    ((Input("m", COMBO, options=["a"], default="b"),), "def run(self, m): pass", "default 'b' is not one of"),
    ((Input("m", COMBO),), "def run(self, m): pass", "is a COMBO without options"),
])
def test_bad_declarations_fail_when_defined_naming_node_and_field(inputs, run_src, message):
    namespace: dict = {}
    exec(run_src, namespace)
    with pytest.raises(NodeDefinitionError, match="node 'Bad'") as info:
        node("Bad")(type("Bad", (), {"inputs": inputs, "outputs": (), "run": namespace["run"]}))
    assert message in str(info.value)


def test_registry_refuses_a_name_clash():
    reg = NodeRegistry()
    reg.register(Blur, pack="builtin")
    with pytest.raises(NodeDefinitionError, match="already registered by builtin"):
        reg.register(Blur, pack="other")


def test_v1_class_with_bad_function_is_refused():
    class NoFn:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}
        RETURN_TYPES = ()
        FUNCTION = "missing"
    with pytest.raises(NodeDefinitionError, match="FUNCTION='missing'"):
        NodeRegistry().register(NoFn, "NoFn")


class Hidden:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"x": ("INT", {"default": 1})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"}}
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("doubled",)
    OUTPUT_NODE = True
    FUNCTION = "go"
    DESCRIPTION = "doubles"
    OUTPUT_TOOLTIPS = ("twice x",)

    def go(self, x, prompt, extra_pnginfo, unique_id):
        return {"ui": {"seen": [sorted(prompt), extra_pnginfo, unique_id]}, "result": (2 * x,)}


def test_hidden_inputs_and_dict_returns():
    reg = NodeRegistry()
    reg.register(Hidden, "Hidden")
    wf = {"7": {"class_type": "Hidden", "inputs": {"x": 4}}}
    result = Executor(reg).run(wf, extra_data={"extra_pnginfo": {"workflow": {"w": 1}}})
    assert result.outputs["7"] == {"seen": [["7"], {"workflow": {"w": 1}}, "7"]}
    assert result.values["7"] == [[8]]
    info = reg.object_info()["Hidden"]
    assert info["input"]["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"}
    assert info["output_name"] == ["doubled"] and info["output_tooltips"] == ["twice x"]


def test_wrong_return_arity_is_a_node_failure_with_a_clear_message():
    class Wrong:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}
        RETURN_TYPES = ("INT", "INT")
        FUNCTION = "go"
        OUTPUT_NODE = True

        def go(self):
            return (1,)
    reg = NodeRegistry()
    reg.register(Wrong, "Wrong")
    result = Executor(reg).run({"1": {"class_type": "Wrong", "inputs": {}}})
    assert result.status == "error"
    assert result.failures[0].message == "Wrong.go returned 1 value(s); RETURN_TYPES declares 2"


def test_input_types_that_raise_are_left_out_of_object_info():
    class Broken:
        @classmethod
        def INPUT_TYPES(cls):
            raise OSError("disk gone")
        RETURN_TYPES = ()
        FUNCTION = "go"

        def go(self):
            return ()
    reg = NodeRegistry()
    with pytest.raises(NodeDefinitionError, match="disk gone"):
        reg.register(Broken, "Broken")
    reg.register(Blur)
    assert list(reg.object_info()) == ["Blur"]
