"""ComfyUI's `comfy.model_management`: devices, memory and interrupts, over torch and the RunContext.

Interrupts are per run in Diffgraph: `interrupt_current_processing()` cancels the run of the node
calling it and `processing_interrupted()` reads that run's cancel token; outside a run they do nothing.
Model offloading is not Diffgraph's job here, so the load/unload calls are documented no-ops.
"""
from __future__ import annotations

from typing import Any

import torch

from engine import ExecutionInterrupted, current_context

# ComfyUI packs catch this name around long loops; ours derives from BaseException (see engine.errors).
InterruptProcessingException = ExecutionInterrupted

__all__ = ["InterruptProcessingException", "get_torch_device", "intermediate_device", "unet_offload_device",
           "text_encoder_device", "vae_device", "vae_offload_device", "interrupt_current_processing",
           "processing_interrupted", "throw_exception_if_processing_interrupted", "soft_empty_cache",
           "unload_all_models", "load_models_gpu", "get_free_memory", "cpu_mode", "xformers_enabled",
           "is_device_mps"]


def get_torch_device() -> torch.device:
    """The device the built-in nodes compute on (nodes.sd.loader.default_device: the run's
    `services["device"]`, else $DIFFGRAPH_DEVICE, else CUDA, else CPU)."""
    from nodes.sd.loader import default_device

    return default_device()


def intermediate_device() -> torch.device:
    """Where IMAGE/MASK tensors live between nodes: always the CPU, as in ComfyUI by default."""
    return torch.device("cpu")


def unet_offload_device() -> torch.device:
    return torch.device("cpu")


def vae_offload_device() -> torch.device:
    return torch.device("cpu")


def text_encoder_device() -> torch.device:
    return get_torch_device()


def vae_device() -> torch.device:
    return get_torch_device()


def cpu_mode() -> bool:
    return get_torch_device().type == "cpu"


def is_device_mps(device: Any) -> bool:
    return getattr(device, "type", None) == "mps"


def xformers_enabled() -> bool:
    return False


def interrupt_current_processing(value: bool = True) -> None:
    """Cancel the calling node's run (value=False cannot un-cancel and is ignored)."""
    ctx = current_context()
    if value and ctx is not None:
        ctx.cancel_token.cancel()


def processing_interrupted() -> bool:
    ctx = current_context()
    return bool(ctx is not None and ctx.cancelled)


def throw_exception_if_processing_interrupted() -> None:
    """Raise InterruptProcessingException (= engine.ExecutionInterrupted) if this run was cancelled."""
    ctx = current_context()
    if ctx is not None:
        ctx.check_cancelled()


def soft_empty_cache(force: bool = False) -> None:
    """Return cached accelerator memory to the driver; a no-op on CPU."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def unload_all_models() -> None:
    """No-op: Diffgraph keeps models in its output cache under a memory budget, not a model manager."""


def load_models_gpu(models: Any, memory_required: int = 0, **_: Any) -> None:
    """No-op for the same reason; nodes move their own modules to get_torch_device()."""


def get_free_memory(dev: Any = None, torch_free_too: bool = False) -> Any:
    """Free bytes on `dev` (CUDA: the driver's figure; CPU: available RAM from /proc, else 0)."""
    dev = torch.device(dev) if dev is not None else get_torch_device()
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        return (free, free) if torch_free_too else free
    free = _available_ram()
    return (free, free) if torch_free_too else free


def _available_ram() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
