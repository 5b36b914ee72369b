"""scripts/setup.sh's torch step, run against a stub virtualenv: which torch build it asks pip for."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A stand-in for .venv/bin/python: logs every call, has no torch yet, reports the build it is told to.
STUB_PYTHON = """#!/bin/sh
echo "$*" >> "$STUB_LOG"
case "$*" in
  *"import torch, sys"*) exit 1 ;;
  *"torch.version.cuda"*) echo "$STUB_BUILD" ;;
esac
exit 0
"""


def run_setup(tmp_path: Path, gpu: bool, index: str | None, build: str = "CPU") -> tuple[str, str]:
    root = tmp_path / "clone"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text(STUB_PYTHON)
    (venv_bin / "python").chmod(0o755)
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("sh", "cat", "dirname", "echo"):
        if shutil.which(tool):
            os.symlink(shutil.which(tool), tools / tool)
    if gpu:
        (tools / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
        (tools / "nvidia-smi").chmod(0o755)
    log = tmp_path / "pip.log"
    env = {"PATH": str(tools), "STUB_LOG": str(log), "STUB_BUILD": build}
    if index:
        env["DIFFGRAPH_TORCH_INDEX"] = index
    proc = subprocess.run([shutil.which("bash"), str(root / "scripts" / "setup.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    torch_calls = [line for line in log.read_text().splitlines() if "install -q torch==2.13.0" in line]
    assert len(torch_calls) == 1, log.read_text()
    return torch_calls[0], proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_without_a_gpu_torch_comes_only_from_the_given_cpu_index(tmp_path):
    call, said = run_setup(tmp_path, gpu=False, index="file:///mirror/cpu")
    assert call.endswith("--index-url file:///mirror/cpu")
    assert "the CPU build" in said


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_with_a_gpu_the_index_is_not_used(tmp_path):
    call, said = run_setup(tmp_path, gpu=True, index="file:///mirror/cpu", build="CUDA 12.8")
    assert "--index-url" not in call and "the CUDA 12.8 build" in said and "note:" not in said


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_without_a_gpu_or_index_it_says_which_build_it_got(tmp_path):
    call, said = run_setup(tmp_path, gpu=False, index=None, build="CUDA 12.8")
    assert "--index-url" not in call
    assert "no NVIDIA GPU found but torch is the CUDA 12.8 build" in said and "DIFFGRAPH_TORCH_INDEX" in said
