#!/usr/bin/env bash
# Set up everything Diffgraph needs in ./.venv (idempotent): Python deps pinned in pyproject.toml,
# the CPU build of torch where there is no GPU, and the web editor's npm packages.
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
# torch first and pinned: an unpinned torch (or one pulled in by accelerate) would be a multi-GB CUDA
# build. Where a CPU wheel of this exact version is provided locally, pip takes it.
if ! "$VPY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  "$VPY" -m pip install -q "torch==2.13.0"
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
