#!/usr/bin/env bash
# Set up (idempotent), start the server with the bundled model and queue the default workflow (its
# image lands in output/ and in the editor at the printed URL). Extra arguments go to main.py.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python main.py --queue-workflow workflows/default.json "$@"
