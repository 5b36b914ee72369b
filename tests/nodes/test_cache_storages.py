"""The output cache counts a tensor storage once across all its entries: a MODEL clone that shares the
checkpoint's weights (as every patch node makes) must not push the checkpoint out of the budget."""
from __future__ import annotations

import torch
from sd_helpers import loaded

from engine.cache import OutputCache, estimate_size


def checkpoint_bytes(model, clip, vae) -> int:
    modules = (model.unet, clip.text_encoder, vae.vae)
    return sum(t.untyped_storage().nbytes() for m in modules for t in (*m.parameters(), *m.buffers()))


def test_a_model_clone_sharing_the_weights_keeps_the_checkpoint_cached():
    model, clip, vae = loaded(0, torch.float32)
    whole = checkpoint_bytes(model, clip, vae)
    assert estimate_size([[model], [clip], [vae]]) == whole  # every weight, through the hook
    cache = OutputCache("lru", budget_bytes=int(whole * 1.5))
    cache.put("checkpoint", [[model], [clip], [vae]], None)
    assert cache.size_bytes == whole
    patched = model.add_step_callback(lambda *_: None)
    cache.put("patched-model", [[patched]], None)
    assert "checkpoint" in cache and "patched-model" in cache, "the clone evicted the checkpoint"
    assert cache.size_bytes == whole, "shared weights are counted once"


def test_a_storage_is_released_when_its_last_entry_goes():
    model, clip, vae = loaded(0, torch.float32)
    unet = sum(t.untyped_storage().nbytes() for t in (*model.unet.parameters(), *model.unet.buffers()))
    cache = OutputCache("lru", budget_bytes=1 << 40)
    cache.put("a", [[model]], None)
    cache.put("b", [[model.clone()]], None)
    weight = next(model.unet.parameters())
    cache.put("view", [[{"samples": weight[:1]}]], None)  # a bare view of a weight: the same storage
    assert cache.size_bytes == unet
    cache.put("a", [["replaced"]], None)  # b and the view still hold the weights
    assert cache.size_bytes == unet + len("replaced")
    cache.put("b", [["x"]], None)
    cache.put("view", [["y"]], None)
    assert cache.size_bytes == len("replaced") + 2


def test_distinct_tensors_are_still_counted_each_and_eviction_frees_them():
    cache = OutputCache("lru", budget_bytes=10_000)
    cache.put("a", [[torch.zeros(1000)]], None)  # 4000 bytes
    cache.put("b", [[torch.zeros(1000)]], None)
    assert cache.size_bytes == 8000
    cache.put("c", [[torch.zeros(1000)]], None)  # over budget: a (least recent) goes
    assert "a" not in cache and cache.size_bytes == 8000
