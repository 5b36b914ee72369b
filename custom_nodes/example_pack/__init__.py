"""Example node pack: image adjustments and a text-to-number utility, one node in each declaration style.

`ImageAdjust` uses Diffgraph's typed `@node` declaration (engine.node, Input, Output, RunContext);
`TextToNumber` is a classic ComfyUI V1 class exported through NODE_CLASS_MAPPINGS. Copy either style.
"""
from .image_adjust import ImageAdjust
from .text_to_number import TextToNumber, parse_number

# The typed @node class is found by the loader on its own; listing it here too is harmless and
# keeps the pack loadable by ComfyUI, which only reads these mappings.
NODE_CLASS_MAPPINGS = {"ImageAdjust": ImageAdjust, "TextToNumber": TextToNumber}
NODE_DISPLAY_NAME_MAPPINGS = {"ImageAdjust": "Image Adjust (brightness, contrast, saturation, gamma)",
                              "TextToNumber": "Text to Number"}

__all__ = ["ImageAdjust", "TextToNumber", "parse_number", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
