"""Image nodes: PNG text chunks and ComfyUI file naming, LoadImage (alpha -> mask, frames, change
detection, path safety), resizing against torch/PIL, and the outpaint padding mask."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sd_helpers import sandbox_paths

from engine import UnsafePathError
from nodes.image_nodes import ImagePadForOutpaint, ImageScale, ImageScaleBy, LoadImage, PreviewImage, SaveImage


@pytest.fixture
def sd_paths(tmp_path):
    yield from sandbox_paths(tmp_path)


def _images(b=2, h=8, w=12, seed=0):
    return torch.rand(b, h, w, 3, generator=torch.Generator().manual_seed(seed))


def test_save_image_writes_numbered_pngs_with_workflow_chunks(sd_paths):
    images = _images()
    prompt = {"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}
    workflow = {"nodes": [{"id": 3}], "links": []}
    ui = SaveImage().run(images, "run/shot", prompt=prompt, extra_pnginfo={"workflow": workflow})["ui"]
    assert ui["images"] == [{"filename": "shot_00001_.png", "subfolder": "run", "type": "output"},
                            {"filename": "shot_00002_.png", "subfolder": "run", "type": "output"}]
    with Image.open(sd_paths.output / "run" / "shot_00001_.png") as png:
        assert json.loads(png.info["prompt"]) == prompt and json.loads(png.info["workflow"]) == workflow
        pixels = np.asarray(png)
    expected = np.clip(255.0 * images[0].numpy(), 0, 255).astype(np.uint8)  # ComfyUI truncates
    assert np.array_equal(pixels, expected)
    again = SaveImage().run(images[:1], "run/shot")["ui"]["images"]
    assert again[0]["filename"] == "shot_00003_.png"  # the counter continues after existing files
    with Image.open(sd_paths.output / "run" / "shot_00003_.png") as png:
        assert "prompt" not in png.info and "workflow" not in png.info


def test_save_image_prefix_variables_and_escapes(sd_paths):
    ui = SaveImage().run(_images(1), "%width%x%height%/img")["ui"]["images"]
    assert ui[0]["subfolder"] == "12x8" and (sd_paths.output / "12x8" / "img_00001_.png").is_file()
    for bad in ("../escape", "/abs/path", "a/../../b"):
        with pytest.raises(UnsafePathError):
            SaveImage().run(_images(1), bad)


def test_preview_image_goes_to_the_temp_folder(sd_paths):
    ui = PreviewImage().run(_images(1))["ui"]["images"]
    assert ui[0]["type"] == "temp" and ui[0]["filename"].startswith("ComfyUI_temp_")
    assert (sd_paths.temp / ui[0]["subfolder"] / ui[0]["filename"]).is_file()


def test_load_image_turns_alpha_into_mask(sd_paths):
    rgba = np.random.default_rng(0).integers(0, 256, (10, 14, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(sd_paths.input / "rgba.png")
    Image.fromarray(rgba[..., :3], "RGB").save(sd_paths.input / "rgb.png")
    (sd_paths.input / "notes.txt").write_text("not an image")
    assert LoadImage.INPUT_TYPES()["required"]["image"] == (["rgb.png", "rgba.png"], {"image_upload": True})
    image, mask = LoadImage().run("rgba.png")
    assert image.shape == (1, 10, 14, 3) and mask.shape == (1, 10, 14)
    assert torch.equal(image[0], torch.from_numpy(rgba[..., :3].astype(np.float32) / 255.0))
    assert torch.allclose(mask[0], 1.0 - torch.from_numpy(rgba[..., 3].astype(np.float32) / 255.0))
    _, no_alpha = LoadImage().run("rgb.png")
    assert no_alpha.shape == (1, 64, 64) and torch.count_nonzero(no_alpha) == 0


def test_load_image_frames_become_a_batch_and_annotations_resolve(sd_paths):
    frames = [Image.new("RGB", (6, 4), (i * 80, 0, 0)) for i in range(3)]
    frames[0].save(sd_paths.input / "anim.gif", save_all=True, append_images=frames[1:])
    image, mask = LoadImage().run("anim.gif")
    assert image.shape == (3, 4, 6, 3) and mask.shape[0] == 3
    SaveImage().run(_images(1), "saved")
    assert LoadImage.VALIDATE_INPUTS("saved_00001_.png [output]") is True
    assert LoadImage().run("saved_00001_.png [output]")[0].shape == (1, 8, 12, 3)


def test_load_image_change_detection_and_validation(sd_paths):
    path = sd_paths.input / "x.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(path)
    first = LoadImage.IS_CHANGED("x.png")
    assert LoadImage.IS_CHANGED("x.png") == first
    Image.new("RGB", (4, 4), (9, 2, 3)).save(path)
    assert LoadImage.IS_CHANGED("x.png") != first
    assert LoadImage.VALIDATE_INPUTS("x.png") is True
    assert "Invalid image file" in LoadImage.VALIDATE_INPUTS("missing.png")
    assert "Invalid image file" in LoadImage.VALIDATE_INPUTS("../../etc/passwd")


def test_image_scale_matches_torch_and_pil():
    images = _images(2, 16, 24)
    (scaled,) = ImageScale().run(images, "bilinear", 12, 0, "disabled")  # height from the aspect ratio
    assert torch.equal(scaled, F.interpolate(images.movedim(-1, 1), size=(8, 12), mode="bilinear").movedim(1, -1))
    (lanczos,) = ImageScale().run(images, "lanczos", 30, 20, "disabled")
    pil = Image.fromarray((images[0] * 255).round().to(torch.uint8).numpy()).resize((30, 20), Image.Resampling.LANCZOS)
    assert torch.equal(lanczos[0], torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0))
    (crop,) = ImageScale().run(images, "nearest-exact", 8, 8, "center")
    assert torch.equal(crop, F.interpolate(images.movedim(-1, 1)[:, :, :, 4:20], size=(8, 8),
                                           mode="nearest-exact").movedim(1, -1))
    assert ImageScale().run(images, "bicubic", 0, 0, "disabled")[0] is images
    assert ImageScaleBy().run(images, "area", 0.5)[0].shape == (2, 8, 12, 3)


def _comfy_outpaint_mask(h, w, left, top, right, bottom, feathering):
    # ComfyUI's per-pixel loop, kept literal here as the oracle for the vectorised version.
    mask = torch.ones((h + top + bottom, w + left + right))
    t = torch.zeros((h, w))
    if feathering > 0 and feathering * 2 < h and feathering * 2 < w:
        for i in range(h):
            for j in range(w):
                dt = i if top != 0 else h
                db = h - i if bottom != 0 else h
                dl = j if left != 0 else w
                dr = w - j if right != 0 else w
                d = min(dt, db, dl, dr)
                if d >= feathering:
                    continue
                v = (feathering - d) / feathering
                t[i, j] = v * v
    mask[top:top + h, left:left + w] = t
    return mask


@pytest.mark.parametrize("pads", [(8, 0, 16, 8, 5), (0, 8, 0, 0, 3), (8, 8, 8, 8, 0), (8, 0, 0, 0, 20)])
def test_outpaint_padding_and_mask_match_comfyui(pads):
    images = _images(2, 16, 20)
    image, mask = ImagePadForOutpaint().run(images, *pads)
    left, top, right, bottom, _ = pads
    assert image.shape == (2, 16 + top + bottom, 20 + left + right, 3)
    assert torch.equal(image[:, top:top + 16, left:left + 20], images)
    assert torch.all(image[:, :top] == 0.5) and torch.all(image[:, :, :left] == 0.5)
    assert mask.shape == (1, *image.shape[1:3])
    assert torch.allclose(mask[0], _comfy_outpaint_mask(16, 20, *pads), atol=1e-6)
