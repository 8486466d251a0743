#!/usr/bin/env bash
# The main job on the embedded defaults, until the distillation demo lands: create a small
# Llama-style model in Hugging Face format (random weights, byte-level tokenizer), inspect it,
# and generate from it. Everything runs locally on the CPU; nothing is downloaded.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-"$root/.distill/demo-model"}
distill="$root/scripts/distill"

"$distill" init --config "$root/configs/models/tiny-llama.json" --out "$out" --seed 7
"$distill" inspect --model "$out"
"$distill" generate --model "$out" --prompt "The teacher said" --max-new-tokens 16 --greedy
"$distill" generate --model "$out" --prompt "The teacher said" --max-new-tokens 16 --temperature 0.8 --top-p 0.9 --seed 1
