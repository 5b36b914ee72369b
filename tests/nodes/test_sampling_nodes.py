"""KSampler and friends on a tiny random UNet: ComfyUI's inputs and semantics, seeds and batches, img2img,
KSamplerAdvanced chaining, inpainting, callbacks, guidance schedules, progress, previews and cancel."""
from __future__ import annotations

import pytest
import torch

from engine import CancelToken, ExecutionInterrupted, RunContext
from engine.events import ListSink
from engine.schema import NodeSchema
from nodes.sampling import (
    SAMPLER_NAMES,
    SCHEDULER_NAMES,
    ksampler_sigmas,
    model_sampling,
    prepare_noise,
    sample,
    sampler_object,
)
from nodes.sampling_nodes import GuidanceScheduleNode, KSampler, KSamplerAdvanced
from tests.nodes.sampling_toy import conditioning, tiny_model

POS, NEG = conditioning(1), conditioning(2)


@pytest.fixture(scope="module")
def model():
    return tiny_model(0, counting=True)


def latent(batch=1, size=16, seed=None):
    if seed is None:
        return {"samples": torch.zeros(batch, 4, size, size)}
    return {"samples": torch.randn(batch, 4, size, size, generator=torch.Generator().manual_seed(seed))}


def ksampler(model, seed=0, steps=4, cfg=7.5, sampler="euler", scheduler="karras", lat=None, denoise=1.0, ctx=None):
    return KSampler().run(model, seed, steps, cfg, sampler, scheduler, POS, NEG, lat or latent(), denoise, ctx=ctx)[0]


def advanced(model, lat, start, end, add_noise="enable", leftover="disable", cfg=7.5, steps=6, seed=0):
    return KSamplerAdvanced().run(model, add_noise, seed, steps, cfg, "euler", "karras", POS, NEG, lat, start, end,
                                  leftover)[0]


def test_ksampler_inputs_are_comfyui_s():
    info = NodeSchema.from_class(KSampler, "KSampler").object_info()
    req = info["input"]["required"]
    assert info["input_order"]["required"] == ["model", "seed", "steps", "cfg", "sampler_name", "scheduler",
                                               "positive", "negative", "latent_image", "denoise"]
    assert req["seed"][1] == {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                              "tooltip": req["seed"][1]["tooltip"]}
    assert {k: req["steps"][1][k] for k in ("default", "min", "max")} == {"default": 20, "min": 1, "max": 10000}
    assert {k: req["cfg"][1][k] for k in ("default", "min", "max", "step", "round")} == \
        {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}
    assert req["sampler_name"][0] == SAMPLER_NAMES and req["scheduler"][0] == SCHEDULER_NAMES
    assert req["denoise"][1] == {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}
    assert info["output"] == ["LATENT"] and info["category"] == "sampling"
    adv = NodeSchema.from_class(KSamplerAdvanced, "KSamplerAdvanced").object_info()
    assert adv["input_order"]["required"] == ["model", "add_noise", "noise_seed", "steps", "cfg", "sampler_name",
                                              "scheduler", "positive", "negative", "latent_image", "start_at_step",
                                              "end_at_step", "return_with_leftover_noise"]
    assert adv["input"]["required"]["return_with_leftover_noise"][0] == ["disable", "enable"]
    assert adv["input"]["required"]["end_at_step"][1]["default"] == 10000
    for name in ("euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2s_ancestral",
                 "dpmpp_2m", "dpmpp_sde", "dpmpp_2m_sde", "ddim", "uni_pc", "ddpm", "lcm"):
        assert name in SAMPLER_NAMES
    assert SCHEDULER_NAMES[:7] == ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"]


def test_noise_is_one_cpu_generator_over_the_whole_batch():
    noise = prepare_noise(torch.zeros(3, 4, 8, 8), 1234)
    assert torch.equal(noise, torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1234)))
    assert torch.equal(prepare_noise(torch.zeros(1, 4, 8, 8), 1234, batch_index=[2]), noise[2:])
    assert prepare_noise(torch.zeros(1, 4, 8, 8), 0xFFFFFFFFFFFFFFFF).shape == (1, 4, 8, 8)


