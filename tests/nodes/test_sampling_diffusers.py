"""KSamplerDiffusers against diffusers' own pipelines: same tiny UNet, noise, embeddings and scheduler
config -> the same latents (max abs diff <= 1e-4), for every diffusers-named scheduler and its options."""
from __future__ import annotations

import warnings

import pytest
import torch

from nodes.sampling import DIFFUSERS_SCHEDULER_NAMES, SD1_SCHEDULER_CONFIG, prepare_noise
from nodes.sampling_nodes import KSamplerDiffusers, diffusers_spec
from nodes.sd.tiny import tiny_modules
from tests.nodes.sampling_toy import conditioning

POS, NEG = conditioning(1), conditioning(2)
SIZE, STEPS, CFG, SEED = 16, 6, 7.5, 42

# (scheduler, KSamplerDiffusers options, the same options as from_config kwargs)
CASES = [(name, {}, {}) for name in DIFFUSERS_SCHEDULER_NAMES] + [
    ("EulerDiscreteScheduler", {"sigma_schedule": "karras"}, {"use_karras_sigmas": True}),
    ("DPMSolverMultistepScheduler", {"sigma_schedule": "karras", "algorithm_type": "sde-dpmsolver++"},
     {"use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"}),
    ("DPMSolverMultistepScheduler", {"solver_order": 3, "extra_config": '{"final_sigmas_type": "zero"}'},
     {"solver_order": 3, "final_sigmas_type": "zero"}),
    ("DDIMScheduler", {"timestep_spacing": "trailing", "eta": 0.5}, {"timestep_spacing": "trailing"}),
    ("UniPCMultistepScheduler", {"extra_config": '{"solver_type": "bh1", "final_sigmas_type": "sigma_min"}'},
     {"solver_type": "bh1", "final_sigmas_type": "sigma_min"}),
    ("HeunDiscreteScheduler", {"sigma_schedule": "exponential"}, {"use_exponential_sigmas": True}),
]


@pytest.fixture(scope="module")
def parts():
    from nodes.model_types import DiffusionModel

    unet, vae, _ = tiny_modules(0, dtype=torch.float32)
    return DiffusionModel(unet=unet, scheduler_config=dict(SD1_SCHEDULER_CONFIG)), vae


