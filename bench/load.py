"""Checkpoint loading benchmark: a full-size SD1.5-architecture file with random fp16 weights (~2 GB).

Measures, each in a fresh subprocess: our loader (nodes.sd.loader.load_checkpoint, CPU, fp16 -> fp32)
and diffusers' own single-file loader (StableDiffusionPipeline.from_single_file with a local config
directory, fp32), reporting import time, load time, peak RSS and the ratio to the fp32 model size
(target: peak RSS <= 1.3 x). Run: `python bench/load.py [--repeat N] [--keep DIR]`.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GiB = 2**30


def generate(path: Path) -> int:
    """Write the random fp16 checkpoint; returns the parameter count."""
    import torch
    from safetensors.torch import save_file

    from nodes.sd.tiny import sd15_meta_checkpoint

    meta = sd15_meta_checkpoint()
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for key, value in meta.items():
        if value.is_floating_point():
            tensors[key] = (torch.randn(value.shape, generator=gen, dtype=torch.float32) * 0.02).half()
        else:
            tensors[key] = torch.arange(value.shape[-1]).expand(value.shape).contiguous()
    save_file(tensors, str(path))
    return sum(t.numel() for t in tensors.values() if t.is_floating_point())


def write_diffusers_config(path: Path, directory: Path) -> None:
    """A local diffusers pipeline folder (configs + tokenizer files) so from_single_file stays offline."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig

    from nodes.sd.arch import infer_architecture
    from nodes.sd.safetensors_io import StateDictSource
    from nodes.sd.text import clip_tokenizer

    with StateDictSource(path) as src:
        arch = infer_architecture(src.shapes())
    with torch.device("meta"):
        UNet2DConditionModel(**arch.unet).save_config(directory / "unet")
        AutoencoderKL(**arch.vae).save_config(directory / "vae")
    CLIPTextConfig(**arch.clip).save_pretrained(directory / "text_encoder")
    tok_dir = directory / "tokenizer"
    tok_dir.mkdir()
    tok = clip_tokenizer()
    (tok_dir / "vocab.json").write_text(json.dumps(tok.get_vocab()))
    model = json.loads(tok.backend_tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (tok_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (tok_dir / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77}))
    sched = {k: v for k, v in arch.scheduler.items() if k != "clip_sample"}
    (directory / "scheduler").mkdir()
    (directory / "scheduler" / "scheduler_config.json").write_text(json.dumps({"_class_name": "PNDMScheduler", **sched}))
    (directory / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
        "safety_checker": [None, None], "feature_extractor": [None, None], "image_encoder": [None, None],
        "requires_safety_checker": False}))


def _rss_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def child(kind: str, path: str, config: str) -> None:
    """Runs in the subprocess: import, load, print one JSON line of measurements."""
    import resource

    started = time.perf_counter()
    import torch  # noqa: F401  (import cost is reported apart from load cost)
    if kind == "ours":  # the model classes too, so both loaders' "load" times exclude library imports
        from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: F401
        from transformers import CLIPTextModel  # noqa: F401

        from nodes.sd.loader import load_checkpoint
    else:
        from diffusers import StableDiffusionPipeline
    imported = time.perf_counter()
    rss_imported = _rss_now()
    if kind == "ours":
        model, clip, vae = load_checkpoint(path, "cpu")
        modules = (model.unet, clip.text_encoder, vae.vae)
    else:
        pipe = StableDiffusionPipeline.from_single_file(path, config=config, local_files_only=True,
                                                        torch_dtype=torch.float32, safety_checker=None)
        modules = (pipe.unet, pipe.text_encoder, pipe.vae)
    loaded = time.perf_counter()
    params = sum(p.numel() for m in modules for p in m.parameters())
    dtypes = sorted({str(p.dtype) for m in modules for p in m.parameters()})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"kind": kind, "import_s": imported - started, "load_s": loaded - imported,
                      "rss_after_import": rss_imported, "rss_after_load": _rss_now(), "peak_rss": peak,
                      "params": params, "dtypes": dtypes}))


def measure(kind: str, path: Path, config: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(config)], env=env,
                          capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"kind": kind, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(lines[-1])


def report(result: dict, fp32_bytes: int) -> str:
    if "error" in result:
        return f"{result['kind']:>9}: failed: {result['error']}"
    return (f"{result['kind']:>9}: import {result['import_s']:.2f} s, load {result['load_s']:.2f} s, "
            f"peak RSS {result['peak_rss'] / GiB:.2f} GiB ({result['peak_rss'] / fp32_bytes:.2f} x fp32 model), "
            f"RSS after import {result['rss_after_import'] / GiB:.2f} GiB, after load "
            f"{result['rss_after_load'] / GiB:.2f} GiB, weights {','.join(result['dtypes'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per loader (the best time is reported)")
    parser.add_argument("--keep", type=Path, help="write the checkpoint here and keep it")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if importlib.util.find_spec("engine") is None:  # run as a script: re-run with the repo importable
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], env)
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="diffgraph-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path, config = folder / "sd15-random-fp16.safetensors", folder / "diffusers-config"
        started = time.perf_counter()
        params = generate(path) if not path.exists() else None
        print(f"checkpoint: {path.stat().st_size / GiB:.2f} GiB fp16"
              + (f", {params:,} parameters, written in {time.perf_counter() - started:.1f} s" if params else ""))
        if not config.exists():
            write_diffusers_config(path, config)
        results: dict[str, list[dict]] = {"ours": [], "diffusers": []}
        for _ in range(args.repeat):
            for kind in results:  # interleaved, so both see the same page-cache state
                results[kind].append(measure(kind, path, config))
        ok = [r for runs in results.values() for r in runs if "error" not in r]
        fp32_bytes = (ok[0]["params"] * 4) if ok else 1
        print(f"fp32 model size: {fp32_bytes / GiB:.2f} GiB")
        best = {}
        for kind, runs in results.items():
            good = [r for r in runs if "error" not in r]
            best[kind] = min(good, key=lambda r: r["load_s"]) if good else runs[-1]
            print(report(best[kind], fp32_bytes))
        if all("error" not in r for r in best.values()):
            print(f"ratio ours/diffusers: load time {best['ours']['load_s'] / best['diffusers']['load_s']:.2f}, "
                  f"peak RSS {best['ours']['peak_rss'] / best['diffusers']['peak_rss']:.2f}")


if __name__ == "__main__":
    main()