@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "dpmpp_sde"])
def test_same_seed_same_latent_different_seed_different(model, sampler):
    a, b, c = (ksampler(model, seed=s, sampler=sampler, steps=3)["samples"] for s in (7, 7, 8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, atol=1e-3)


def test_batch_of_two_equals_two_single_runs_with_the_batch_noise(model):
    both = ksampler(model, seed=5, lat=latent(2))["samples"]
    for i in range(2):
        single = ksampler(model, seed=5, lat={"samples": torch.zeros(1, 4, 16, 16), "batch_index": [i]})["samples"]
        # Only float rounding differs (batched kernels); the random UNet's latents reach ~300.
        assert float((single[0] - both[i]).abs().max()) <= 1e-5 * float(both.abs().max())


def test_denoise_below_one_is_img2img_on_the_tail_of_a_longer_schedule(model):
    image = latent(seed=3)
    out = ksampler(model, seed=1, lat=image, denoise=0.5, steps=4)["samples"]
    sigmas = ksampler_sigmas(model, "euler", "karras", 8)[-5:]
    noise = prepare_noise(image["samples"], 1)
    expected = sample(model, noise, POS, NEG, 7.5, sampler_object("euler"), sigmas, image["samples"], seed=1).samples
    torch.testing.assert_close(out, expected)
    ms = model_sampling(model)
    start = ms.noise_scaling(float(sigmas[0]), noise, image["samples"] * model.latent_scale)
    assert float(sigmas[0]) < ms.sigma_max / 2 and start.std() < (ms.sigma_max * noise).std()
    assert torch.equal(ksampler(model, lat=image, denoise=0.0)["samples"], image["samples"])


def test_ksampler_advanced_chain_equals_one_full_run(model):
    full = advanced(model, latent(), 0, 10000, steps=6)["samples"]
    first = advanced(model, latent(), 0, 3, leftover="enable", steps=6)
    second = advanced(model, first, 3, 10000, add_noise="disable", steps=6)["samples"]
    torch.testing.assert_close(second, full, rtol=1e-4, atol=1e-4)
    unfinished = advanced(model, latent(), 0, 3, leftover="disable", steps=6)["samples"]
    assert not torch.allclose(unfinished, first["samples"], atol=1e-3)  # forced to sigma 0 = fully denoised


def test_noise_mask_keeps_the_unmasked_region(model):
    image = latent(seed=4)
    mask = torch.zeros(1, 128, 128)
    mask[:, :, 64:] = 1.0  # repaint the right half (pixel-size mask, resized to the latent)
    for sampler in ("euler", "ddim", "dpmpp_2m"):
        out = ksampler(model, lat={**image, "noise_mask": mask}, sampler=sampler)
        torch.testing.assert_close(out["samples"][..., :7], image["samples"][..., :7], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(out["samples"][..., 9:], image["samples"][..., 9:], atol=1e-2)
        assert "noise_mask" in out


def test_cfg_one_skips_the_unconditional_pass_and_cfg_function_patches_apply(model):
    model.unet.batches.clear()
    plain = ksampler(model, cfg=1.0)["samples"]
    assert set(model.unet.batches) == {1}
    patched = model.with_option("sampler_cfg_function", lambda args: args["cond"])  # ComfyUI's protocol
    model.unet.batches.clear()
    out = ksampler(patched, cfg=7.5)["samples"]
    assert set(model.unet.batches) == {2}  # cond and uncond in one batch
    torch.testing.assert_close(out, plain, rtol=1e-4, atol=1e-4)


def test_step_callback_sees_each_step_and_can_replace_latents(model):
    seen = []
    replaced = model.add_step_callback(lambda info: seen.append(info) or (
        {"latents": torch.zeros_like(info.latents)} if info.step == 2 else None))
    assert "step_callbacks" not in model.options  # the input MODEL is never changed
    out = advanced(replaced, latent(), 0, 10000, steps=6)["samples"]
    sigmas = ksampler_sigmas(model, "euler", "karras", 6)
    assert [i.step for i in seen] == list(range(6)) and {i.total for i in seen} == {6}
    assert [round(i.sigma, 5) for i in seen] == [round(float(s), 5) for s in sigmas[:-1]]
    ms = model_sampling(model)
    assert [i.timestep for i in seen] == [float(ms.timestep(s)) for s in sigmas[:-1]]
    # Zero latents after step 2 = continuing from a zero latent at step 3 with no new noise.
    resumed = advanced(model, latent(), 3, 10000, add_noise="disable", steps=6)["samples"]
    torch.testing.assert_close(out, resumed, rtol=1e-5, atol=1e-5)


def test_step_callback_can_change_guidance_from_the_next_step(model):
    def drop_cfg(info):
        return {"cfg": 2.0} if info.step == 2 else None

    out = advanced(model.add_step_callback(drop_cfg), latent(), 0, 10000, steps=6)["samples"]
    first = advanced(model, latent(), 0, 3, leftover="enable", steps=6)
    expected = advanced(model, first, 3, 10000, add_noise="disable", cfg=2.0, steps=6)["samples"]
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_guidance_schedule_node_is_cfg_10_then_7_5_then_5(model):
    scheduled = GuidanceScheduleNode().run(model, "0.0:10.0, 0.3:7.5, 0.6:5.0")[0]
    cfgs = []
    out = advanced(scheduled.add_step_callback(lambda i: cfgs.append(i.cfg)), latent(), 0, 10000, steps=10)
    assert cfgs == [10.0] * 3 + [7.5] * 3 + [5.0] * 4
    lat = advanced(model, latent(), 0, 3, leftover="enable", cfg=10.0, steps=10)
    lat = advanced(model, lat, 3, 6, add_noise="disable", leftover="enable", cfg=7.5, steps=10)
    lat = advanced(model, lat, 6, 10000, add_noise="disable", cfg=5.0, steps=10)
    torch.testing.assert_close(out["samples"], lat["samples"], rtol=1e-4, atol=1e-4)
    assert "cfg_schedule" not in model.options
    with pytest.raises(ValueError, match="fraction:cfg"):
        GuidanceScheduleNode().run(model, "half:7")


def test_progress_events_and_previews(model):
    sink = ListSink()
    ctx = RunContext("run", "3", "KSampler", sink=sink, services={"preview_method": "latent2rgb"})
    ksampler(model, steps=4, ctx=ctx)
    progress = [(e.value, e.max) for e in sink.events if e.type == "progress"]
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    previews = [e.image for e in sink.events if e.type == "preview"]
    assert len(previews) == 4 and previews[0][0] == "JPEG" and previews[0][1].size == (16, 16)
    quiet = ListSink()
    ksampler(model, steps=2, ctx=RunContext("run", "3", "KSampler", sink=quiet))
    assert not [e for e in quiet.events if e.type == "preview"]


@pytest.mark.parametrize("sampler", ["euler", "heun", "uni_pc"])
def test_cancel_takes_effect_within_one_step(model, sampler):
    token = CancelToken()
    ctx = RunContext("run", "3", "KSampler", cancel_token=token)
    calls_at_cancel = []

    def cancel_midway(info):
        if info.step == 1:
            token.cancel()
            calls_at_cancel.append(len(model.unet.batches))

    model.unet.batches.clear()
    with pytest.raises(ExecutionInterrupted):
        ksampler(model.add_step_callback(cancel_midway), sampler=sampler, steps=8, ctx=ctx)
    assert len(model.unet.batches) == calls_at_cancel[0]  # no UNet call after the cancel


def test_a_plugin_node_attaches_a_step_callback_without_touching_its_input(model):
    """The recipe in nodes/sampling_nodes.py's docstring, as a plugin would write it."""
    from engine import INT, MODEL, Input, Output, node

    @node("ZeroLatentsAtStep", category="sampling")
    class ZeroLatentsAtStep:
        inputs = (Input("model", MODEL), Input("step", INT, default=5, min=0))
        outputs = (Output(MODEL, "MODEL"),)

        def run(self, model, step):
            return (model.add_step_callback(lambda i: {"latents": i.latents * 0} if i.step == step else None),)

    before = dict(model.options)
    patched = ZeroLatentsAtStep().run(model, 3)[0]
    assert model.options == before and patched is not model and patched.unet is model.unet
    out = advanced(patched, latent(), 0, 10000, steps=6)["samples"]
    resumed = advanced(model, latent(), 4, 10000, add_noise="disable", steps=6)["samples"]
    torch.testing.assert_close(out, resumed, rtol=1e-5, atol=1e-5)
