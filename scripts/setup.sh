#!/usr/bin/env bash
# Set up everything Diffgraph needs in ./.venv (idempotent): Python deps pinned in pyproject.toml,
# torch==2.13.0, and the web editor's npm packages.
# torch: pip installs the torch==2.13.0 wheel your pip configuration resolves to. Where there is no NVIDIA
# GPU (no nvidia-smi) and DIFFGRAPH_TORCH_INDEX is set (to PyTorch's CPU wheel index, or a local mirror
# of it), torch comes from that index only: the CPU build. Without it the script says which build it got.
# Usage: scripts/setup.sh [--test]   (--test also installs the test extra and Chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip >/dev/null
# torch first and pinned: an unpinned torch (or one pulled in by accelerate) could be another multi-GB build.
if ! "$VPY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  if ! command -v nvidia-smi >/dev/null && [ -n "${DIFFGRAPH_TORCH_INDEX:-}" ]; then
    "$VPY" -m pip install -q "torch==2.13.0" --index-url "$DIFFGRAPH_TORCH_INDEX"
  else
    "$VPY" -m pip install -q "torch==2.13.0"
  fi
fi
build=$("$VPY" -c "import torch; print('CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU')" 2>/dev/null || echo "?")
echo "torch 2.13.0: the $build build"
if [ "$build" != CPU ] && ! command -v nvidia-smi >/dev/null; then
  echo "note: no NVIDIA GPU found but torch is the $build build; for the smaller CPU build remove .venv and" \
       "rerun with DIFFGRAPH_TORCH_INDEX set to PyTorch's CPU wheel index" >&2
fi
extra=""
[ $want_test = 1 ] && extra="[test]"
"$VPY" -m pip install -q -e ".${extra}"

if [ -f web/package.json ]; then
  if [ -x web/setup.sh ]; then
    web/setup.sh $([ $want_test = 1 ] && echo --test)
  elif command -v npm >/dev/null; then
    (cd web && npm ci --no-audit --no-fund --silent)
  fi
fi

if [ $want_test = 1 ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: /usr/bin/chromium is missing; browser tests need Debian's chromium package" >&2
  fi
fi
