#!/usr/bin/env bash
# The main job. Until the server lands: make the demo model (once) and inspect it.
set -euo pipefail
cd "$(dirname "$0")/.."
VELA=${1:-build/release/vela}
MODEL_DIR=${VELA_DEMO_DIR:-models/demo}
if [ ! -f "$MODEL_DIR/config.json" ]; then
    "$VELA" make-model --preset demo --out "$MODEL_DIR"
fi
"$VELA" inspect "$MODEL_DIR"
