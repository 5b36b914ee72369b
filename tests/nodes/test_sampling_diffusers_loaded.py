"""KSamplerDiffusers on a checkpoint loaded by the loader node, against StableDiffusionPipeline with the
published SD1.5 scheduler config swapped in through `Scheduler.from_config`, as diffusers users do.

The other scheduler tests hand one config to both sides; these pin the config the loader path produces
(a missing `skip_prk_steps` once made PNDM run its Runge-Kutta warm-up on every loaded checkpoint)."""
from __future__ import annotations

import warnings

import pytest
import torch
from sd_helpers import reference, sandbox_paths

from nodes.loader_nodes import CheckpointLoaderSimple
from nodes.sampling import DIFFUSERS_SCHEDULER_NAMES, prepare_noise
from nodes.sampling_nodes import KSamplerDiffusers
from tests.nodes.sampling_toy import conditioning

# scheduler/scheduler_config.json of the published SD1.5 pipeline (stable-diffusion-v1-5), key for key.
PUBLISHED_SD15 = {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
                  "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
                  "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
                  "clip_sample": False}
POS, NEG = conditioning(1), conditioning(2)
SIZE, STEPS, CFG, SEED = 8, 6, 7.5, 7


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    paths = sandbox_paths(tmp_path_factory.mktemp("loaded"))
    next(paths)
    try:
        from sd_helpers import TINY_NAME

        yield CheckpointLoaderSimple().run(TINY_NAME)[0]
    finally:
        next(paths, None)


@pytest.mark.parametrize("name", DIFFUSERS_SCHEDULER_NAMES)
def test_loaded_checkpoint_samples_like_the_pipeline_with_the_published_config(model, name):
    import diffusers

    lat = {"samples": torch.zeros(1, 4, SIZE, SIZE)}
    opts = {"sigma_schedule": "default", "timestep_spacing": "default", "algorithm_type": "default",
            "solver_order": 0, "eta": 0.0, "extra_config": ""}
    calls = []
    hook = model.unet.register_forward_hook(lambda *_: calls.append(1))
    try:
        ours = KSamplerDiffusers().run(model, SEED, STEPS, CFG, name, POS, NEG, lat, 1.0, **opts)[0]["samples"]
    finally:
        hook.remove()
    ref_unet, ref_vae, _ = reference()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = getattr(diffusers, name).from_config(PUBLISHED_SD15)
        pipe = diffusers.StableDiffusionPipeline(
            vae=ref_vae, text_encoder=None, tokenizer=None, unet=ref_unet, scheduler=scheduler, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    with torch.inference_mode():
        theirs = pipe(prompt_embeds=POS[0][0].to(ref_unet.dtype), negative_prompt_embeds=NEG[0][0].to(ref_unet.dtype),
                      height=SIZE * 8, width=SIZE * 8, latents=prepare_noise(lat["samples"], SEED).to(ref_unet.dtype),
                      generator=torch.Generator().manual_seed(SEED), num_inference_steps=STEPS, guidance_scale=CFG,
                      output_type="latent").images
    diff = float((ours.float() * model.latent_scale - theirs.float()).abs().max())
    assert diff <= 1e-4, (name, diff)
    if name == "PNDMScheduler":
        assert len(calls) == STEPS + 1 or len(calls) == 2 * (STEPS + 1), len(calls)  # PLMS: one pass per step

