#!/usr/bin/env bash
# The main job, until the HTTP server lands: make the built-in demo model (once), show what it
# is, then answer a chat request about an image with it. The demo model has random weights, so
# the answer is gibberish; what it shows is the whole path (template, tokenizer, image decode
# and preprocessing, vision tower, language model, sampling, streaming detokenizer).
set -euo pipefail
cd "$(dirname "$0")/.."
VELA=${1:-build/release/vela}
MODEL_DIR=${VELA_DEMO_DIR:-models/demo}
if [ ! -f "$MODEL_DIR/config.json" ]; then
    "$VELA" make-model --preset demo --out "$MODEL_DIR"
fi
"$VELA" inspect "$MODEL_DIR"
echo
echo "--- vela generate --chat --image tests/fixtures/vlm/gradient.png"
"$VELA" generate --model "$MODEL_DIR" --chat --image tests/fixtures/vlm/gradient.png \
    --prompt "What is in this picture?" --max-tokens 32
echo
echo "--- vela generate --chat (text only)"
"$VELA" generate --model "$MODEL_DIR" --chat --prompt "Tell me a story." --max-tokens 32