def _pipeline(parts, cls_name, flags, img2img=False):
    import diffusers

    model, vae = parts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = getattr(diffusers, cls_name).from_config(SD1_SCHEDULER_CONFIG, **flags)
        cls = diffusers.StableDiffusionImg2ImgPipeline if img2img else diffusers.StableDiffusionPipeline
        pipe = cls(vae=vae, text_encoder=None, tokenizer=None, unet=model.unet, scheduler=scheduler,
                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _ours(model, name, options, lat, denoise=1.0):
    opts = {"sigma_schedule": "default", "timestep_spacing": "default", "algorithm_type": "default",
            "solver_order": 0, "eta": 0.0, "extra_config": "", **options}
    out = KSamplerDiffusers().run(model, SEED, STEPS, CFG, name, POS, NEG, lat, denoise, **opts)[0]
    return out["samples"] * model.latent_scale  # LATENT holds raw latents; pipelines work in scaled ones


@pytest.mark.parametrize("name,options,flags", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_txt2img_equals_stable_diffusion_pipeline(parts, name, options, flags):
    model, _ = parts
    lat = {"samples": torch.zeros(1, 4, SIZE, SIZE)}
    ours = _ours(model, name, options, lat)
    pipe = _pipeline(parts, name, flags)
    extra = {"eta": options["eta"]} if "eta" in options else {}
    with torch.inference_mode():
        theirs = pipe(prompt_embeds=POS[0][0], negative_prompt_embeds=NEG[0][0], height=SIZE * 8, width=SIZE * 8,
                      latents=prepare_noise(lat["samples"], SEED), generator=torch.Generator().manual_seed(SEED),
                      num_inference_steps=STEPS, guidance_scale=CFG, output_type="latent", **extra).images
    assert float((ours - theirs).abs().max()) <= 1e-4, float((ours - theirs).abs().max())


@pytest.mark.parametrize("name", [n for n in DIFFUSERS_SCHEDULER_NAMES if n != "EulerAncestralDiscreteScheduler"])
def test_img2img_equals_stable_diffusion_img2img_pipeline(parts, name):
    model, _ = parts
    raw = torch.randn(1, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(9))
    ours = _ours(model, name, {}, {"samples": raw}, denoise=0.6)
    pipe = _pipeline(parts, name, {}, img2img=True)
    with torch.inference_mode():
        theirs = pipe(prompt_embeds=POS[0][0], negative_prompt_embeds=NEG[0][0], image=raw * model.latent_scale,
                      strength=0.6, generator=torch.Generator().manual_seed(SEED), num_inference_steps=STEPS,
                      guidance_scale=CFG, output_type="latent").images
    assert float((ours - theirs).abs().max()) <= 1e-4


def test_options_a_scheduler_lacks_are_refused_with_the_accepted_list(parts):
    model, _ = parts
    spec = diffusers_spec("EulerAncestralDiscreteScheduler", sigma_schedule="karras")
    with pytest.raises(ValueError, match="has no option 'use_karras_sigmas'.*timestep_spacing"):
        spec.build(model.scheduler_config)
    with pytest.raises(ValueError, match="NaN"):  # diffusers' UniPC bh1 divides by an infinite B(h) at sigma 0
        diffusers_spec("UniPCMultistepScheduler", extra_config='{"solver_type": "bh1"}').build(model.scheduler_config)
    with pytest.raises(ValueError, match="JSON"):
        diffusers_spec("DDIMScheduler", extra_config="{bad")


def test_callbacks_and_guidance_schedule_apply_to_diffusers_schedulers(parts):
    from nodes.sampling import GuidanceSchedule

    model, _ = parts
    seen = []
    patched = model.with_option("cfg_schedule", GuidanceSchedule.parse("0:9, 0.5:3")).add_step_callback(
        lambda info: seen.append((info.step, info.total, info.cfg, round(info.timestep))))
    lat = {"samples": torch.zeros(1, 4, SIZE, SIZE)}
    _ours(patched, "DDIMScheduler", {}, lat)
    assert [s[:3] for s in seen] == [(i, STEPS, 9.0 if i < 3 else 3.0) for i in range(STEPS)]
    assert [s[3] for s in seen] == [831, 665, 499, 333, 167, 1]  # DDIM "leading": 1000 // 6 * i + 1


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ksampler_euler_simple_equals_the_pipeline_with_euler_trailing(parts, prediction_type):
    """Our own sigma-space path end to end. With 5 steps "simple" visits the training sigmas that diffusers'
    "trailing" spacing visits (999, 799, ..., 199), so both feed the UNet the same integer timesteps; eps
    and v parameterisations go through ModelSampling.denoised. Only the start differs on purpose: ComfyUI
    starts pure noise at sqrt(1 + sigma_max^2), diffusers' trailing Euler at sigma_max, so the pipeline is
    handed noise rescaled to start where we do."""
    from nodes.model_types import DiffusionModel
    from nodes.sampling_nodes import KSampler

    model = DiffusionModel(unet=parts[0].unet,
                           scheduler_config={**SD1_SCHEDULER_CONFIG, "prediction_type": prediction_type})
    lat = {"samples": torch.zeros(1, 4, SIZE, SIZE)}
    ours = KSampler().run(model, SEED, 5, CFG, "euler", "simple", POS, NEG, lat, 1.0)[0]["samples"]
    pipe = _pipeline((model, parts[1]), "EulerDiscreteScheduler",
                     {"timestep_spacing": "trailing", "prediction_type": prediction_type})
    pipe.scheduler.set_timesteps(5)
    sigma_max = float(pipe.scheduler.init_noise_sigma)
    with torch.inference_mode():
        theirs = pipe(prompt_embeds=POS[0][0], negative_prompt_embeds=NEG[0][0], height=SIZE * 8, width=SIZE * 8,
                      latents=prepare_noise(lat["samples"], SEED) * (1 + 1 / sigma_max ** 2) ** 0.5,
                      num_inference_steps=5, guidance_scale=CFG, output_type="latent").images
    diff = float((ours * model.latent_scale - theirs).abs().max())
    assert diff <= 1e-4 * float(theirs.abs().max()), diff
