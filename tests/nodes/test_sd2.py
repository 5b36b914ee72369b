"""SD2.x single files: the OpenCLIP-H layout, 64-channel heads, v-prediction detection and
ModelSamplingDiscrete, pinned against diffusers/transformers modules holding the same tiny weights
and against StableDiffusionPipeline configured as the published SD2 pipelines are."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch

from nodes.conditioning_nodes import CLIPTextEncode
from nodes.loader_nodes import CheckpointLoaderSimple, CheckpointSave
from nodes.model_sampling_nodes import ModelSamplingDiscrete
from nodes.sampling import prepare_noise
from nodes.sampling.model_sampling import ModelSampling
from nodes.sampling_nodes import KSamplerDiffusers
from nodes.sd.arch import SD1_SCHEDULER
from nodes.sd.loader import load_checkpoint
from nodes.sd.text import clip_tokenizer
from nodes.sd.tiny import tiny_sd2_modules, write_tiny_sd2_checkpoint

SIZE, STEPS, CFG, SEED = 8, 4, 6.0, 3


@pytest.fixture(scope="module")
def sd2_paths(tmp_path_factory):
    from engine import FolderPaths, activate_paths, active_paths

    root = tmp_path_factory.mktemp("sd2")
    ckpts = root / "models" / "checkpoints"
    write_tiny_sd2_checkpoint(ckpts / "sd2.safetensors")
    write_tiny_sd2_checkpoint(ckpts / "sd2v.safetensors", v_prediction=True)
    write_tiny_sd2_checkpoint(ckpts / "sd2marker.safetensors", v_prediction=True, marker=True)
    previous = active_paths()
    paths = FolderPaths(root)
    paths.ensure_dirs()
    activate_paths(paths)
    yield paths
    activate_paths(previous)


def _penultimate_encoder(clip):
    """diffusers' SD2 pipelines ship the OpenCLIP tower with its last layer dropped: the same weights
    in a CLIPTextModel one layer shorter, whose last_hidden_state is the SD2 conditioning."""
    from transformers import CLIPTextModel

    cfg = copy.deepcopy(clip.config)
    cfg.num_hidden_layers -= 1
    short = CLIPTextModel(cfg).eval()
    short.load_state_dict(clip.state_dict(), strict=False)
    return short


def test_sd2_modules_match_diffusers_and_transformers(sd2_paths):
    model, clip, vae = CheckpointLoaderSimple().run("sd2.safetensors")
    ref_unet, ref_vae, ref_clip = tiny_sd2_modules()
    assert model.family == "sd2" and model.prediction_type == "epsilon"
    assert model.unet.config.use_linear_projection and list(model.unet.config.attention_head_dim) == [1, 2]
    assert clip.text_encoder.config.hidden_act == "gelu" and clip.layer_idx == -2
    gen = torch.Generator().manual_seed(0)
    x, ctx = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 77, 64, generator=gen)
    with torch.inference_mode():
        assert (model.unet(x, 500, ctx).sample - ref_unet(x, 500, ctx).sample).abs().max() <= 1e-5
        img = torch.rand(1, 3, 32, 32, generator=gen)
        assert (vae.vae.decode(vae.vae.encode(img).latent_dist.mean).sample
                - ref_vae.decode(ref_vae.encode(img).latent_dist.mean).sample).abs().max() <= 1e-5
        ids = torch.randint(0, 49408, (2, 77), generator=gen)
        ours = clip.text_encoder(input_ids=ids).last_hidden_state
        assert (ours - ref_clip(input_ids=ids).last_hidden_state).abs().max() <= 1e-5


def test_clip_text_encode_is_the_penultimate_layer_padded_with_zero(sd2_paths):
    _model, clip, _vae = CheckpointLoaderSimple().run("sd2.safetensors")
    cond = CLIPTextEncode().run("a photo of a cat", clip)[0][0][0]
    ids = clip_tokenizer()("a photo of a cat").input_ids
    ids = torch.tensor([ids + [0] * (77 - len(ids))])  # OpenCLIP pads with "!" (id 0)
    with torch.inference_mode():
        ref = _penultimate_encoder(tiny_sd2_modules()[2])(input_ids=ids).last_hidden_state
    assert cond.shape == (1, 77, 64)
    assert (cond - ref).abs().max() <= 1e-5


def test_v_prediction_is_detected_from_the_file(sd2_paths):
    assert CheckpointLoaderSimple().run("sd2v.safetensors")[0].prediction_type == "v_prediction"
    assert CheckpointLoaderSimple().run("sd2marker.safetensors")[0].prediction_type == "v_prediction"


def test_model_sampling_discrete_sets_the_parameterisation(sd2_paths):
    model = CheckpointLoaderSimple().run("sd2.safetensors")[0]
    v = ModelSamplingDiscrete().run(model, "v_prediction", False)[0]
    assert v.prediction_type == "v_prediction" and model.prediction_type == "epsilon"
    assert ModelSamplingDiscrete().run(v, "eps", False)[0].prediction_type == "epsilon"
    x0 = ModelSamplingDiscrete().run(model, "x0", False)[0]
    out, x = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    assert torch.equal(ModelSampling.from_config(x0.scheduler_config).denoised(torch.tensor(3.0), out, x), out)
    with pytest.raises(ValueError, match="'lcm' is not supported"):
        ModelSamplingDiscrete().run(model, "lcm", False)


def test_zsnr_sigmas_follow_diffusers_rescaled_betas():
    from diffusers.schedulers.scheduling_ddim import rescale_zero_terminal_snr

    zs = ModelSampling.from_config(dict(SD1_SCHEDULER, rescale_betas_zero_snr=True))
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    abar = torch.cumprod(1 - rescale_zero_terminal_snr(betas), 0)
    ref = ((1 - abar) / abar) ** 0.5
    assert torch.allclose(zs.sigmas[:-1].double(), ref[:-1], rtol=1e-4)
    assert abs(float(zs.sigmas[-1]) - 4518.8) < 1.0  # ComfyUI's finite last sigma (alpha_bar 4.897e-08)


@pytest.mark.parametrize("name", ["sd2.safetensors", "sd2v.safetensors"])
def test_txt2img_matches_the_sd2_pipeline(sd2_paths, name):
    import diffusers

    model, clip, _vae = CheckpointLoaderSimple().run(name)
    pos, neg = CLIPTextEncode().run("a red fox", clip)[0], CLIPTextEncode().run("", clip)[0]
    lat = {"samples": torch.zeros(1, 4, SIZE, SIZE)}
    opts = {"sigma_schedule": "default", "timestep_spacing": "default", "algorithm_type": "default",
            "solver_order": 0, "eta": 0.0, "extra_config": ""}
    ours = KSamplerDiffusers().run(model, SEED, STEPS, CFG, "EulerDiscreteScheduler", pos, neg, lat, 1.0,
                                   **opts)[0]["samples"]
    ref_unet, ref_vae, ref_clip = tiny_sd2_modules(v_prediction=model.prediction_type == "v_prediction")
    tok = copy.deepcopy(clip_tokenizer())
    tok.pad_token = "!"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = diffusers.EulerDiscreteScheduler.from_config(dict(SD1_SCHEDULER, prediction_type=model.prediction_type))
        pipe = diffusers.StableDiffusionPipeline(vae=ref_vae, text_encoder=_penultimate_encoder(ref_clip), tokenizer=tok,
                                                 unet=ref_unet, scheduler=sched, safety_checker=None,
                                                 feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    with torch.inference_mode():
        theirs = pipe("a red fox", negative_prompt="", height=SIZE * 8, width=SIZE * 8,
                      latents=prepare_noise(lat["samples"], SEED), num_inference_steps=STEPS,
                      guidance_scale=CFG, output_type="latent").images
    assert (ours * model.latent_scale - theirs).abs().max() <= 1e-4


def test_checkpoint_save_round_trip_keeps_sd2_and_v_prediction(sd2_paths):
    model, clip, vae = CheckpointLoaderSimple().run("sd2v.safetensors")
    CheckpointSave().run(model, clip, vae, "checkpoints/resaved")
    saved = sd2_paths.output / "checkpoints" / "resaved_00001_.safetensors"
    model2, clip2, _ = load_checkpoint(saved, "cpu")
    assert model2.family == "sd2" and model2.prediction_type == "v_prediction" and clip2.layer_idx == -2
    for a, b in zip(clip.text_encoder.state_dict().values(), clip2.text_encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)


SHARED = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "workflows-comfyui"
SD2_WORKFLOWS = {"txt2img_embedding": (("4",), ("3",), ("5",)), "hiresfix_latent": (("16",), ("3", "11"), ("5", "10"))}


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared ComfyUI workflows (../shared/workflows-comfyui) not present")
@pytest.mark.parametrize("name", sorted(SD2_WORKFLOWS))
def test_shared_sd21_768_workflows_run_on_a_tiny_v_prediction_file(sd2_paths, name):
    import json

    from engine import NodeRegistry
    from engine.executor import Executor
    from engine.plugins import load_builtin
    from engine.workflow import validate_prompt

    loaders, samplers, sizes = SD2_WORKFLOWS[name]
    prompt = json.loads((SHARED / f"{name}.api.json").read_text())
    registry = NodeRegistry()
    load_builtin(registry)
    assert not validate_prompt(prompt, registry).ok  # the shipped name is not in models/checkpoints
    for nid in loaders:
        prompt[nid]["inputs"]["ckpt_name"] = "sd2v.safetensors"
    assert validate_prompt(prompt, registry).ok
    for nid in samplers:
        prompt[nid]["inputs"]["steps"] = 2
    for nid, px in zip(sizes, (64, 96), strict=False):
        prompt[nid]["inputs"].update(width=px, height=px)
    result = Executor(registry).run(prompt, run_id=name)
    assert result.status == "success", result.failures
    assert result.outputs["9"]["images"]
