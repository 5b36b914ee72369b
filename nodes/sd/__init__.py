"""Stable Diffusion support for the built-in nodes: loading, key mapping, text encoding, VAE, EMA.

`convert` (original <-> diffusers/transformers keys), `tiny` (test checkpoints), `arch` (family and
configs from tensor shapes), `safetensors_io` (mapped reading, pickle opt-in), `loader` (files <->
MODEL/CLIP/VAE), `prompt`/`text` (weights, windows, tokenizer, encoding), `vae`, `resize`, `files`, `ema`.
"""
