"""Stable Diffusion support for the built-in nodes: loading, key mapping, text encoding, VAE, EMA.

Submodules: `convert` (original <-> diffusers/transformers keys), `tiny` (test checkpoints),
`arch` (architecture from tensor shapes), `safetensors_io` (memory-mapped reading), `loader`
(checkpoints -> MODEL/CLIP/VAE), `prompt`/`text` (tokenizer and CLIP encoding), `vae`, `ema`.
"""
