"""ComfyUI's `comfy_execution` package name; the implementations are compat/execution_*.py."""
