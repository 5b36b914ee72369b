#!/usr/bin/env bash
# Set up (idempotent) and start the server with the bundled model; open the printed URL and press
# Queue on the default workflow. Extra arguments go to main.py (e.g. --port 8189).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python main.py --queue-workflow workflows/default.json "$@"
