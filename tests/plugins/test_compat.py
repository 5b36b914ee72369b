"""The ComfyUI compatibility names (folder_paths, comfy.*, latent_preview) against references."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import comfy.model_management as mm
import comfy.utils
import folder_paths
import latent_preview
from engine import ExecutionInterrupted, FolderPaths, RunContext, UnsafePathError, activate_paths, active_paths
from engine.context import call_with_context
from engine.events import ListSink


@pytest.fixture
def base(tmp_path):
    previous = active_paths()
    activate_paths(FolderPaths(tmp_path))
    yield tmp_path
    activate_paths(previous)


def in_run(fn, services=None, sink=None):
    ctx = RunContext("run-1", "7", "PackNode", sink=sink or ListSink(), services=services or {})
    return ctx, call_with_context(ctx, fn)


# --- folder_paths ---

def test_folder_paths_follows_the_active_installation(base):
    (base / "models" / "loras" / "style").mkdir(parents=True)
    (base / "models" / "loras" / "style" / "b.safetensors").write_bytes(b"x")
    (base / "models" / "loras" / "a.pt").write_bytes(b"x")
    (base / "models" / "loras" / "notes.txt").write_text("skip")
    assert folder_paths.get_filename_list("loras") == ["a.pt", "style/b.safetensors"]
    assert folder_paths.get_full_path("loras", "style/b.safetensors") == str(base / "models/loras/style/b.safetensors")
    assert folder_paths.get_full_path("loras", "../loras/a.pt") is None  # never outside the folder
    with pytest.raises(FileNotFoundError):
        folder_paths.get_full_path_or_raise("loras", "missing.pt")
    assert folder_paths.models_dir == str(base / "models")
    assert folder_paths.base_path == str(base)
    assert folder_paths.get_output_directory() == str(base / "output")
    assert folder_paths.get_input_directory() == folder_paths.input_directory == str(base / "input")
    assert folder_paths.get_temp_directory() == str(base / "temp")
    assert folder_paths.get_folder_paths("clip") == [str(base / "models/text_encoders"), str(base / "models/clip")]
    assert folder_paths.get_filename_list("no_such_kind") == []


def test_folder_names_and_paths_is_a_live_view_packs_can_extend(base, tmp_path_factory):
    extra = tmp_path_factory.mktemp("ipadapter")
    (extra / "ip.safetensors").write_bytes(b"x")
    assert "checkpoints" in folder_paths.folder_names_and_paths
    paths, exts = folder_paths.folder_names_and_paths["checkpoints"]
    assert paths[0] == str(base / "models" / "checkpoints") and ".safetensors" in exts
    # the idioms real packs use to add their own model kinds
    folder_paths.folder_names_and_paths["ipadapter"] = ([], folder_paths.supported_pt_extensions)
    folder_paths.folder_names_and_paths["ipadapter"][0].append(str(extra))
    assert folder_paths.get_filename_list("ipadapter") == ["ip.safetensors"]
    folder_paths.add_model_folder_path("ipadapter", str(base / "first"), is_default=True)
    assert folder_paths.get_folder_paths("ipadapter") == [str(base / "first"), str(extra)]
    assert active_paths().models["ipadapter"][1] == extra


def test_annotated_names_and_save_paths_stay_inside_their_folders(base):
    assert folder_paths.annotated_filepath("x.png [output]") == ("x.png", str(base / "output"))
    assert folder_paths.get_annotated_filepath("sub/x.png [temp]") == str(base / "temp/sub/x.png")
    assert folder_paths.get_annotated_filepath("x.png") == str(base / "input/x.png")
    assert folder_paths.exists_annotated_filepath("../../etc/passwd") is False
    with pytest.raises(UnsafePathError):
        folder_paths.get_annotated_filepath("../secret.png")
    out = folder_paths.get_output_directory()
    folder, name, counter, sub, prefix = folder_paths.get_save_image_path("shots/img_%width%x%height%", out, 64, 32)
    assert (folder, name, counter, sub, prefix) == (str(base / "output/shots"), "img_64x32", 1, "shots",
                                                    "shots/img_64x32")
    for existing in ("img_64x32_00001_.png", "img_64x32_00007_.png", "img_64x32_extra.png", "other_00009_.png"):
        (base / "output" / "shots" / existing).write_bytes(b"")
    assert folder_paths.get_save_image_path("shots/img_%width%x%height%", out, 64, 32)[2] == 8
    with pytest.raises(UnsafePathError):
        folder_paths.get_save_image_path("../escape/img", out)


# --- comfy.utils ---

def test_progress_bar_reports_through_the_run_context_and_is_a_cancel_point():
    def work():
        bar = comfy.utils.ProgressBar(4)
        bar.update(1)
        bar.update(2)
        bar.update_absolute(9, preview=("JPEG", "img", 512))  # clamped to total, as ComfyUI
        comfy.utils.ProgressBar(2, node_id="other").update(1)
        return bar.current

    ctx, current = in_run(work)
    events = [(e.type, e.data()) for e in ctx.sink.events]
    assert current == 4
    assert events == [("progress", {"prompt_id": "run-1", "node": "7", "value": 1, "max": 4}),
                      ("progress", {"prompt_id": "run-1", "node": "7", "value": 3, "max": 4}),
                      ("progress", {"prompt_id": "run-1", "node": "7", "value": 4, "max": 4}),
                      ("preview", {"prompt_id": "run-1", "node": "7"}),
                      ("progress", {"prompt_id": "run-1", "node": "other", "value": 1, "max": 2})]
    ctx.cancel_token.cancel()
    with pytest.raises(ExecutionInterrupted):
        call_with_context(ctx, lambda: comfy.utils.ProgressBar(2).update(1))
    comfy.utils.ProgressBar(3).update(1)  # outside a run it only counts


def test_common_upscale_matches_torch_and_pil_references():
    torch.manual_seed(0)
    samples = torch.rand(2, 3, 12, 16)
    for method in ("nearest-exact", "bilinear", "bicubic", "area"):
        want = torch.nn.functional.interpolate(samples, size=(6, 10), mode=method)
        assert torch.equal(comfy.utils.common_upscale(samples, 10, 6, method, "disabled"), want)
    # center crop to the target aspect first: 16x12 -> 1:1 keeps the middle 12 columns
    want = torch.nn.functional.interpolate(samples[..., 2:14], size=(6, 6), mode="bilinear")
    assert torch.equal(comfy.utils.common_upscale(samples, 6, 6, "bilinear", "center"), want)
    # lanczos goes through PIL on 8-bit images, as in ComfyUI
    got = comfy.utils.common_upscale(samples, 10, 6, "lanczos", "disabled")
    ref = Image.fromarray((samples[1].permute(1, 2, 0) * 255).round().byte().numpy()).resize(
        (10, 6), Image.Resampling.LANCZOS)
    assert torch.allclose(got[1].permute(1, 2, 0), torch.from_numpy(np.asarray(ref, dtype=np.float32) / 255))
    video = torch.rand(2, 4, 3, 8, 8)  # [B,C,T,H,W] is resized frame by frame
    got = comfy.utils.common_upscale(video, 4, 6, "area", "disabled")
    assert got.shape == (2, 4, 3, 6, 4)
    for t in range(3):
        frame = torch.nn.functional.interpolate(video[:, :, t], size=(6, 4), mode="area")
        assert torch.allclose(got[:, :, t], frame)
    latent = torch.randn(1, 4, 8, 8)  # bislerp is for latents
    assert comfy.utils.common_upscale(latent, 16, 16, "bislerp", "disabled").shape == (1, 4, 16, 16)
    with pytest.raises(ValueError, match="upscale_method 'cubic'"):
        comfy.utils.common_upscale(samples, 4, 4, "cubic", "disabled")


def test_repeat_to_batch_size_trims_and_tiles():
    t = torch.arange(3).reshape(3, 1)
    assert comfy.utils.repeat_to_batch_size(t, 2).flatten().tolist() == [0, 1]
    assert comfy.utils.repeat_to_batch_size(t, 7).flatten().tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_load_torch_file_reads_safetensors_and_refuses_pickle_without_the_opt_in(tmp_path, monkeypatch):
    sd = {"w": torch.arange(6, dtype=torch.float16).reshape(2, 3), "b": torch.ones(2, dtype=torch.bfloat16)}
    comfy.utils.save_torch_file(sd, tmp_path / "m.safetensors", metadata={"format": "pt"})
    loaded, meta = comfy.utils.load_torch_file(str(tmp_path / "m.safetensors"), return_metadata=True)
    assert meta == {"format": "pt"}
    assert all(torch.equal(loaded[k], sd[k]) and loaded[k].dtype == sd[k].dtype for k in sd)
    torch.save({"state_dict": {"w": torch.ones(2)}}, tmp_path / "m.ckpt")
    monkeypatch.delenv("DIFFGRAPH_ALLOW_PICKLE", raising=False)
    with pytest.raises(ValueError, match="pickle"):
        comfy.utils.load_torch_file(str(tmp_path / "m.ckpt"), safe_load=False)
    monkeypatch.setenv("DIFFGRAPH_ALLOW_PICKLE", "1")
    assert torch.equal(comfy.utils.load_torch_file(str(tmp_path / "m.ckpt"))["w"], torch.ones(2))


# --- comfy.model_management ---

def test_interrupts_are_per_run_and_raise_the_engine_cancel():
    assert mm.InterruptProcessingException is ExecutionInterrupted
    assert mm.processing_interrupted() is False
    mm.interrupt_current_processing()  # outside a run: nothing to cancel
    mm.throw_exception_if_processing_interrupted()

    def work():
        assert mm.processing_interrupted() is False
        mm.interrupt_current_processing()
        assert mm.processing_interrupted() is True
        mm.throw_exception_if_processing_interrupted()

    with pytest.raises(ExecutionInterrupted):
        in_run(work)


def test_devices_follow_the_run_services():
    assert mm.intermediate_device() == torch.device("cpu")
    assert in_run(mm.get_torch_device, services={"device": "meta"})[1] == torch.device("meta")
    assert mm.get_torch_device().type in ("cpu", "cuda")
    mm.soft_empty_cache()
    assert mm.get_free_memory(torch.device("cpu")) > 0


# --- latent_preview ---

def test_prepare_callback_reports_steps_and_previews_only_when_asked():
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))

    def sample():
        store = {}
        callback = latent_preview.prepare_callback(None, 3, x0_output_dict=store)
        for step in range(3):
            callback(step, latent, latent, 3)
        return store

    ctx, store = in_run(sample)
    assert store["x0"] is latent
    assert [(e.type, e.data().get("value")) for e in ctx.sink.events] == [("progress", 1), ("progress", 2),
                                                                            ("progress", 3)]
    ctx, _ = in_run(sample, services={"preview_method": "latent2rgb"})
    previews = [e.image for e in ctx.sink.events if e.type == "preview"]
    assert len(previews) == 3 and previews[0][0] == "JPEG" and previews[0][2] == 512
    factors = torch.tensor(((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350),  # SD1 latent->RGB fit
                            (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177)))
    want = (((latent[0].permute(1, 2, 0) @ factors) + 1) / 2).clamp(0, 1).mul(255).round().byte().numpy()
    assert np.array_equal(np.asarray(previews[0][1]), want)


# --- comfy.samplers, comfy.sd, nodes ---

def test_sampler_and_scheduler_names_are_the_built_in_samplers_lists():
    import comfy.samplers
    import nodes
    import nodes.sampling

    assert comfy.samplers.KSampler.SAMPLERS == list(nodes.sampling.SAMPLER_NAMES)
    assert comfy.samplers.KSampler.SCHEDULERS == list(nodes.sampling.SCHEDULER_NAMES)
    assert comfy.samplers.SAMPLER_NAMES == comfy.samplers.KSAMPLER_NAMES == comfy.samplers.KSampler.SAMPLERS
    assert {"euler", "euler_ancestral", "dpmpp_2m", "ddim"} <= set(comfy.samplers.KSampler.SAMPLERS)
    assert {"normal", "karras", "exponential", "simple"} <= set(comfy.samplers.KSampler.SCHEDULERS)
    if "KSampler" in nodes.NODE_CLASS_MAPPINGS:  # the combos a pack copies are the ones KSampler checks
        required = nodes.KSampler.INPUT_TYPES()["required"]
        assert list(required["sampler_name"][0]) == comfy.samplers.KSampler.SAMPLERS
        assert list(required["scheduler"][0]) == comfy.samplers.KSampler.SCHEDULERS


def test_nodes_and_comfy_sd_carry_comfyui_names_for_the_built_in_objects():
    import comfy.sd
    import nodes
    from nodes.model_types import ClipModel, DiffusionModel, VaeModel

    assert nodes.MAX_RESOLUTION == 16384
    assert nodes.CheckpointLoaderSimple is nodes.NODE_CLASS_MAPPINGS["CheckpointLoaderSimple"]
    with pytest.raises(AttributeError):
        nodes.NoSuchNodeClass  # noqa: B018
    assert (comfy.sd.CLIP, comfy.sd.VAE, comfy.sd.MODEL) == (ClipModel, VaeModel, DiffusionModel)
